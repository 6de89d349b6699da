//! Decision traces (`crate::trace`) over the storage seam. A kept message's
//! trace is `T/<id, 8 bytes BE>` (the queue and blob id), written in the
//! same batch as the message (`accept_message_into`); each delivery pass
//! adds its attempts under a key of their own, `T/<id><ms BE><random>`
//! (`extend_in`, `append_trace`: a put, never a read of the trace, so a
//! pass costs no decode and re-encode of what came before), and a read
//! folds them into the trace in order; `I/<message-id>\0<id>` finds it by
//! Message-ID. When the body goes (its last reference dropped in
//! `writeset.rs`) a marker `G/<ms BE><id BE>` says since when, and the
//! sweep forgets the trace `[trace] keep` later. A refused attempt (or a
//! message nothing kept: discarded, all quarantined away) is `R/<ms
//! BE><random>`, forgotten `keep` after it happened; `R#` counts them and
//! past `MAX_ATTEMPTS` new ones are not kept (a flood cannot fill the disk).
//! The values' form (compact, JSON before it) is `trace_codec.rs`'s.

use super::backend::{Batch, KeyRange, ScanOrder, Space, retry};
use super::trace_codec::{decode_events, decode_trace, encode_events, encode_trace};
use super::{Store, StoreError};
use crate::trace::{Event, Trace};

/// Most refused-attempt traces kept at once.
pub const MAX_ATTEMPTS: u64 = 50_000;
const COUNT_KEY: &[u8] = b"R#";
/// Keys one sweep step deletes in one batch.
const SWEEP_STEP: usize = 500;

fn trace_key(id: u64) -> Vec<u8> {
    let mut k = b"T/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn index_prefix(message_id: &str) -> Vec<u8> {
    let mut k = b"I/".to_vec();
    k.extend_from_slice(message_id.to_ascii_lowercase().as_bytes());
    k.push(0);
    k
}

fn index_key(message_id: &str, id: u64) -> Vec<u8> {
    let mut k = index_prefix(message_id);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn timed_key(prefix: &[u8], ms: i64, tail: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&(ms.max(0) as u64).to_be_bytes());
    k.extend_from_slice(&tail.to_be_bytes());
    k
}

/// The key range of `prefix` keys timed before `ms`.
fn before(prefix: &[u8], ms: i64) -> KeyRange {
    KeyRange::between(prefix, &timed_key(prefix, ms, 0))
}

/// Writes a new message's trace (and its Message-ID index) into `batch`.
pub(super) fn put_trace(batch: &mut Batch, trace: &Trace) {
    let Some(id) = trace.id else {
        return;
    };
    batch.put(Space::Meta, trace_key(id), encode_trace(trace));
    if let Some(mid) = &trace.message_id {
        batch.put(Space::Meta, index_key(mid, id), Vec::new());
    }
}

/// Notes in `batch` that the body `id` is gone (its trace starts to age).
pub(super) fn mark_gone(batch: &mut Batch, id: u64) {
    let now = crate::clock::now_ms();
    batch.put(Space::Meta, timed_key(b"G/", now, id), Vec::new());
}

/// Adds `events` to the trace of message `id` in `batch`, under a key of
/// their own (no read: nothing to race for).
pub(super) fn extend_in(batch: &mut Batch, id: u64, events: &[Event]) {
    let Some(first) = events.first() else {
        return;
    };
    let mut key = trace_key(id);
    key.extend_from_slice(&(first.at.max(0) as u64).to_be_bytes());
    key.extend_from_slice(&rand::random::<u32>().to_be_bytes());
    batch.put(Space::Meta, key, encode_events(events));
}

