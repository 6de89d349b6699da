//! `tern migrate USER --from imaps://login@host[:port]`: a whole account
//! pulled from another IMAP server over verified TLS (the system's roots,
//! or a CA file; no verification only when asked, for tests). Every
//! selectable folder is copied with each message's flags (\Recent aside)
//! and internal date; folders are made when missing, names decoded from
//! modified UTF-7 and the source's hierarchy delimiter turned into `/`.
//!
//! Resumable and idempotent: for each source folder the store keeps its
//! UIDVALIDITY and the highest source UID copied (`store/pulls.rs`),
//! written in the write set of the message it counts. A run asks the
//! source only for UIDs above the mark, in UID order, so a second run
//! copies nothing already copied and an interrupted one carries on where
//! it stopped. If the source's UIDVALIDITY changed, its UIDs mean other
//! messages now and the folder is copied again from the start.

use super::MailboxIoError;
use super::imap_client::Client;
use crate::store::{PullMark, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// Messages fetched per UID FETCH.
const BATCH: usize = 50;

/// Where from and how to trust it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PullSource {
    /// `imaps://login@host[:port]` (`%40` for an `@` in the login).
    pub url: String,
    pub password: String,
    /// Trust anchors (PEM) instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (tests only).
    pub insecure: bool,
}

/// What one run did, per folder: (name, copied now, copied before).
#[derive(Debug, Default)]
pub struct PullReport {
    pub folders: Vec<(String, usize, u32)>,
    pub notes: Vec<String>,
}

impl PullReport {
    pub fn copied(&self) -> usize {
        self.folders.iter().map(|f| f.1).sum()
    }
}

impl std::fmt::Display for PullReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, now, _) in &self.folders {
            writeln!(f, "{name}: {now} copied")?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        write!(f, "{} message(s) copied", self.copied())
    }
}

/// (login, host, port) of an `imaps://` URL.
pub fn parse_url(url: &str) -> Result<(String, String, u16), MailboxIoError> {
    let bad = || {
        MailboxIoError::Refused(format!(
            "{url:?}: give the source as imaps://login@host[:port]"
        ))
    };
    let rest = url
        .strip_prefix("imaps://")
        .ok_or_else(bad)?
        .trim_end_matches('/');
    let (login, hostport) = rest.rsplit_once('@').ok_or_else(bad)?;
    let (host, port) = match hostport.rsplit_once(':') {
        _ if hostport.starts_with('[') && hostport.ends_with(']') => (hostport, 993),
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (hostport, 993),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if login.is_empty() || host.is_empty() {
        return Err(bad());
    }
    Ok((login.replace("%40", "@"), host.to_string(), port))
}

fn tls_config(source: &PullSource) -> Result<Arc<rustls::ClientConfig>, MailboxIoError> {
    let config = if source.insecure {
        crate::outbound::tls::opportunistic_tls_config()
            .map_err(|e| MailboxIoError::Refused(e.to_string()))?
    } else {
        crate::outbound::tls::Verifier::load(source.ca_file.as_deref())
            .and_then(|v| v.client_config())
            .map_err(|e| MailboxIoError::Refused(e.to_string()))?
    };
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"imap".to_vec()];
    Ok(Arc::new(config))
}

/// Pulls the source account into `user`'s folders.
pub async fn pull(
    store: &Store,
    user: &str,
    source: &PullSource,
) -> Result<PullReport, MailboxIoError> {
    let (login, host, port) = parse_url(&source.url)?;
    let source_id = format!("imaps://{login}@{host}:{port}");
    let mut client = Client::connect(&host, port, tls_config(source)?).await?;
    client.login(&login, &source.password).await?;
    let mut listed = client.list().await?;
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let mut report = PullReport::default();
    for folder in listed {
        let raw = String::from_utf8_lossy(&folder.name).into_owned();
        let mut name = crate::imap::names::decode_mutf7(&raw).unwrap_or_else(|_| raw.clone());
        if let Some(d) = folder.delimiter.filter(|d| *d != '/') {
            name = name.replace(d, "/");
        }
        let name = match crate::store::check_folder_name(&crate::store::canonical_folder(&name)) {
            Ok(n) => n,
            Err(e) => {
                report.notes.push(format!("{raw}: left out ({e})"));
                continue;
            }
        };
        if store.folder(user, &name).await?.is_none() {
            store.create_folder(user, &name).await?;
        }
        if folder.noselect {
            continue;
        }
        let uidvalidity = client.examine(&folder.name).await?;
        let after = match store.pull_mark(user, &source_id, &name).await? {
            Some(m) if m.uidvalidity == uidvalidity => m.last_uid,
            Some(m) => {
                report.notes.push(format!(
                    "{name}: the source's UIDVALIDITY changed ({} → {uidvalidity}); copied again",
                    m.uidvalidity
                ));
                0
            }
            None => 0,
        };
        let uids = client.uids_after(after).await?;
        let mut copied = 0;
        for batch in uids.chunks(BATCH) {
            for m in client.fetch(batch).await? {
                let Some(body) = m.body else { continue };
                let mark = PullMark {
                    uidvalidity,
                    last_uid: m.uid,
                };
                store
                    .append_pulled(user, &name, &body, m.flags, m.date, &source_id, &name, mark)
                    .await?;
                copied += 1;
            }
        }
        report.folders.push((name, copied, after));
    }
    store.flush().await?;
    client.logout().await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls() {
        let p = |u: &str| parse_url(u).ok();
        assert_eq!(
            p("imaps://bob@mail.example.org"),
            Some(("bob".into(), "mail.example.org".into(), 993))
        );
        assert_eq!(
            p("imaps://bob%40example.org@127.0.0.1:10993/"),
            Some(("bob@example.org".into(), "127.0.0.1".into(), 10993))
        );
        assert_eq!(
            p("imaps://bob@example.org@[::1]:993"),
            Some(("bob@example.org".into(), "::1".into(), 993))
        );
        assert!(p("imap://bob@host").is_none());
        assert!(p("imaps://host").is_none());
        assert!(p("imaps://bob@host:x").is_none());
    }
}
