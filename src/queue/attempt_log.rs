//! What one delivery attempt leaves behind: the log line operators grep,
//! and the event in the message's decision trace (`crate::trace`) that
//! `tern trace` shows — the recipient, the next hop, TLS, the reply and
//! whether it was sent, deferred or bounced. The pass's events are written
//! with the entry's new state (`Deliverer::finish`).

use crate::store::{QueueEntry, QueueRecipient, now};
use crate::trace::{Event, Stage};
use std::time::Instant;

/// Logs one recipient's result and returns it as a trace event; its time
/// is the attempt's own, from `started` (when this recipient's local
/// delivery, or its group's SMTP transaction, began) to now.
pub(super) fn log_result(
    entry: &QueueEntry,
    r: &QueueRecipient,
    relay: Option<&str>,
    tls: Option<&str>,
    status: &str,
    text: &str,
    started: Instant,
) -> Event {
    let took = started.elapsed();
    tracing::info!(
        queue_id = %entry.queue_id(),
        to = %r.address,
        relay = relay.unwrap_or("none"),
        tls = tls.unwrap_or("none"),
        tls_policy = r.tls_policy.as_deref().unwrap_or("none"),
        delay = format!("{:.2}", (now() - entry.arrived) as f64),
        attempt_secs = format!("{:.2}", took.as_secs_f64()),
        attempts = r.attempts,
        status,
        "{text}"
    );
    let mut detail = format!("attempt {}", r.attempts);
    if let Some(relay) = relay {
        detail.push_str(&format!(", via {relay}"));
    }
    if let Some(tls) = tls {
        detail.push_str(&format!(", {tls}"));
    }
    if let Some(policy) = &r.tls_policy {
        detail.push_str(&format!(", TLS policy {policy}"));
    }
    Event::new(Stage::Delivery, "queue", status)
        .rcpt(&r.address)
        .users(r.local_users.clone())
        .reply(text)
        .took(took)
        .detail(detail)
}
