//! The stored form of decision traces (`store/trace.rs`): a version byte
//! (`COMPACT`) and then postcard of the trace's fields in a fixed order,
//! lengths and times as varints. A trace is mostly short texts, so this is
//! about half the size of the JSON that releases before it wrote (834 →
//! 407 bytes for a relayed message's story in `bench/`), and JSON still
//! decodes: such a value starts with `{` (a trace) or `[` (a pass's
//! attempts), never with the version byte.
//!
//! The order of the fields below and of `Stage`'s variants is the format:
//! a new field or stage goes at the end, under a new version byte if old
//! values could not be read with it.

use super::{StoreError, corrupt};
use crate::trace::{Event, Stage, Trace};
use serde::{Deserialize, Serialize};

/// The first byte of a compact value.
const COMPACT: u8 = 1;

#[derive(Serialize)]
struct EventOut<'a> {
    at: i64,
    stage: Stage,
    by: &'a str,
    verdict: &'a str,
    reply: Option<&'a str>,
    took_us: u64,
    rcpt: Option<&'a str>,
    users: &'a [String],
    detail: Option<&'a str>,
}

impl<'a> From<&'a Event> for EventOut<'a> {
    fn from(e: &'a Event) -> Self {
        EventOut {
            at: e.at,
            stage: e.stage,
            by: &e.by,
            verdict: &e.verdict,
            reply: e.reply.as_deref(),
            took_us: e.took_us,
            rcpt: e.rcpt.as_deref(),
            users: &e.users,
            detail: e.detail.as_deref(),
        }
    }
}

#[derive(Deserialize)]
struct EventIn {
    at: i64,
    stage: Stage,
    by: String,
    verdict: String,
    reply: Option<String>,
    took_us: u64,
    rcpt: Option<String>,
    users: Vec<String>,
    detail: Option<String>,
}

impl From<EventIn> for Event {
    fn from(e: EventIn) -> Self {
        Event {
            at: e.at,
            stage: e.stage,
            by: e.by,
            verdict: e.verdict,
            reply: e.reply,
            took_us: e.took_us,
            rcpt: e.rcpt,
            users: e.users,
            detail: e.detail,
        }
    }
}

/// The events of a trace or a pass, written as a sequence without a copy.
struct EventsOut<'a>(&'a [Event]);

impl Serialize for EventsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(EventOut::from))
    }
}

#[derive(Serialize)]
struct TraceOut<'a> {
    id: Option<u64>,
    client: &'a str,
    helo: Option<&'a str>,
    started: i64,
    sender: Option<&'a str>,
    message_id: Option<&'a str>,
    events: EventsOut<'a>,
    omitted: u32,
}

#[derive(Deserialize)]
struct TraceIn {
    id: Option<u64>,
    client: String,
    helo: Option<String>,
    started: i64,
    sender: Option<String>,
    message_id: Option<String>,
    events: Vec<EventIn>,
    omitted: u32,
}

fn compact<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain records into a Vec cannot fail.
    postcard::to_extend(value, vec![COMPACT]).unwrap_or_default()
}

/// A trace as stored.
pub(super) fn encode_trace(t: &Trace) -> Vec<u8> {
    compact(&TraceOut {
        id: t.id,
        client: &t.client,
        helo: t.helo.as_deref(),
        started: t.started,
        sender: t.sender.as_deref(),
        message_id: t.message_id.as_deref(),
        events: EventsOut(&t.events),
        omitted: t.omitted,
    })
}

/// A delivery pass's events as stored.
pub(super) fn encode_events(events: &[Event]) -> Vec<u8> {
    compact(&EventsOut(events))
}

/// A stored trace, compact or JSON.
pub(super) fn decode_trace(bytes: &[u8]) -> Result<Trace, StoreError> {
    match bytes.split_first() {
        Some((&COMPACT, rest)) => {
            let t: TraceIn = postcard::from_bytes(rest).map_err(|e| corrupt("trace", e))?;
            Ok(Trace {
                id: t.id,
                client: t.client,
                helo: t.helo,
                started: t.started,
                sender: t.sender,
                message_id: t.message_id,
                events: t.events.into_iter().map(Event::from).collect(),
                omitted: t.omitted,
            })
        }
        _ => super::decode("trace", bytes),
    }
}

/// A stored pass's events, compact or JSON.
pub(super) fn decode_events(bytes: &[u8]) -> Result<Vec<Event>, StoreError> {
    match bytes.split_first() {
        Some((&COMPACT, rest)) => {
            let events: Vec<EventIn> =
                postcard::from_bytes(rest).map_err(|e| corrupt("trace attempts", e))?;
            Ok(events.into_iter().map(Event::from).collect())
        }
        _ => super::decode("trace attempts", bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Trace {
        let event = Event::new(Stage::Delivery, "queue", "sent")
            .reply("250 2.0.0 Ok")
            .took(std::time::Duration::from_micros(2801))
            .rcpt("rcpt@sink.test")
            .users(vec!["alice".into(), "bob".into()])
            .detail("attempt 1, via 127.0.0.1[127.0.0.1]:25, plain");
        Trace {
            id: Some(0xBB5),
            client: "192.0.2.1".into(),
            helo: Some("mx.example.test".into()),
            started: 1_796_575_343_342,
            sender: Some("sender@outside.test".into()),
            message_id: Some("44e0.0006.0ba4@vm".into()),
            events: vec![
                Event::new(Stage::Connect, "plugin dnsbl", "continue"),
                event,
            ],
            omitted: 3,
        }
    }

    #[test]
    fn traces_and_passes_read_back_as_written() {
        let t = full();
        assert_eq!(decode_trace(&encode_trace(&t)).unwrap(), t);
        let bare = Trace {
            id: None,
            helo: None,
            sender: None,
            message_id: None,
            events: Vec::new(),
            omitted: 0,
            ..full()
        };
        assert_eq!(decode_trace(&encode_trace(&bare)).unwrap(), bare);
        assert_eq!(decode_events(&encode_events(&t.events)).unwrap(), t.events);
        assert!(decode_events(&encode_events(&[])).unwrap().is_empty());
    }

    #[test]
    fn what_earlier_releases_wrote_still_reads() {
        let t = full();
        let json = serde_json::to_vec(&t).unwrap();
        assert_eq!(decode_trace(&json).unwrap(), t);
        let json = serde_json::to_vec(&t.events).unwrap();
        assert_eq!(decode_events(&json).unwrap(), t.events);
    }

    #[test]
    fn compact_is_about_half_the_json() {
        let t = full();
        let (compact, json) = (
            encode_trace(&t).len(),
            serde_json::to_vec(&t).unwrap().len(),
        );
        assert!(compact * 10 < json * 6, "{compact} bytes against {json}");
    }

    #[test]
    fn a_cut_or_garbled_value_is_an_error_not_a_panic() {
        let bytes = encode_trace(&full());
        for end in 1..bytes.len() {
            assert!(decode_trace(&bytes[..end]).is_err(), "cut at {end}");
        }
        assert!(decode_trace(&[COMPACT, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_events(&[COMPACT, 0x05]).is_err());
        assert!(decode_trace(b"").is_err());
    }
}
