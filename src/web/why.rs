//! "Why is this here?" on a message page: the part of the message's
//! decision trace (`crate::trace`) about the reader's own copy — the
//! message-wide verdicts at end of data (spam and junk filters, DMARC),
//! their own recipient's route, the folder their copy went to, deliveries
//! to them (`trace::render::for_user`). Never another recipient's events,
//! never the sending session's story, and of each decision only the
//! stage, who decided, the verdict and the reply: a plugin's details
//! (header edits and their values, routes, timings) stay with the operator
//! (`tern trace`).

use crate::store::{BlobId, Store};
use crate::trace::render::for_user;
use maud::{Markup, html};

/// The section for `user`'s copy of the message stored as `blob`.
pub async fn section(store: &Store, user: &str, blob: BlobId) -> Markup {
    let events = match store.trace(blob).await {
        Ok(Some(t)) => for_user(&t, user),
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!(user, blob, "reading a decision trace: {e}");
            Vec::new()
        }
    };
    html! {
        details.why id="why" {
            summary { "Why is this here?" }
            @if events.is_empty() {
                p { "No decisions were recorded about this message (it was put here by a mail program, or arrived before Tern kept them)." }
            } @else {
                ol {
                    @for e in &events {
                        li {
                            time { (clock(e.at)) }
                            " " (e.stage.name()) " — " (e.by) ": "
                            strong { (e.verdict) }
                            @if let Some(r) = &e.reply { " (" (r) ")" }
                        }
                    }
                }
            }
        }
    }
}

fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
