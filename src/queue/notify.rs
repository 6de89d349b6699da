//! Telling the sender: builds a DSN (`dsn.rs`) about some recipients of a
//! queue entry and queues it from `MAILER-DAEMON` with the null sender — to
//! the sender's mailbox when the sender is local, onward otherwise. Never to
//! `<>`, and only for the reports NOTIFY asks for.

use super::dsn::{self, DsnKind};
use crate::server::ServerContext;
use crate::store::{QueueEntry, QueueRecipient, StoreError, now};

/// Sends a DSN about `which` recipients to the sender, if there is one
/// and they asked for it.
pub async fn send(
    ctx: &ServerContext,
    entry: &QueueEntry,
    which: &[usize],
    kind: DsnKind,
) -> Result<(), StoreError> {
    if entry.sender.is_empty() {
        return Ok(()); // never a bounce to <>
    }
    let wanted: Vec<&QueueRecipient> = which
        .iter()
        .map(|&i| &entry.recipients[i])
        .filter(|r| {
            r.wants(match kind {
                DsnKind::Failed => "FAILURE",
                DsnKind::Delayed => "DELAY",
                DsnKind::Delivered | DsnKind::Relayed => "SUCCESS",
            })
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let original = ctx.store.read_blob(entry.blob)?;
    let message = dsn::build(&ctx.config.hostname, entry, &wanted, kind, &original);
    // RFC 8689 section 5: a report about a REQUIRETLS message travels
    // under the same requirement.
    let queued = queue_message(
        ctx,
        &entry.sender,
        &message,
        "local bounce",
        entry.require_tls,
    )
    .await?;
    if let Some(id) = queued {
        tracing::info!(queue_id = %entry.queue_id(), bounce_id = %crate::store::format_queue_id(id), to = %entry.sender, kind = ?kind, "notification queued");
    }
    Ok(())
}

/// Queues `message` from the null sender to `to` (its aliases expanded,
/// local users delivered locally); returns the queue id, None when the
/// address leads nowhere.
pub async fn queue_message(
    ctx: &ServerContext,
    to: &str,
    message: &[u8],
    client: &str,
    require_tls: bool,
) -> Result<Option<u64>, StoreError> {
    let store = &ctx.store;
    let id = store.next_id()?;
    let (targets, _) = crate::checks::expand(&ctx.config, store, to);
    if targets.is_empty() {
        tracing::warn!(to, "a report has nowhere to go; dropped");
        return Ok(None);
    }
    let local: Vec<String> = targets
        .iter()
        .filter_map(|t| match t {
            crate::hooks::Target::Local(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    let mut recipients = Vec::new();
    if !local.is_empty() {
        recipients.push(QueueRecipient::new(
            to.to_string(),
            Some("NEVER".into()),
            None,
            local,
        ));
    }
    for t in targets {
        if let crate::hooks::Target::Remote(a) = t {
            recipients.push(QueueRecipient::new(
                a,
                Some("NEVER".into()),
                None,
                Vec::new(),
            ));
        }
    }
    let entry = QueueEntry {
        id,
        blob: id,
        size: message.len() as u64,
        sender: String::new(),
        envid: None,
        ret: None,
        smtputf8: false,
        eight_bit: false,
        arrived: now(),
        client: client.into(),
        recipients,
        warned: true,
        require_tls,
    };
    store.enqueue_bytes(entry, message)?;
    store.flush().await?;
    ctx.queue.queued(id, now());
    Ok(Some(id))
}
