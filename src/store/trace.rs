//! Decision traces (`crate::trace`) over the storage seam. A kept message's
//! trace is `T/<id, 8 bytes BE>` (the queue and blob id), written in the
//! same batch as the message (`accept_message_into`); each delivery pass
//! adds its attempts under keys of their own, `T/<id>\x01<entry id BE><n,
//! 4 bytes BE>` where `n` counts the queue entry's attempts so far
//! (`extend_in`: puts, never a read of the trace, so a pass costs no decode
//! and re-encode of what came before), and a read folds them into the
//! trace in order. What is stored is bounded as what is shown: an entry's
//! first `MAX_EVENTS / 2` attempts (a pass's share in one value) and its
//! newest `MAX_EVENTS / 2` (one value each, the older ones deleted as new
//! ones come); the gap between is counted as left out when read.
//! (`T/<id><ms BE><random>` is the form before, still read.)
//! `I/<message-id>\0<id>` finds a trace by Message-ID. When the body goes
//! (its last reference dropped in `writeset.rs`) a marker `G/<ms BE><id BE>`
//! says since when, and the sweep forgets the trace `[trace] keep` later. A
//! refused attempt (or a message nothing kept: discarded, all quarantined
//! away) is `R/<ms BE><random>`, forgotten `keep` after it happened; the
//! counters `R#<shard>` (the low bits of the random part name the shard;
//! attempts take the shards in turn) count them, and past `MAX_ATTEMPTS`
//! in all new ones are not kept (a flood cannot fill the disk, and its
//! writers do not all wait on one counter).
//! The values' form (compact, JSON before it) is `trace_codec.rs`'s.

use super::backend::{Batch, KeyRange, ScanOrder, Space, retry};
use super::trace_codec::{decode_events, decode_trace, encode_events, encode_trace};
use super::{Store, StoreError};
use crate::trace::{Event, MAX_EVENTS, Trace};

/// Most refused-attempt traces kept at once.
pub const MAX_ATTEMPTS: u64 = 50_000;
/// Counters of refused attempts: each counts its share, `MAX_ATTEMPTS /
/// SHARDS` at most.
const SHARDS: u32 = 16;
/// Attempts of this process take the shards in turn.
static NEXT_SHARD: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// The first attempts of a queue entry kept, and the newest.
const HEAD: u32 = (MAX_EVENTS / 2) as u32;
const TAIL: u32 = (MAX_EVENTS / 2) as u32;
/// The byte after the id that marks a pass's attempts (`T/<id>\x01…`);
/// the form before had a time there, whose first byte is 0.
const PASS: u8 = 1;
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

