//! Telling the sender: builds a DSN (`dsn.rs`) about some recipients of a
//! queue entry and queues it from `MAILER-DAEMON` with the null sender — to
//! the sender's mailbox when the sender is local, onward otherwise. Never to
//! `<>`, and only for the reports NOTIFY asks for.

use super::dsn::{self, DsnKind};
use crate::context::ServerContext;
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
    let original = ctx.store.read_blob(entry.blob).await?;
    send_about(ctx, entry, which, kind, &original).await
}

/// `send`, with the message the report is about given (`original`: a
/// message that was never stored, such as one a delivery plugin refused
/// for some of its recipients).
pub async fn send_about(
    ctx: &ServerContext,
    entry: &QueueEntry,
    which: &[usize],
    kind: DsnKind,
    original: &[u8],
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
    let store = &ctx.store;
    let message = dsn::build(&ctx.config.hostname, entry, &wanted, kind, original);
    let recipients = recipients_for(&ctx.config, store, &entry.sender).await;
    if recipients.is_empty() {
        tracing::warn!(queue_id = %entry.queue_id(), sender = %entry.sender, "bounce has nowhere to go; dropped");
        return Ok(());
    }
    // RFC 8689 section 5: a report about a REQUIRETLS message travels
    // under the same requirement.
    let id = enqueue(
        ctx,
        "",
        recipients,
        &message,
        "local bounce",
        entry.require_tls,
    )
    .await?;
    tracing::info!(queue_id = %entry.queue_id(), bounce_id = %crate::store::format_queue_id(id), to = %entry.sender, kind = ?kind, "notification queued");
    Ok(())
}

/// Where a message Tern writes itself goes for `address`: the local users
/// it reaches (after aliases) and the remote addresses, with NOTIFY=NEVER
/// (no report about a report). Empty when it goes nowhere.
pub async fn recipients_for(
    config: &crate::config::Config,
    store: &crate::store::Store,
    address: &str,
) -> Vec<QueueRecipient> {
    recipients_with(config, store, address, Some("NEVER")).await
}

/// `recipients_for` with this DSN NOTIFY (None: the default, failures).
pub async fn recipients_with(
    config: &crate::config::Config,
    store: &crate::store::Store,
    address: &str,
    notify: Option<&str>,
) -> Vec<QueueRecipient> {
    let (targets, _) = crate::checks::expand(config, store, address).await;
    let local: Vec<String> = targets
        .iter()
        .filter_map(|t| match t {
            crate::mail::Target::Local(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    let mut list = Vec::new();
    if !local.is_empty() {
        list.push(QueueRecipient::new(
            address.to_string(),
            notify.map(str::to_string),
            None,
            local,
        ));
    }
    for t in targets {
        if let crate::mail::Target::Remote(a) = t {
            list.push(QueueRecipient::new(
                a,
                notify.map(str::to_string),
                None,
                Vec::new(),
            ));
        }
    }
    list
}

/// Stores `message` (written by Tern: a bounce, a report) from `sender`
/// for `recipients`, durably, and wakes the queue. Returns its queue id.
pub async fn enqueue_generated(
    ctx: &ServerContext,
    sender: &str,
    recipients: Vec<QueueRecipient>,
    message: &[u8],
    client: &str,
) -> Result<u64, StoreError> {
    enqueue(ctx, sender, recipients, message, client, false).await
}

/// `enqueue_generated`, with REQUIRETLS (RFC 8689) when `require_tls`.
async fn enqueue(
    ctx: &ServerContext,
    sender: &str,
    recipients: Vec<QueueRecipient>,
    message: &[u8],
    client: &str,
    require_tls: bool,
) -> Result<u64, StoreError> {
    let store = &ctx.store;
    let id = store.next_id().await?;
    let entry = QueueEntry {
        id,
        blob: id,
        size: message.len() as u64,
        sender: sender.to_string(),
        envid: None,
        ret: None,
        smtputf8: false,
        eight_bit: false,
        arrived: now(),
        client: client.into(),
        recipients,
        warned: true,
        require_tls,
        node: None,
    };
    store.enqueue_bytes(entry, message).await?;
    store.flush().await?;
    ctx.queue.queued(id, now());
    Ok(id)
}
