//! The last step of the submission path (`submit`): given a finished body,
//! its prefix headers, the routed recipients and what the plugins decided,
//! it writes the body, one INBOX (or Junk, or the folder a filter chose) copy per local user (or the
//! copies the delivery plugins filed, each in its folder with its flags,
//! each counted in the user's quota) and the queue entry for remote
//! recipients in one store batch, flushes it to disk, and wakes the queue. Nothing is acknowledged to anyone before this
//! returns `Ok`. A local mailbox the message does not fit (its quota) gets
//! no copy now: it becomes a local recipient of the queue entry, delivered
//! when space frees up, or bounced when it never does (as Postfix queues
//! what its LMTP hop answers 452).

use crate::context::ServerContext;
use crate::mail::Target;
use crate::store::{Admission, BlobWriter, LocalCopy, QueueEntry, QueueRecipient, StoreError, now};
use crate::trace::{Event, Recorder, Stage};

/// One accepted recipient with where it routes to and its DSN parameters.
pub struct RoutedRecipient<'a> {
    pub targets: &'a [Target],
    /// DSN NOTIFY as text ("SUCCESS,FAILURE", "NEVER"), when given.
    pub notify: Option<String>,
    /// DSN ORCPT as "type;address", when given.
    pub orcpt: Option<String>,
}

/// The envelope of a message being committed.
pub struct Envelope<'a> {
    /// Queue id; also the blob id.
    pub id: u64,
    /// Envelope sender as text; empty for the null sender.
    pub sender: String,
    pub recipients: Vec<RoutedRecipient<'a>>,
    pub envid: Option<String>,
    /// DSN RET ("FULL" / "HDRS").
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    /// REQUIRETLS (RFC 8689) was asked for.
    pub require_tls: bool,
    /// "helo [ip]" of the client, for queue listings and DSNs.
    pub client: String,
}

impl Envelope<'_> {
    /// The queue entry of this message for `recipients`, arrived now.
    pub fn queue_entry(&self, size: u64, recipients: Vec<QueueRecipient>) -> QueueEntry {
        QueueEntry {
            id: self.id,
            blob: self.id,
            size,
            sender: self.sender.clone(),
            envid: self.envid.clone(),
            ret: self.ret.clone(),
            smtputf8: self.smtputf8,
            eight_bit: self.eight_bit,
            arrived: now(),
            client: self.client.clone(),
            recipients,
            warned: false,
            require_tls: self.require_tls,
            node: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("storing the message failed: {0}")]
    Store(StoreError),
    #[error("flushing the message failed: {0}")]
    Flush(StoreError),
}

/// What the commit did.
#[derive(Debug)]
pub struct Committed {
    /// Total size with the prefix.
    pub size: u64,
    /// Local users who got a copy, with the UID in their INBOX.
    pub local: Vec<(String, u32)>,
    /// Remote recipients queued.
    pub queued: usize,
    /// Local users whose copy was queued: over their quota just now.
    pub over_quota: Vec<String>,
    /// LMTP: recipients (by index in the envelope) a delivery plugin
    /// refused, with the reply each gets instead of the message's (set by
    /// `submit`).
    pub refused: Vec<(usize, crate::mail::Reply)>,
}

/// What the data hooks decided that changes the commit.
#[derive(Debug)]
pub struct PluginEffects<'a> {
    /// Local users whose copy a storage plugin already kept.
    pub stored_by_plugins: &'a [String],
    /// A filter quarantined the message (the reason): local copies go to
    /// `folder`, nothing is relayed.
    pub quarantine: Option<&'a str>,
    /// The folder of the local copies not filed by a delivery plugin:
    /// INBOX, Junk for a quarantine, or the one a filter chose
    /// (`verdicts.local-folder`).
    pub folder: &'a str,
    /// Local users a delivery plugin decided for, with their copies
    /// (folders and flags; none: nothing stored for them). Users not here
    /// get one copy in the default folder.
    pub filed: Option<&'a std::collections::BTreeMap<String, Vec<LocalCopy>>>,
}

impl PluginEffects<'_> {
    /// How many copies `user` gets in the built-in store (before quota).
    fn copies_of(&self, user: &str) -> u64 {
        self.filed
            .and_then(|f| f.get(user))
            .map_or(1, |c| c.len() as u64)
    }
}

/// The session's decisions so far, which the commit completes (where
/// each copy went) and keeps with the message.
pub struct Traced<'a> {
    pub recorder: &'a Recorder,
    pub message_id: Option<String>,
}