/// The key of the attempts of queue entry `entry` on message `id` from its
/// attempt number `n` on.
fn pass_key(id: u64, entry: u64, n: u32) -> Vec<u8> {
    let mut key = trace_key(id);
    key.push(PASS);
    key.extend_from_slice(&entry.to_be_bytes());
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// Adds the attempts (`events`) of one delivery pass of queue entry
/// `entry` to the trace of message `id` in `batch`; `first` is the number
/// of attempts the entry made before this pass. Only what a trace can
/// show is kept: the entry's first `HEAD` attempts and its newest `TAIL`
/// (older ones of those are deleted here). No read: nothing to race for.
pub(super) fn extend_in(batch: &mut Batch, id: u64, entry: u64, first: u32, events: &[Event]) {
    let n = u32::try_from(events.len()).unwrap_or(u32::MAX);
    if n == 0 {
        return;
    }
    let end = first.saturating_add(n);
    let head = HEAD.saturating_sub(first).min(n);
    if head > 0 {
        let part = &events[..head as usize];
        batch.put(Space::Meta, pass_key(id, entry, first), encode_events(part));
    }
    let tail_from = HEAD.max(end.saturating_sub(TAIL)).max(first);
    for k in tail_from..end {
        let i = (k - first) as usize;
        batch.put(
            Space::Meta,
            pass_key(id, entry, k),
            encode_events(&events[i..=i]),
        );
    }
    // The newest of earlier passes that these push out of the tail.
    for k in HEAD.max(first.saturating_sub(TAIL))..first.min(end.saturating_sub(TAIL)) {
        batch.delete(Space::Meta, pass_key(id, entry, k));
    }
}

/// Folds a scan of `T/` keys (in key order) into whole traces: each
/// message's record followed by its passes' attempts, the attempts left
/// out of the store counted in `omitted`. A message queued without a
/// record (a bounce) gets one from its first attempt.
fn fold_traces(found: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vec<Trace>, StoreError> {
    let mut out: Vec<Trace> = Vec::new();
    // The queue entry whose attempts are being read, and the number of
    // the attempt expected next.
    let mut expected: Option<(u64, u32)> = None;
    // Attempts of the message read in the form before (no numbers).
    let mut unnumbered: u32 = 0;
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
            (expected, unnumbered) = (None, 0);
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
            (expected, unnumbered) = (None, 0);
        }
        let numbered = (k.len() == 23 && k[10] == PASS)
            .then(|| {
                let entry = k[11..19].try_into().ok().map(u64::from_be_bytes)?;
                let n = k[19..23].try_into().ok().map(u32::from_be_bytes)?;
                Some((entry, n))
            })
            .flatten();
        let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
        let skipped = match (numbered, expected) {
            (Some((entry, n)), Some((was, next))) if entry == was => n.saturating_sub(next),
            (Some((_, n)), _) => n.saturating_sub(unnumbered),
            (None, _) => {
                unnumbered = unnumbered.saturating_add(count);
                0
            }
        };
        expected = numbered.map(|(entry, n)| (entry, n.saturating_add(count)));
        if let Some(t) = out.last_mut() {
            t.omitted = t.omitted.saturating_add(skipped);
            t.extend(events);
        }
    }
    Ok(out)
}

