//! Telling a trace to people: the whole story for `tern trace` (one line
//! per decision, in order, with the client and envelope on top), and the
//! part web mail shows a user about their own copy (`for_user`).

use super::{Event, Stage, Trace};
use std::fmt::Write;

fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn took(us: u64) -> String {
    match us {
        0 => String::new(),
        us if us < 1000 => format!(" ({us} µs)"),
        us if us < 10_000_000 => format!(" ({:.1} ms)", us as f64 / 1000.0),
        us => format!(" ({} s)", us / 1_000_000),
    }
}

/// One decision as one line (without the time).
pub fn line(e: &Event) -> String {
    let mut s = format!("{:<8} {}: {}", e.stage.name(), e.by, e.verdict);
    if let Some(r) = &e.rcpt {
        let _ = write!(s, " <{r}>");
    }
    if !e.users.is_empty() {
        let _ = write!(s, " [{}]", e.users.join(", "));
    }
    if let Some(r) = &e.reply {
        let _ = write!(s, " \"{r}\"");
    }
    if let Some(d) = &e.detail {
        let _ = write!(s, " — {d}");
    }
    s.push_str(&took(e.took_us));
    s
}

/// The stories of `traces`, for a person.
pub fn text(traces: &[Trace]) -> String {
    let mut out = String::new();
    for (n, t) in traces.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let what = match t.id {
            Some(id) => format!("message {}", crate::store::format_queue_id(id)),
            None => "refused attempt (nothing kept)".to_string(),
        };
        let _ = write!(out, "{what}");
        if let Some(mid) = &t.message_id {
            let _ = write!(out, " <{mid}>");
        }
        let _ = write!(out, "\n  client {}", t.client);
        if let Some(h) = &t.helo {
            let _ = write!(out, " (helo {h})");
        }
        let _ = write!(out, ", session from {} UTC", clock(t.started));
        if let Some(s) = &t.sender {
            let sender = if s.is_empty() { "<>" } else { s.as_str() };
            let _ = write!(out, "\n  sender {sender}");
        }
        out.push('\n');
        for e in &t.events {
            let _ = writeln!(out, "  {}  {}", clock(e.at), line(e));
        }
        if t.omitted > 0 {
            let _ = writeln!(
                out,
                "  ({} events left out to keep the trace small)",
                t.omitted
            );
        }
    }
    out
}

/// The part of a message's story about `user`'s own copy, as web mail
/// shows it: the message-wide verdicts at end of data (spam, junk,
/// refusal of a header) and the decisions naming this user (their
/// recipient's route, their folder, their deliveries). Never events about
/// other recipients, never the session's client-side story, and never a
/// plugin's detail (header edits, routes, timings): stage, who, verdict and
/// reply only.
pub fn for_user(trace: &Trace, user: &str) -> Vec<Event> {
    trace
        .events
        .iter()
        .filter(|e| {
            let mine = e.users.iter().any(|u| u.eq_ignore_ascii_case(user));
            let message_wide =
                e.users.is_empty() && e.rcpt.is_none() && matches!(e.stage, Stage::Data);
            mine || message_wide
        })
        .map(|e| Event {
            detail: None,
            took_us: 0,
            users: Vec::new(),
            rcpt: None,
            ..e.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Recorder;

    #[test]
    fn a_user_sees_only_their_own_part() {
        let r = Recorder::new("192.0.2.1".parse().unwrap());
        r.begin("a@far.test");
        r.record(
            Event::new(Stage::Rcpt, "router", "route")
                .rcpt("bob@here.test")
                .users(vec!["bob@here.test".into()]),
        );
        r.record(
            Event::new(Stage::Rcpt, "router", "route")
                .rcpt("carol@here.test")
                .users(vec!["carol@here.test".into()]),
        );
        r.record(
            Event::new(Stage::Data, "plugin content", "quarantine").detail("X-Spam: secret score"),
        );
        r.record(Event::new(Stage::Store, "tern", "junk").users(vec!["carol@here.test".into()]));
        let t = r.message(1, None);
        let bob = for_user(&t, "bob@here.test");
        assert_eq!(bob.len(), 2);
        assert!(bob.iter().all(|e| e.detail.is_none() && e.rcpt.is_none()));
        let all = text(&[t]);
        assert!(all.contains("carol@here.test") && all.contains("secret score"));
    }
}