/// Commits `writer` (the body) with `prefix` headers for `envelope`, as
/// the plugins' `effects` say, with its decision trace; durable on return.
pub async fn commit(
    ctx: &ServerContext,
    writer: BlobWriter,
    prefix: Vec<u8>,
    envelope: &Envelope<'_>,
    effects: &PluginEffects<'_>,
    traced: Traced<'_>,
) -> Result<Committed, CommitError> {
    // As the blob record counts it: leading bytes the filters removed are
    // not part of the message.
    let size = writer.len() - writer.skipped() + prefix.len() as u64;
    let mut local_users: Vec<String> = Vec::new();
    let mut remote: Vec<QueueRecipient> = Vec::new();
    let mut over_quota: Vec<String> = Vec::new();
    for r in &envelope.recipients {
        for t in r.targets {
            match t {
                Target::Local(u) if effects.stored_by_plugins.contains(u) => {}
                Target::Local(u) if local_users.contains(u) || over_quota.contains(u) => {}
                // The delivery plugins keep nothing for `u` (discarded,
                // refused, or only sent on).
                Target::Local(u) if effects.copies_of(u) == 0 => {}
                // Every copy a delivery plugin files counts.
                Target::Local(u)
                    if effects.quarantine.is_none()
                        && !fits(ctx, u, size * effects.copies_of(u)).await =>
                {
                    over_quota.push(u.clone());
                    remote.push(QueueRecipient::new(
                        u.clone(),
                        r.notify.clone(),
                        r.orcpt.clone(),
                        vec![u.clone()],
                    ));
                }
                Target::Local(u) => local_users.push(u.clone()),
                Target::Remote(a) if remote.iter().any(|q| &q.address == a) => {}
                Target::Remote(a) => remote.push(QueueRecipient::new(
                    a.clone(),
                    r.notify.clone(),
                    r.orcpt.clone(),
                    Vec::new(),
                )),
                Target::Relay { address, .. } if remote.iter().any(|q| &q.address == address) => {}
                Target::Relay {
                    address,
                    hosts,
                    tls,
                } => {
                    let mut q = QueueRecipient::new(
                        address.clone(),
                        r.notify.clone(),
                        r.orcpt.clone(),
                        Vec::new(),
                    );
                    q.route = hosts.clone();
                    q.verified_tls = tls.clone();
                    remote.push(q);
                }
            }
        }
    }
    let folder = match effects.quarantine {
        Some(reason) => {
            tracing::info!(
                queue_id = %crate::store::format_queue_id(envelope.id),
                reason,
                relayed_dropped = remote.len(),
                folder = effects.folder,
                "quarantined by a filter: local copies only, nothing relayed"
            );
            for r in &remote {
                let e = Event::new(Stage::Store, "quarantine", "not relayed").rcpt(&r.address);
                traced.recorder.record(e.detail(reason));
            }
            remote.clear();
            effects.folder
        }
        None => effects.folder,
    };
    let fallback = if effects.quarantine.is_some() {
        "Junk"
    } else {
        "INBOX"
    };
    let mut copies: Vec<LocalCopy> = Vec::with_capacity(local_users.len());
    for user in local_users {
        match effects.filed.and_then(|f| f.get(&user)) {
            Some(list) => copies.extend(list.iter().cloned()),
            None => copies.push(LocalCopy {
                folder: super::deliver::default_for(ctx, &user, folder, fallback).await,
                user,
                flags: Vec::new(),
            }),
        }
    }
    for c in &copies {
        let name = match c.folder.as_str() {
            "INBOX" | "Junk" => c.folder.to_ascii_lowercase(),
            other => other.to_string(),
        };
        let mut why: Vec<String> = effects
            .quarantine
            .map(|r| format!("quarantined: {r}"))
            .into_iter()
            .collect();
        if effects.quarantine.is_none() && effects.folder != "INBOX" && effects.folder == c.folder {
            why.push("the folder a filter chose".into());
        }
        if !c.flags.is_empty() {
            why.push(format!("flags {}", c.flags.join(" ")));
        }
        let e = Event::new(Stage::Store, "folder", name).users(vec![c.user.clone()]);
        traced.recorder.record(e.detail(why.join("; ")));
    }
    for r in &remote {
        let mut e = Event::new(Stage::Store, "queue", "queued").rcpt(&r.address);
        if !r.route.is_empty() {
            e = e.detail(format!("route {}", r.route.join(", ")));
        }
        traced.recorder.record(e);
    }
    if copies.is_empty() && remote.is_empty() {
        // Storage plugins kept every copy (or quarantine or the delivery
        // plugins left nothing): the built-in store keeps nothing;
        // dropping the writer removes the body.
        drop(writer);
        if let Some(t) = traced.recorder.dropped() {
            crate::trace::keep_refused(&ctx.store, t).await;
        }
        return Ok(Committed {
            size,
            local: Vec::new(),
            queued: 0,
            over_quota,
            refused: Vec::new(),
        });
    }
    let queued = remote.len() - over_quota.len();
    let entry = (!remote.is_empty()).then(|| envelope.queue_entry(size, remote));
    let store = &ctx.store;
    let trace = traced.recorder.is_on().then(|| {
        traced
            .recorder
            .message(envelope.id, traced.message_id.clone())
    });
    let queues = entry.is_some();
    let users: Vec<String> = copies.iter().map(|c| c.user.clone()).collect();
    let uids = store
        .accept_message_copies(writer, prefix, copies, entry, trace)
        .await
        .map_err(CommitError::Store)?;
    store.flush().await.map_err(CommitError::Flush)?;
    if queues {
        ctx.queue.queued(envelope.id, now());
    }
    Ok(Committed {
        size,
        local: users.into_iter().zip(uids).collect(),
        queued,
        over_quota,
        refused: Vec::new(),
    })
}

/// Whether a copy of `size` bytes fits in `user`'s quota now. A quota
/// that cannot be read counts as room: the copy is then kept, not lost.
async fn fits(ctx: &ServerContext, user: &str, size: u64) -> bool {
    match ctx.store.quota(user).await {
        Ok(q) => q.admits(size) == Admission::Yes,
        Err(e) => {
            tracing::warn!(user, "reading the quota failed, delivering anyway: {e}");
            true
        }
    }
}