/// The counter of refused attempts of `shard`.
fn count_key(shard: u32) -> Vec<u8> {
    let mut k = b"R#".to_vec();
    k.push(shard as u8);
    k
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

    /// Adds delivery attempts to a message's trace, as the queue entry
    /// `id` that made `first` attempts before them (`extend_in`); a
    /// message queued without a trace (a bounce, an older release) gets one.
    pub async fn append_trace(
        &self,
        id: u64,
        first: u32,
        events: &[Event],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        extend_in(&mut batch, id, id, first, events);
        Ok(self.inner.backend.commit(batch).await?)
    }

    /// Keeps the trace of a refused attempt (false: over `MAX_ATTEMPTS`,
    /// not kept).
    pub async fn record_attempt(&self, trace: &Trace) -> Result<bool, StoreError> {
        self.record_attempt_within(trace, MAX_ATTEMPTS).await
    }

    /// `record_attempt` with at most `most` kept (`MAX_ATTEMPTS`; a test
    /// gives a smaller bound).
    async fn record_attempt_within(&self, trace: &Trace, most: u64) -> Result<bool, StoreError> {
        let shard = NEXT_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS;
        let tail = (rand::random::<u32>() & !(SHARDS - 1)) | shard;
        let key = timed_key(b"R/", trace.last_at(), u64::from(tail));
        let counter = count_key(shard);
        let value = encode_trace(trace);
        let backend = &self.inner.backend;
        let kept = retry(|| async {
            let raw = backend.get(Space::Meta, &counter).await?;
            let n = count(raw.as_deref());
            if n >= most / u64::from(SHARDS) {
                return Ok(false);
            }
            let mut batch = Batch::new();
            batch.require(Space::Meta, counter.clone(), raw.as_deref());
            batch.put(Space::Meta, counter.clone(), (n + 1).to_be_bytes().to_vec());
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
            // One write per shard, each with its own counter's condition.
            let mut by_shard: std::collections::BTreeMap<u32, Vec<&[u8]>> = Default::default();
            for (k, _) in &old {
                let shard = k.last().map_or(0, |b| u32::from(*b) % SHARDS);
                by_shard.entry(shard).or_default().push(k);
            }
            for (shard, keys) in by_shard {
                let counter = count_key(shard);
                let n = keys.len() as u64;
                retry(|| async {
                    let raw = backend.get(Space::Meta, &counter).await?;
                    let mut batch = Batch::new();
                    for k in &keys {
                        batch.delete(Space::Meta, k.to_vec());
                    }
                    let left = count(raw.as_deref()).saturating_sub(n);
                    batch.require(Space::Meta, counter.clone(), raw.as_deref());
                    batch.put(Space::Meta, counter.clone(), left.to_be_bytes().to_vec());
                    backend.commit(batch).await
                })
                .await?;
            }
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
            .append_trace(id, 0, &[Event::new(Stage::Delivery, "queue", "sent")])
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
        assert_eq!(counted(&store).await, 2);
    }

    /// The refused attempts the shard counters count, in all.
    async fn counted(store: &Store) -> u64 {
        let mut all = 0;
        for shard in 0..SHARDS {
            let key = count_key(shard);
            let raw = store.inner.backend.get(Space::Meta, &key).await.unwrap();
            all += count(raw.as_deref());
        }
        all
    }

    /// The refused attempts stored (`R/` keys).
    async fn stored(store: &Store) -> usize {
        let all = KeyRange::prefix(b"R/");
        let found = store.inner.backend.scan(Space::Meta, &all, ScanOrder::ALL);
        found.await.unwrap().len()
    }

    #[tokio::test]
    async fn refused_attempts_stop_being_kept_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        // 32 at most: two per shard. Attempts take the shards in turn, so
        // 100 fill every shard (4 or more each), whatever came before.
        let most = 2 * u64::from(SHARDS);
        let mut kept = 0;
        for i in 0..100 {
            let t = attempt("192.0.2.1", 1_000 + i);
            kept += u64::from(store.record_attempt_within(&t, most).await.unwrap());
        }
        assert_eq!(kept, most);
        assert_eq!(stored(&store).await as u64, most);
        assert_eq!(counted(&store).await, most);
        // Forgotten ones make room again.
        assert_eq!(store.expire_traces(i64::MAX).await.unwrap() as u64, most);
        assert_eq!(counted(&store).await, 0);
        let t = attempt("192.0.2.1", 5_000);
        assert!(store.record_attempt_within(&t, most).await.unwrap());
        assert_eq!(stored(&store).await, 1);
    }

    /// `n` delivery attempts, numbered from `from`.
    fn pass(from: u32, n: u32) -> Vec<Event> {
        (from..from + n)
            .map(|i| {
                Event::new(Stage::Delivery, "queue", "deferred").detail(format!("attempt {i}"))
            })
            .collect()
    }

    /// The attempt numbers a trace shows.
    fn shown(t: &Trace) -> Vec<u32> {
        t.events
            .iter()
            .filter_map(|e| e.detail.as_deref()?.strip_prefix("attempt ")?.parse().ok())
            .collect()
    }

    #[tokio::test]
    async fn a_message_stores_its_first_and_newest_attempts_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let id = 7;
        // One pass of 10, one of 1000 (a message to many recipients),
        // then 40 passes of one.
        store.append_trace(id, 0, &pass(0, 10)).await.unwrap();
        store.append_trace(id, 10, &pass(10, 1000)).await.unwrap();
        for n in 1010..1050 {
            store.append_trace(id, n, &pass(n, 1)).await.unwrap();
        }
        let parts = store
            .inner
            .backend
            .scan(
                Space::Meta,
                &KeyRange::prefix(&trace_key(id)),
                ScanOrder::ALL,
            )
            .await
            .unwrap();
        let events: usize = parts
            .iter()
            .map(|(_, v)| decode_events(v).unwrap().len())
            .sum();
        assert_eq!(events, MAX_EVENTS, "what is stored is what a trace shows");
        let t = store.trace(id).await.unwrap().unwrap();
        let want: Vec<u32> = (0..HEAD).chain(1050 - TAIL..1050).collect();
        assert_eq!(shown(&t), want);
        assert_eq!(t.omitted, 1050 - HEAD - TAIL);
        // A short story is kept whole.
        store.append_trace(8, 0, &pass(0, 3)).await.unwrap();
        store.append_trace(8, 3, &pass(3, 2)).await.unwrap();
        let t = store.trace(8).await.unwrap().unwrap();
        assert_eq!((shown(&t), t.omitted), ((0..5).collect(), 0));
    }
}
