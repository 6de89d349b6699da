//! The administrative operations behind `tern user …`, `tern queue …` and
//! `tern sieve …`:
//! one implementation, run either directly on the store (server stopped) or
//! by the server on behalf of a control-socket client (server running). The
//! reload requests (`tern plugin reload`, `tern tls reload`) only a running
//! server answers.

use crate::config::{ByteSize, Config, parse_quota};
use crate::queue::QueueHandle;
use crate::store::{
    QueueEntry, Quota, QuotaOverride, RecipientState, Store, StoreError, delivery_lease,
    format_queue_id, parse_queue_id,
};
use serde::{Deserialize, Serialize};

/// One administrative request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum AdminRequest {
    UserAdd {
        address: String,
        password: String,
    },
    UserDel {
        address: String,
    },
    UserList,
    UserPasswd {
        address: String,
        password: String,
    },
    /// `tern user quota USER [SIZE|none|default]`; no size: show it.
    UserQuota {
        address: String,
        size: Option<String>,
    },
    QueueList,
    QueueShow {
        id: String,
    },
    QueueFlush {
        id: Option<String>,
    },
    QueueDelete {
        id: String,
    },
    /// `tern sieve put USER NAME FILE` (the file's text, read by the CLI).
    SievePut {
        user: String,
        name: String,
        script: String,
    },
    SieveGet {
        user: String,
        name: String,
    },
    SieveList {
        user: String,
    },
    /// `name` None: no script active.
    SieveActivate {
        user: String,
        name: Option<String>,
    },
    SieveDelete {
        user: String,
        name: String,
    },
    /// `tern backup DIR` while the server runs: the snapshot streamed
    /// back over the control socket (`store::backend::dump::stream`); only
    /// the control socket answers it.
    Backup,
    /// `tern export USER --format F DIR` (an absolute path).
    Export {
        user: String,
        format: crate::mailbox_io::Format,
        dir: std::path::PathBuf,
    },
    /// `tern export` while the server runs: the folders streamed back over
    /// the control socket (`mailbox_io::stream_export`); only the control
    /// socket answers it.
    ExportStream {
        user: String,
    },
    /// `tern import USER PATH` (an absolute path).
    Import {
        user: String,
        path: std::path::PathBuf,
    },
    /// `tern migrate USER --from imaps://…` (the password read by the CLI).
    Migrate {
        user: String,
        source: crate::mailbox_io::PullSource,
    },
    /// Reload the plugins (only a running server can; see `control.rs`).
    PluginReload,
    /// Reload the TLS certificates (only a running server can).
    TlsReload,
    /// Send the DMARC aggregate reports that are due (only a running
    /// server sends; `tern dmarc report --dry-run` works without one).
    DmarcReport {
        dry_run: bool,
    },
    /// `tern trace`: the decisions about a message or a client's sessions.
    Trace(crate::trace::query::TraceQuery),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sieve(#[from] crate::store::SieveError),
    #[error(transparent)]
    Backup(#[from] crate::store::backend::dump::DumpError),
    #[error(transparent)]
    MailboxIo(#[from] crate::mailbox_io::MailboxIoError),
    #[error("{0}")]
    Invalid(String),
}

/// Runs a request; returns what to print.
pub async fn execute(
    store: &Store,
    config: &Config,
    queue: Option<&QueueHandle>,
    request: AdminRequest,
) -> Result<String, AdminError> {
    match request {
        AdminRequest::UserAdd { address, password } => {
            let address = account_address(config, &address)?;
            if password.is_empty() {
                return Err(AdminError::Invalid("the password is empty".into()));
            }
            store.add_user(&address, &password).await?;
            Ok(format!("added {address}\n"))
        }
        AdminRequest::UserDel { address } => {
            let address = account_address(config, &address)?;
            store.delete_user(&address).await?;
            Ok(format!("deleted {address}\n"))
        }
        AdminRequest::UserList => Ok(store
            .list_users()
            .await?
            .into_iter()
            .map(|u| u + "\n")
            .collect()),
        AdminRequest::UserPasswd { address, password } => {
            let address = account_address(config, &address)?;
            if password.is_empty() {
                return Err(AdminError::Invalid("the password is empty".into()));
            }
            store.set_password(&address, &password).await?;
            Ok(format!("password changed for {address}\n"))
        }
        AdminRequest::Backup => Err(AdminError::Invalid(
            "a backup is streamed by the control socket, not run here".into(),
        )),
        AdminRequest::Export { user, format, dir } => {
            let user = existing_user(store, config, &user).await?;
            let tally = crate::mailbox_io::export(store, &user, format, &dir).await?;
            Ok(format!(
                "exported {tally} of {user} into {}\n",
                dir.display()
            ))
        }
        AdminRequest::ExportStream { .. } => Err(AdminError::Invalid(
            "an export is streamed by the control socket, not run here".into(),
        )),
        AdminRequest::Import { user, path } => {
            let user = existing_user(store, config, &user).await?;
            let tally = crate::mailbox_io::import(store, &user, &path).await?;
            Ok(format!(
                "imported {tally} from {} for {user}\n",
                path.display()
            ))
        }
        AdminRequest::Migrate { user, source } => {
            let user = existing_user(store, config, &user).await?;
            let report = crate::mailbox_io::pull(store, &user, &source).await?;
            Ok(format!("{report} from {} into {user}\n", source.url))
        }
        AdminRequest::UserQuota { address, size } => {
            let address = account_address(config, &address)?;
            if let Some(size) = size {
                let own = match size.trim() {
                    "default" => None,
                    text => Some(match parse_quota(text).map_err(AdminError::Invalid)? {
                        Some(ByteSize(0)) => {
                            return Err(AdminError::Invalid(
                                "a quota is at least 1 byte (\"none\" for no quota)".into(),
                            ));
                        }
                        Some(ByteSize(n)) => QuotaOverride::Bytes(n),
                        None => QuotaOverride::Unlimited,
                    }),
                };
                store.set_quota(&address, own).await?;
            }
            let Some(record) = store.user(&address).await? else {
                return Err(StoreError::NoSuchUser(address).into());
            };
            // Without a server the store has not been told the default.
            store.set_default_quota(config.users.default_quota.map(|q| q.0));
            let Quota { limit, usage } = store.quota(&address).await?;
            let own = record.quota;
            let limit_text = match limit {
                Some(n) => format!("{} ({n} bytes)", ByteSize(n)),
                None => "unlimited".into(),
            };
            let whence = if own.is_some() { "own" } else { "default" };
            Ok(format!(
                "{address}: quota {limit_text} ({whence}), using {} ({} bytes) in {} messages\n",
                ByteSize(usage.bytes),
                usage.bytes,
                usage.messages
            ))
        }
        AdminRequest::QueueList => {
            let entries = store.queue_entries().await?;
            if entries.is_empty() {
                return Ok("Mail queue is empty\n".into());
            }
            let mut out = String::from(
                "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n",
            );
            let holders: std::collections::HashMap<String, String> = store
                .leases("q/")
                .await?
                .into_iter()
                .map(|(name, r)| (name, r.holder))
                .collect();
            for e in &entries {
                out.push_str(&list_entry(e, holders.get(&delivery_lease(e.id))));
            }
            out.push_str(&format!("-- {} request(s)\n", entries.len()));
            Ok(out)
        }
        AdminRequest::QueueShow { id } => {
            let entry = find_entry(store, &id).await?;
            Ok(show_entry(&entry))
        }
        AdminRequest::QueueFlush { id } => {
            let ids: Vec<u64> = match id {
                Some(id) => vec![find_entry(store, &id).await?.id],
                None => store.queue_entries().await?.iter().map(|e| e.id).collect(),
            };
            for id in &ids {
                if let Some(mut e) = store.queue_entry(*id).await? {
                    let now = crate::store::now();
                    for r in e
                        .recipients
                        .iter_mut()
                        .filter(|r| r.state == RecipientState::Pending)
                    {
                        r.next_attempt = now;
                    }
                    store.update_queue_entry(&e).await?;
                }
            }
            if let Some(q) = queue {
                let now = crate::store::now();
                for id in &ids {
                    q.queued(*id, now);
                }
            }
            Ok(format!("flushed {} message(s)\n", ids.len()))
        }
        AdminRequest::QueueDelete { id } => {
            let entry = find_entry(store, &id).await?;
            store.release_queue_entry(&entry).await?;
            Ok(format!("deleted {}\n", entry.queue_id()))
        }
        AdminRequest::SievePut { user, name, script } => {
            let user = existing_user(store, config, &user).await?;
            store
                .sieve()
                .put(&user, &name, script.as_bytes(), &config.sieve)
                .await?;
            Ok(format!("saved {name:?} for {user}\n"))
        }
        AdminRequest::SieveGet { user, name } => {
            let user = existing_user(store, config, &user).await?;
            let text = store.sieve().get(&user, &name).await?;
            Ok(String::from_utf8_lossy(&text).into_owned())
        }
        AdminRequest::SieveList { user } => {
            let user = existing_user(store, config, &user).await?;
            Ok(store
                .sieve()
                .list(&user)
                .await?
                .into_iter()
                .map(|(name, active)| match active {
                    true => format!("{name}\tactive\n"),
                    false => format!("{name}\n"),
                })
                .collect())
        }
        AdminRequest::SieveActivate { user, name } => {
            let user = existing_user(store, config, &user).await?;
            store.sieve().activate(&user, name.as_deref()).await?;
            Ok(match name {
                Some(n) => format!("{n:?} is the active script of {user}\n"),
                None => format!("no active script for {user}\n"),
            })
        }
        AdminRequest::SieveDelete { user, name } => {
            let user = existing_user(store, config, &user).await?;
            store.sieve().delete(&user, &name).await?;
            Ok(format!("deleted {name:?} of {user}\n"))
        }
        AdminRequest::PluginReload => Err(AdminError::Invalid(
            "no server is running; plugins are loaded when `tern serve` starts".into(),
        )),
        AdminRequest::TlsReload => Err(AdminError::Invalid(
            "no server is running; certificates are loaded when `tern serve` starts".into(),
        )),
        AdminRequest::Trace(query) => {
            use crate::trace::query::{QueryError, answer};
            answer(store, &query).await.map_err(|e| match e {
                QueryError::Store(e) => AdminError::Store(e),
                other => AdminError::Invalid(other.to_string()),
            })
        }
        AdminRequest::DmarcReport { .. } => Err(AdminError::Invalid(
            "no server is running; reports are sent by `tern serve` (try --dry-run)".into(),
        )),
    }
}

/// A login or address as an account name; its domain must be local.
fn account_address(config: &Config, address: &str) -> Result<String, AdminError> {
    let address = address.trim().to_ascii_lowercase();
    let address = if address.contains('@') {
        address
    } else {
        format!(
            "{address}@{}",
            config
                .local_domains
                .first()
                .map(String::as_str)
                .unwrap_or("localhost")
        )
    };
    let (local, domain) = address.rsplit_once('@').unwrap_or(("", ""));
    if local.is_empty() || domain.is_empty() || local.contains(char::is_whitespace) {
        return Err(AdminError::Invalid(format!(
            "{address:?} is not an address"
        )));
    }
    if !config.is_local_domain(domain) {
        return Err(AdminError::Invalid(format!(
            "{domain} is not one of local_domains ({})",
            config.local_domains.join(", ")
        )));
    }
    Ok(address)
}

/// The account an admin names; it must exist.
/// The account `user` names (as `tern user` commands take it), which must exist.
pub async fn existing_user(
    store: &Store,
    config: &Config,
    user: &str,
) -> Result<String, AdminError> {
    let address = account_address(config, user)?;
    if !store.user_exists(&address).await? {
        return Err(AdminError::Store(StoreError::NoSuchUser(address)));
    }
    Ok(address)
}

async fn find_entry(store: &Store, id: &str) -> Result<QueueEntry, AdminError> {
    let n = parse_queue_id(id)
        .ok_or_else(|| AdminError::Invalid(format!("{id:?} is not a queue id")))?;
    store
        .queue_entry(n)
        .await?
        .ok_or_else(|| AdminError::Store(StoreError::NoSuchQueueEntry(id.to_string())))
}

fn time_text(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%a %b %e %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// An entry as `tern queue list` prints it; `holder`: the node
/// delivering it now (a shared store's lease).
fn list_entry(e: &QueueEntry, holder: Option<&String>) -> String {
    let sender = if e.sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        e.sender.as_str()
    };
    let mut out = format!(
        "{:<11} {:>8} {:<20}  {}\n",
        format_queue_id(e.id),
        e.size,
        time_text(e.arrived),
        sender
    );
    if e.node.is_some() || holder.is_some() {
        out.push_str(&format!(
            "{:42}node: accepted by {}{}\n",
            "",
            e.node.as_deref().unwrap_or("-"),
            holder
                .map(|h| format!(", being delivered by {h}"))
                .unwrap_or_default()
        ));
    }
    for r in &e.recipients {
        let state = match r.state {
            RecipientState::Pending => {
                format!(
                    "pending, {} attempt(s), next {}",
                    r.attempts,
                    time_text(r.next_attempt)
                )
            }
            RecipientState::Delivered => "delivered".into(),
            RecipientState::Failed => "failed".into(),
        };
        out.push_str(&format!("{:42}{} ({state})\n", "", r.address));
        if let Some(err) = &r.last_error {
            out.push_str(&format!("{:44}{err}\n", ""));
        }
    }
    out
}

fn show_entry(e: &QueueEntry) -> String {
    let mut out = String::new();
    out.push_str(&format!("id: {}\n", e.queue_id()));
    out.push_str(&format!(
        "arrived: {} ({}s ago)\n",
        time_text(e.arrived),
        crate::store::now() - e.arrived
    ));
    out.push_str(&format!("size: {}\n", e.size));
    out.push_str(&format!("sender: <{}>\n", e.sender));
    out.push_str(&format!("client: {}\n", e.client));
    if let Some(node) = &e.node {
        out.push_str(&format!("node: {node}\n"));
    }
    if e.require_tls {
        out.push_str("requiretls: yes (only over verified TLS, RFC 8689)\n");
    }
    for r in &e.recipients {
        out.push_str(&format!(
            "recipient: <{}> state={:?} attempts={} next={} last_error={}\n",
            r.address,
            r.state,
            r.attempts,
            time_text(r.next_attempt),
            r.last_error.as_deref().unwrap_or("-")
        ));
        if let Some(demand) = &r.verified_tls {
            out.push_str(&format!("  tls demand: {demand}\n"));
        }
        if let Some(policy) = &r.tls_policy {
            out.push_str(&format!("  tls policy: {policy}\n"));
        }
    }
    out
}
