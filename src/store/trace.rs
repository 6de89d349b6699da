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
//! writers do not all wait on one counter). Each trace is also indexed by
//! client and time (`trace_clients.rs`).
//! The values' form (compact, JSON before it) is `trace_codec.rs`'s.

use super::backend::{Batch, KeyRange, ScanOrder, Space, retry};
use super::trace_clients::{index_message, index_refused, unindex_message, unindex_refused};
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
    index_message(batch, trace, id);
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
            index_refused(&mut batch, trace, &key);
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
                    unindex_message(&mut batch, &t, id);
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
            let mut by_shard: std::collections::BTreeMap<u32, Vec<_>> = Default::default();
            for (k, v) in &old {
                let shard = k.last().map_or(0, |b| u32::from(*b) % SHARDS);
                // The trace names its client (and so its index key).
                by_shard
                    .entry(shard)
                    .or_default()
                    .push((k, decode_trace(v).ok()));
            }
            for (shard, keys) in by_shard {
                let counter = count_key(shard);
                let n = keys.len() as u64;
                retry(|| async {
                    let raw = backend.get(Space::Meta, &counter).await?;
                    let mut batch = Batch::new();
                    for (k, trace) in &keys {
                        batch.delete(Space::Meta, k.to_vec());
                        if let Some(t) = trace {
                            unindex_refused(&mut batch, t, k);
                        }
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
#[path = "trace_tests.rs"]
mod tests;
