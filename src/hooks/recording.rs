//! What the hook seams tell the session's trace (`crate::trace`): one
//! event per built-in check and per plugin call, with its verdict, reply
//! and time, the header edits a filter asked for, and the route chosen
//! for each recipient.

use super::Verdict;
use super::bindings::wit;
use super::declared::Hook;
use crate::mail::Target;
use crate::trace::{Event, Stage};
use std::time::Duration;

/// The trace stage of a hook.
pub(super) fn stage_of(hook: Hook) -> Stage {
    match hook {
        Hook::Connect => Stage::Connect,
        Hook::Helo => Stage::Helo,
        Hook::MailFrom => Stage::Mail,
        Hook::Data => Stage::Data,
        Hook::RcptTo | Hook::Route | Hook::RewriteRecipient => Stage::Rcpt,
    }
}

/// A verdict as an event by `by` at `stage`.
pub fn verdict(stage: Stage, by: impl Into<String>, v: &Verdict, took: Duration) -> Event {
    let word = match v {
        Verdict::Continue => "continue",
        Verdict::Accept => "accept",
        Verdict::Reject(_) => "reject",
        Verdict::Tempfail(_) => "tempfail",
        Verdict::Disconnect(_) => "disconnect",
    };
    with_reply(Event::new(stage, by, word).took(took), v)
}

/// A plugin's name as the trace says it.
pub(super) fn plugin(name: &str) -> String {
    format!("plugin {name}")
}

/// A filter's answer: its action and the header edits it asked for.
pub(super) fn filter(name: &str, fv: &wit::FilterVerdict, took: Duration) -> Event {
    let (word, why) = match &fv.action {
        wit::FilterAction::Continue => ("continue", None),
        wit::FilterAction::Accept => ("accept", None),
        wit::FilterAction::Reject(_) => ("reject", None),
        wit::FilterAction::Tempfail(_) => ("tempfail", None),
        wit::FilterAction::Disconnect(_) => ("disconnect", None),
        wit::FilterAction::Discard => ("discard", None),
        wit::FilterAction::Quarantine(reason) => ("quarantine", Some(reason.as_str())),
    };
    let mut parts: Vec<String> = why.map(|w| format!("reason: {w}")).into_iter().collect();
    for edit in &fv.edits {
        parts.push(match edit {
            wit::HeaderEdit::Add(h) => {
                let value: String = h.value.chars().take(80).collect();
                format!("added {}: {value}", h.name)
            }
            wit::HeaderEdit::Remove(n) => format!("removed {n}"),
        });
    }
    Event::new(Stage::Data, plugin(name), word)
        .took(took)
        .detail(parts.join("; "))
}

/// `event` with the reply of `v`, when it has one.
pub(super) fn with_reply(event: Event, v: &Verdict) -> Event {
    match v {
        Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) => event.reply(r),
        _ => event,
    }
}

/// Where a recipient goes, as one event naming its local users.
pub(super) fn route(to: &str, targets: &[Target]) -> Event {
    let mut users = Vec::new();
    let mut parts = Vec::new();
    for t in targets {
        match t {
            Target::Local(u) => {
                users.push(u.clone());
                parts.push(format!("mailbox {u}"));
            }
            Target::Remote(a) => parts.push(format!("relay to {a} (MX or smarthost)")),
            Target::Relay {
                address,
                hosts,
                tls,
            } => {
                let mut p = format!("relay {address} via {}", hosts.join(", "));
                if tls.is_some() {
                    p.push_str(" (verified TLS demanded)");
                }
                parts.push(p);
            }
        }
    }
    Event::new(Stage::Rcpt, "router", "route")
        .rcpt(to)
        .users(users)
        .detail(parts.join("; "))
}
