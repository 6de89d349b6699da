//! "Why did this message go there?": the record of every decision about a
//! message or a refused attempt — the stage, the built-in check or plugin
//! that decided, its verdict and reply, the time it took, header edits, the
//! route chosen, each delivery attempt. This module owns the vocabulary
//! (`Event`, `Trace`) and the `Recorder` a session carries in its
//! `SessionInfo`, so the hook seams, the checks and the submission path
//! record into it without knowing the store or the server. The store keeps
//! traces (`store/trace.rs`); `render.rs` tells them to people (`tern
//! trace`, web mail's "Why is this here?"); `sweep.rs` forgets them.
//!
//! Bounds: a trace holds at most `MAX_EVENTS` events (past that the oldest
//! after the first half are dropped and counted in `omitted`), and every
//! text in an event is cut to `MAX_TEXT` characters.

pub mod query;
pub mod render;
pub mod sweep;

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most events one trace keeps.
pub const MAX_EVENTS: usize = 64;
/// Longest text (reply, detail, names) an event keeps, in characters.
pub const MAX_TEXT: usize = 300;

/// Where in a message's path a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    /// Where the accepted message was put: folders, the queue, a plugin.
    Store,
    /// An attempt to deliver a queued recipient.
    Delivery,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Store => "store",
            Stage::Delivery => "delivery",
        }
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time in milliseconds.
    pub at: i64,
    pub stage: Stage,
    /// Who decided: `plugin <name>`, or a built-in ("recipient check",
    /// "spf/dkim/dmarc", "router", "queue").
    pub by: String,
    /// What it decided: continue, accept, reject, tempfail, disconnect,
    /// quarantine, discard, route, inbox, junk, queued, sent, deferred,
    /// bounced…
    pub verdict: String,
    /// The SMTP reply it gave (or got, for a delivery attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Time the decision took, in microseconds.
    #[serde(default)]
    pub took_us: u64,
    /// The recipient address it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcpt: Option<String>,
    /// The local users it is about (web mail shows a user only these and
    /// the message-wide ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// More: header edits, the route, the next hop and TLS, results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    pub fn new(stage: Stage, by: impl Into<String>, verdict: impl Into<String>) -> Event {
        Event {
            at: crate::clock::now_ms(),
            stage,
            by: cut(by.into()),
            verdict: cut(verdict.into()),
            reply: None,
            took_us: 0,
            rcpt: None,
            users: Vec::new(),
            detail: None,
        }
    }

    /// A refusal the server decided itself (`by`, a built-in check):
    /// tempfail for a 4xx reply, reject for a 5xx, with the reply.
    pub fn refusal(stage: Stage, by: impl Into<String>, reply: &crate::mail::Reply) -> Event {
        let verdict = if reply.is_transient() {
            "tempfail"
        } else {
            "reject"
        };
        Event::new(stage, by, verdict).reply(reply)
    }

    pub fn reply(mut self, reply: impl std::fmt::Display) -> Event {
        self.reply = Some(cut(reply.to_string()));
        self
    }

    pub fn took(mut self, took: Duration) -> Event {
        self.took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self
    }

    pub fn rcpt(mut self, rcpt: impl Into<String>) -> Event {
        self.rcpt = Some(cut(rcpt.into()));
        self
    }

    pub fn users(mut self, users: Vec<String>) -> Event {
        self.users = users.into_iter().take(16).map(cut).collect();
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        let d = detail.into();
        if !d.is_empty() {
            self.detail = Some(cut(d));
        }
        self
    }

    /// Whether this decision refused something (a 4xx/5xx answer to the client).
    pub fn refuses(&self) -> bool {
        matches!(self.verdict.as_str(), "reject" | "tempfail" | "disconnect")
    }
}

/// Cuts `text` to `MAX_TEXT` characters, on a character boundary.
fn cut(mut text: String) -> String {
    // A text of at most MAX_TEXT bytes has at most as many characters.
    if text.len() <= MAX_TEXT {
        return text;
    }
    if let Some((i, _)) = text.char_indices().nth(MAX_TEXT) {
        text.truncate(i);
        text.push('…');
    }
    text
}