/// Folds a scan of `T/` keys (in key order) into whole traces: each
/// message's record followed by its passes' attempts. A message queued
/// without a record (a bounce) gets one from its first attempt.
fn fold_traces(found: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vec<Trace>, StoreError> {
    let mut out: Vec<Trace> = Vec::new();
    for (k, v) in found {
        let Some(id) = k
            .get(2..10)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        if k.len() == 10 {
            out.push(decode_trace(&v)?);
            continue;
        }
        let events = decode_events(&v)?;
        let Some(first) = events.first() else {
            continue;
        };
        if out.last().is_none_or(|t| t.id != Some(id)) {
            out.push(Trace {
                id: Some(id),
                client: "local".into(),
                helo: None,
                started: first.at,
                sender: None,
                message_id: None,
                events: Vec::new(),
                omitted: 0,
            });
        }
        if let Some(t) = out.last_mut() {
            t.extend(events);
        }
    }
    Ok(out)
}

fn count(raw: Option<&[u8]>) -> u64 {
    raw.and_then(|v| v.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl Store {
    /// The trace of the message with queue id `id`.
    pub async fn trace(&self, id: u64) -> Result<Option<Trace>, StoreError> {
        let found = self
            .inner
            .backend
            .scan(
                Space::Meta,
                &KeyRange::prefix(&trace_key(id)),
                ScanOrder::ALL,
            )
            .await?;
        Ok(fold_traces(found)?.pop())
    }

    /// Adds events (delivery attempts) to a message's trace; a message
    /// queued without one (a bounce, an older release) gets one.
    pub async fn append_trace(&self, id: u64, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        extend_in(&mut batch, id, events);
        Ok(self.inner.backend.commit(batch).await?)
    }

    /// Keeps the trace of a refused attempt (false: over `MAX_ATTEMPTS`,
    /// not kept).
    pub async fn record_attempt(&self, trace: &Trace) -> Result<bool, StoreError> {
        let key = timed_key(b"R/", trace.last_at(), u64::from(rand::random::<u32>()));
        let value = encode_trace(trace);
        let backend = &self.inner.backend;
        let kept = retry(|| async {
            let raw = backend.get(Space::Meta, COUNT_KEY).await?;
            let n = count(raw.as_deref());
            if n >= MAX_ATTEMPTS {
                return Ok(false);
            }
            let mut batch = Batch::new();
            batch.require(Space::Meta, COUNT_KEY.to_vec(), raw.as_deref());
            batch.put(
                Space::Meta,
                COUNT_KEY.to_vec(),
                (n + 1).to_be_bytes().to_vec(),
            );
            batch.put(Space::Meta, key.clone(), value.clone());
            backend.commit(batch).await.map(|()| true)
        })
        .await?;
        Ok(kept)
    }

    /// The traces of messages with this Message-ID (`<>` optional).
    pub async fn traces_by_message_id(&self, message_id: &str) -> Result<Vec<Trace>, StoreError> {
        let mid = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let prefix = index_prefix(mid);
        let keys = self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
            .await?;
        let mut out = Vec::new();
        for (k, _) in keys {
            let id = k[prefix.len()..].try_into().ok().map(u64::from_be_bytes);
            if let Some(t) = match id {
                Some(id) => self.trace(id).await?,
                None => None,
            } {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Every trace (messages and refused attempts) of sessions from
    /// `client` with an event between `since` and `until` (unix ms), oldest
    /// first.
    pub async fn traces_of_client(
        &self,
        client: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<Trace>, StoreError> {
        let backend = &self.inner.backend;
        let range = KeyRange::between(
            &timed_key(b"R/", since, 0),
            &timed_key(b"R/", until.saturating_add(1), 0),
        );
        let mut out = Vec::new();
        for (_, v) in backend.scan(Space::Meta, &range, ScanOrder::ALL).await? {
            let t = decode_trace(&v)?;
            if t.client == client {
                out.push(t);
            }
        }
        let all = backend
            .scan(Space::Meta, &KeyRange::prefix(b"T/"), ScanOrder::ALL)
            .await?;
        for t in fold_traces(all)? {
            if t.client == client && t.last_at() >= since && t.started <= until {
                out.push(t);
            }
        }
        out.sort_by_key(|t| t.started);
        Ok(out)
    }

    /// Forgets refused attempts from before `cutoff` (unix ms) and the
    /// traces of messages gone since before it; returns how many.
    pub async fn expire_traces(&self, cutoff: i64) -> Result<usize, StoreError> {
        let backend = &self.inner.backend;
        let step = ScanOrder {
            reverse: false,
            limit: Some(SWEEP_STEP),
        };
        let mut forgotten = 0;
        loop {
            let gone = backend
                .scan(Space::Meta, &before(b"G/", cutoff), step)
                .await?;
            if gone.is_empty() {
                break;
            }
            let mut batch = Batch::new();
            for (k, _) in &gone {
                let id = k[k.len() - 8..]
                    .try_into()
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                let parts = backend
                    .scan(
                        Space::Meta,
                        &KeyRange::prefix(&trace_key(id)),
                        ScanOrder::ALL,
                    )
                    .await?;
                if let Some(t) = fold_traces(parts.clone())?.pop() {
                    if let Some(mid) = &t.message_id {
                        batch.delete(Space::Meta, index_key(mid, id));
                    }
                    forgotten += 1;
                }
                for (part, _) in parts {
                    batch.delete(Space::Meta, part);
                }
                batch.delete(Space::Meta, k.clone());
            }
            backend.commit(batch).await?;
        }
        loop {
            let old = backend
                .scan(Space::Meta, &before(b"R/", cutoff), step)
                .await?;
            if old.is_empty() {
                break;
            }
            let n = old.len() as u64;
            retry(|| async {
                let raw = backend.get(Space::Meta, COUNT_KEY).await?;
                let mut batch = Batch::new();
                for (k, _) in &old {
                    batch.delete(Space::Meta, k.clone());
                }
                let left = count(raw.as_deref()).saturating_sub(n);
                batch.require(Space::Meta, COUNT_KEY.to_vec(), raw.as_deref());
                batch.put(Space::Meta, COUNT_KEY.to_vec(), left.to_be_bytes().to_vec());
                backend.commit(batch).await
            })
            .await?;
            forgotten += old.len();
        }
        Ok(forgotten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Recorder, Stage};

    fn attempt(client: &str, at: i64) -> Trace {
        let r = Recorder::new(client.parse().unwrap());
        r.begin("a@b.test");
        let mut e = Event::new(Stage::Rcpt, "recipient check", "reject");
        e.at = at;
        r.record(e);
        let mut t = r.refused().unwrap();
        t.started = at;
        t
    }

    #[tokio::test]
    async fn a_message_trace_lives_with_the_message_then_keep_longer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user("bob@example.test", "pw").await.unwrap();
        let id = store.next_id().await.unwrap();
        let mut w = store.blob_writer(id);
        w.write(b"Message-ID: <m@x>\r\n\r\nhi\r\n").await.unwrap();
        let r = Recorder::new("192.0.2.1".parse().unwrap());
        r.begin("a@x");
        r.record(
            Event::new(Stage::Store, "folder", "inbox").users(vec!["bob@example.test".into()]),
        );
        let trace = r.message(id, Some("m@x".into()));
        let bob = vec!["bob@example.test".to_string()];
        let uids = store
            .accept_message_into(w, Vec::new(), &bob, "INBOX", None, Some(&trace))
            .await
            .unwrap();
        store
            .append_trace(id, &[Event::new(Stage::Delivery, "queue", "sent")])
            .await
            .unwrap();
        let found = store.traces_by_message_id("<M@x>").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].events.len(), 2);
        // Stored: never forgotten, however old.
        let far = chrono::Utc::now().timestamp_millis() + 1_000_000;
        assert_eq!(store.expire_traces(far).await.unwrap(), 0);
        store
            .expunge("bob@example.test", "INBOX", &uids)
            .await
            .unwrap();
        assert!(
            store.trace(id).await.unwrap().is_some(),
            "kept after the message went"
        );
        assert_eq!(store.expire_traces(far).await.unwrap(), 1);
        assert!(store.trace(id).await.unwrap().is_none());
        assert!(store.traces_by_message_id("m@x").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn attempts_are_found_by_client_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert!(
            store
                .record_attempt(&attempt("192.0.2.1", 1_000))
                .await
                .unwrap()
        );
        assert!(
            store
                .record_attempt(&attempt("192.0.2.1", 5_000))
                .await
                .unwrap()
        );
        assert!(
            store
                .record_attempt(&attempt("192.0.2.9", 5_000))
                .await
                .unwrap()
        );
        let found = store
            .traces_of_client("192.0.2.1", 0, 10_000)
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        let later = store
            .traces_of_client("192.0.2.1", 2_000, 10_000)
            .await
            .unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(store.expire_traces(3_000).await.unwrap(), 1);
        assert_eq!(
            store
                .traces_of_client("192.0.2.1", 0, 10_000)
                .await
                .unwrap()
                .len(),
            1
        );
        let raw = store
            .inner
            .backend
            .get(Space::Meta, COUNT_KEY)
            .await
            .unwrap();
        assert_eq!(count(raw.as_deref()), 2);
    }
}
