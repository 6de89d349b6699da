//! Finding decision traces by client (`tern trace --client IP --since …`):
//! an index `C/<client>\0<session start, ms BE><kind><reference>`, ordered
//! by client and time, so a search reads that client's window and the
//! traces it names, never every trace. The kind is `m` for a kept
//! message (the reference: its id, the key `T/<id>`) or `r` for a refused
//! attempt (the reference: the rest of its key `R/<ms><random>`). An index
//! key is written in the batch that writes its trace (`store/trace.rs`)
//! and deleted in the one that forgets it. A store written before the
//! index existed is indexed once (`index_traces_by_client`, marked done by
//! `C#`): at the sweep's start, or by the first search.

use super::backend::{Batch, KeyRange, ScanOrder, Space, after};
use super::trace_codec::decode_trace;
use super::{Store, StoreError};
use crate::trace::Trace;

const MESSAGE: u8 = b'm';
const REFUSED: u8 = b'r';
/// Present once the traces stored before the index have been indexed.
const INDEXED: &[u8] = b"C#";
/// Keys read (and index keys written) per step of the one-time indexing.
const STEP: usize = 500;

fn client_prefix(client: &str) -> Vec<u8> {
    let mut k = b"C/".to_vec();
    k.extend_from_slice(client.as_bytes());
    k.push(0);
    k
}

fn at(client: &str, ms: i64) -> Vec<u8> {
    let mut k = client_prefix(client);
    k.extend_from_slice(&(ms.max(0) as u64).to_be_bytes());
    k
}

fn index_key(trace: &Trace, kind: u8, reference: &[u8]) -> Vec<u8> {
    let mut k = at(&trace.client, trace.started);
    k.push(kind);
    k.extend_from_slice(reference);
    k
}

/// Indexes the trace of kept message `id` in `batch`.
pub(super) fn index_message(batch: &mut Batch, trace: &Trace, id: u64) {
    let key = index_key(trace, MESSAGE, &id.to_be_bytes());
    batch.put(Space::Meta, key, Vec::new());
}

/// Drops the index key of message `id`'s trace in `batch`.
pub(super) fn unindex_message(batch: &mut Batch, trace: &Trace, id: u64) {
    batch.delete(Space::Meta, index_key(trace, MESSAGE, &id.to_be_bytes()));
}

/// Indexes the refused attempt stored under `key` (`R/…`) in `batch`.
pub(super) fn index_refused(batch: &mut Batch, trace: &Trace, key: &[u8]) {
    let reference = key.get(2..).unwrap_or_default();
    batch.put(
        Space::Meta,
        index_key(trace, REFUSED, reference),
        Vec::new(),
    );
}

/// Drops the index key of the refused attempt under `key` in `batch`.
pub(super) fn unindex_refused(batch: &mut Batch, trace: &Trace, key: &[u8]) {
    let reference = key.get(2..).unwrap_or_default();
    batch.delete(Space::Meta, index_key(trace, REFUSED, reference));
}

impl Store {
    /// Every trace (messages and refused attempts) of sessions from
    /// `client` that began between `since` and `until` (unix ms), oldest
    /// first.
    pub async fn traces_of_client(
        &self,
        client: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<Trace>, StoreError> {
        self.index_traces_by_client().await?;
        let backend = &self.inner.backend;
        let range = KeyRange::between(&at(client, since), &at(client, until.saturating_add(1)));
        let start = client_prefix(client).len() + 8;
        let mut out = Vec::new();
        for (k, _) in backend.scan(Space::Meta, &range, ScanOrder::ALL).await? {
            let Some((&kind, reference)) = k.get(start..).and_then(<[u8]>::split_first) else {
                continue;
            };
            // A key whose trace is gone (forgotten meanwhile) finds nothing.
            let found = match kind {
                MESSAGE => match reference.try_into().map(u64::from_be_bytes) {
                    Ok(id) => self.trace(id).await?,
                    Err(_) => None,
                },
                REFUSED => {
                    let mut key = b"R/".to_vec();
                    key.extend_from_slice(reference);
                    match backend.get(Space::Meta, &key).await? {
                        Some(v) => Some(decode_trace(&v)?),
                        None => None,
                    }
                }
                _ => None,
            };
            out.extend(found);
        }
        out.sort_by_key(|t| t.started);
        Ok(out)
    }

    /// Indexes by client the traces stored before there was an index
    /// (once per store; several nodes doing it at once write the same keys).
    pub async fn index_traces_by_client(&self) -> Result<(), StoreError> {
        let backend = &self.inner.backend;
        if backend.get(Space::Meta, INDEXED).await?.is_some() {
            return Ok(());
        }
        for prefix in [&b"T/"[..], &b"R/"[..]] {
            let mut range = KeyRange::prefix(prefix);
            let step = ScanOrder {
                reverse: false,
                limit: Some(STEP),
            };
            loop {
                let found = backend.scan(Space::Meta, &range, step).await?;
                let Some((last, _)) = found.last() else {
                    break;
                };
                range.start = after(last);
                let mut batch = Batch::new();
                for (k, v) in &found {
                    // Messages' records only (`T/<id>`), not their passes.
                    let id = match prefix == b"T/" {
                        true if k.len() != 10 => continue,
                        true => k[2..].try_into().ok().map(u64::from_be_bytes),
                        false => None,
                    };
                    let Ok(trace) = decode_trace(v) else {
                        tracing::warn!(key = ?k, "an unreadable trace is left unindexed");
                        continue;
                    };
                    match id {
                        Some(id) => index_message(&mut batch, &trace, id),
                        None => index_refused(&mut batch, &trace, k),
                    }
                }
                backend.commit(batch).await?;
            }
        }
        let mut batch = Batch::new();
        batch.put(Space::Meta, INDEXED.to_vec(), Vec::new());
        Ok(backend.commit(batch).await?)
    }
}