/// The story of one message (kept with it) or one refused attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The queue id (also the body's blob id) of a kept message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The client's address ("web" sessions too have one).
    pub client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    /// The session's start, unix milliseconds.
    pub started: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub events: Vec<Event>,
    /// Events dropped to keep the trace within `MAX_EVENTS`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Trace {
    /// Adds events, keeping the first half and the newest within bounds.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            if self.events.len() >= MAX_EVENTS {
                self.events.remove(MAX_EVENTS / 2);
                self.omitted += 1;
            }
            self.events.push(e);
        }
    }

    /// Unix milliseconds of the last event (or the start).
    pub fn last_at(&self) -> i64 {
        self.events.last().map_or(self.started, |e| e.at)
    }
}

/// What a session has recorded so far.
#[derive(Debug)]
struct State {
    on: bool,
    client: String,
    helo: Option<String>,
    started: i64,
    sender: Option<String>,
    /// Connect, HELO: shared by every transaction of the session.
    session: Vec<Event>,
    /// The transaction in progress.
    tx: Vec<Event>,
    in_tx: bool,
    /// A refusal not yet written anywhere.
    refused: bool,
    /// Events dropped to stay within bounds.
    omitted: u32,
}

/// The recording handle a session carries (cheap to clone; clones share).
#[derive(Debug, Clone)]
pub struct Recorder(Arc<Mutex<State>>);

impl Recorder {
    /// Records the decisions of a session from `client`.
    pub fn new(client: IpAddr) -> Recorder {
        Recorder::make(true, client.to_string())
    }

    /// Records nothing (`tern plugin test`).
    pub fn off() -> Recorder {
        Recorder::make(false, String::new())
    }

    fn make(on: bool, client: String) -> Recorder {
        Recorder(Arc::new(Mutex::new(State {
            on,
            client,
            helo: None,
            started: crate::clock::now_ms(),
            sender: None,
            session: Vec::new(),
            tx: Vec::new(),
            in_tx: false,
            refused: false,
            omitted: 0,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_on(&self) -> bool {
        self.state().on
    }

    /// Adds one decision to the session or to its transaction.
    pub fn record(&self, event: Event) {
        let mut s = self.state();
        if !s.on {
            return;
        }
        s.refused |= event.refuses();
        let in_tx = s.in_tx;
        let list = if in_tx { &mut s.tx } else { &mut s.session };
        let full = list.len() >= MAX_EVENTS;
        if full {
            // The first half and the newest are kept, as in `Trace::extend`.
            list.remove(MAX_EVENTS / 2);
        }
        list.push(event);
        s.omitted += u32::from(full);
    }

    /// The decisions recorded so far for the transaction in progress: the
    /// session's, then the transaction's (a filter's `verdicts.so-far`).
    pub fn so_far(&self) -> Vec<Event> {
        let s = self.state();
        let tx = if s.in_tx { s.tx.as_slice() } else { &[] };
        s.session.iter().chain(tx).cloned().collect()
    }

    pub fn set_helo(&self, helo: &str) {
        self.state().helo = Some(cut(helo.to_string()));
    }

    /// A transaction starts (MAIL FROM): returns the refused attempt that
    /// ends with the one before, if any, for the store.
    pub fn begin(&self, sender: &str) -> Option<Trace> {
        let pending = self.refused();
        let mut s = self.state();
        s.in_tx = true;
        s.sender = Some(cut(sender.to_string()));
        pending
    }

    /// The transaction (if any) ends without a message: its refused
    /// attempt, if it held a refusal not yet written.
    pub fn refused(&self) -> Option<Trace> {
        self.end(false)
    }

    /// The transaction ends with nothing kept (a discard): its story,
    /// refused or not.
    pub fn dropped(&self) -> Option<Trace> {
        self.end(true)
    }

    fn end(&self, always: bool) -> Option<Trace> {
        let mut s = self.state();
        let out = (s.on && (s.refused || always)).then(|| s.trace(None, None));
        s.end_transaction();
        out
    }

    /// The story of the message just accepted (`id`), and the transaction
    /// ends.
    pub fn message(&self, id: u64, message_id: Option<String>) -> Trace {
        let mut s = self.state();
        let trace = s.trace(Some(id), message_id);
        s.end_transaction();
        trace
    }
}

impl State {
    fn end_transaction(&mut self) {
        self.refused = false;
        self.tx.clear();
        self.in_tx = false;
        self.omitted = 0;
    }

    /// The story so far; the transaction's events move into it (the
    /// transaction ends right after), the session's are copied (a later
    /// transaction of the session starts with them too).
    fn trace(&mut self, id: Option<u64>, message_id: Option<String>) -> Trace {
        let mut t = Trace {
            id,
            client: self.client.clone(),
            helo: self.helo.clone(),
            started: self.started,
            sender: self.sender.clone().filter(|_| self.in_tx),
            message_id: message_id.map(cut),
            events: Vec::with_capacity(self.session.len() + self.tx.len()),
            omitted: self.omitted,
        };
        t.extend(self.session.iter().cloned());
        t.extend(std::mem::take(&mut self.tx));
        t
    }
}

/// Keeps a refused attempt's trace in the store; a failure is only logged
/// (the refusal stands either way).
pub async fn keep_refused(store: &crate::store::Store, trace: Trace) {
    match store.record_attempt(&trace).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(client = %trace.client, "refused attempt not traced: the store holds the most it keeps")
        }
        Err(e) => tracing::warn!(client = %trace.client, "refused attempt not traced: {e}"),
    }
}

/// The Message-ID of a header section (`<…>` stripped), if it has one.
pub fn message_id(header: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(header)?;
    parsed.message_id().map(|id| cut(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_attempt_is_handed_out_once_and_a_message_clears_it() {
        let r = Recorder::new("192.0.2.1".parse().unwrap());
        r.record(Event::new(Stage::Connect, "plugin a", "continue"));
        assert!(r.begin("a@b.test").is_none());
        r.record(Event::new(Stage::Rcpt, "recipient check", "reject").reply("550 5.1.1 no"));
        let t = r.begin("c@b.test").expect("the refused RCPT");
        assert_eq!(t.events.len(), 2);
        assert_eq!(t.sender.as_deref(), Some("a@b.test"));
        assert!(r.refused().is_none());
        r.begin("d@b.test");
        r.record(Event::new(Stage::Rcpt, "recipient check", "reject"));
        r.record(Event::new(Stage::Rcpt, "router", "route"));
        let m = r.message(7, Some("x@y".into()));
        assert_eq!((m.id, m.events.len()), (Some(7), 3));
        assert!(r.refused().is_none(), "the message carried its refusal");
    }

    #[test]
    fn traces_stay_within_their_bounds() {
        let mut t = Recorder::new("192.0.2.1".parse().unwrap()).message(1, None);
        t.extend((0..MAX_EVENTS + 10).map(|i| Event::new(Stage::Delivery, "queue", i.to_string())));
        assert_eq!(t.events.len(), MAX_EVENTS);
        assert_eq!(t.omitted, 10);
        assert_eq!(t.events[0].verdict, "0");
        let r = Recorder::new("192.0.2.1".parse().unwrap());
        r.begin("a@b.test");
        for i in 0..MAX_EVENTS * 3 {
            r.record(Event::new(Stage::Rcpt, "router", i.to_string()));
        }
        r.record(Event::new(Stage::Store, "folder", "inbox"));
        let m = r.message(2, None);
        assert_eq!(m.events.len(), MAX_EVENTS);
        assert_eq!(m.events.last().map(|e| e.verdict.as_str()), Some("inbox"));
        assert!(m.omitted > 0);
        let long = Event::new(Stage::Data, "x".repeat(5000), "reject");
        assert!(long.by.chars().count() <= MAX_TEXT + 1);
    }

    #[test]
    fn so_far_is_the_session_and_the_transaction_in_progress() {
        let r = Recorder::new("192.0.2.1".parse().unwrap());
        r.record(Event::new(Stage::Connect, "plugin a", "continue"));
        r.begin("a@b.test");
        r.record(Event::new(Stage::Rcpt, "router", "route"));
        let seen: Vec<String> = r.so_far().into_iter().map(|e| e.by).collect();
        assert_eq!(seen, ["plugin a", "router"]);
        r.message(1, None);
        assert_eq!(r.so_far().len(), 1, "the next transaction starts afresh");
        assert!(Recorder::off().so_far().is_empty());
    }

    #[test]
    fn message_ids_are_read_from_the_header() {
        let h = b"From: a@b.test\r\nMessage-ID: <abc@b.test>\r\n\r\n";
        assert_eq!(message_id(h).as_deref(), Some("abc@b.test"));
        assert_eq!(message_id(b"From: a@b.test\r\n\r\n"), None);
    }
}
