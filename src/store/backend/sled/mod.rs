//! The embedded default engine: sled in `DATA_DIR/store`, one tree per
//! [`Space`] (`meta`, `blobs`: the layout every earlier release wrote, so an
//! existing data directory opens unchanged). Write sets are sled
//! transactions over both trees, applied by one writer thread that groups
//! the sets arriving together into one transaction (`apply.rs`); a set
//! whose condition does not hold is left out and reported as a conflict.
//! The durability point is the
//! group commit of `commit.rs` (sled's flush, then fdatasync of its log).
//! Point-in-time reads for backups while the server runs: `capture.rs`.
//!
//! Nothing outside this folder sees a sled type.

mod apply;
mod capture;
mod commit;

use super::{BackendError, Batch, KeyRange, KeyValues, ScanOrder, Space};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// sled with its trees and the group-commit flusher (cheap to clone).
#[derive(Clone)]
pub struct SledBackend {
    inner: Arc<Inner>,
    pub(super) changes: broadcast::Sender<String>,
}

struct Inner {
    /// Dropped first: the write sets in flight apply before the flusher's
    /// last flush.
    writer: apply::Writer,
    db: sled::Db,
    meta: sled::Tree,
    blobs: sled::Tree,
    commits: commit::GroupCommit,
    /// The store's folder (for the free-space check).
    dir: PathBuf,
    /// The capture of a backup in progress (None: none). Write sets hold
    /// it shared; starting or ending a capture holds it alone.
    gate: Arc<RwLock<Option<Arc<capture::Capture>>>>,
}

impl From<sled::Error> for BackendError {
    fn from(e: sled::Error) -> BackendError {
        BackendError::Engine(e.to_string())
    }
}

impl SledBackend {
    /// Opens (or creates) sled in `data_dir/store`. Another process holding
    /// it (a running `tern serve`) is `Open` naming the folder.
    pub fn open(data_dir: &Path) -> Result<SledBackend, BackendError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            BackendError::Open(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let dir = data_dir.join("store");
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|e| match e {
                // sled reports a held lock as an I/O error of kind Other
                // whose text carries the flock error.
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.raw_os_error() == Some(11)
                        || io.to_string().contains("could not acquire lock") =>
                {
                    BackendError::Locked(locked_message(data_dir))
                }
                other => BackendError::Open(format!("store in {}: {other}", dir.display())),
            })?;
        let meta = db.open_tree(Space::Meta.name())?;
        let blobs = db.open_tree(Space::Blobs.name())?;
        // sled's log file (its `db`), opened again only to fdatasync it.
        let log = std::fs::File::open(dir.join("db")).ok();
        if log.is_none() {
            tracing::warn!(
                "cannot open the store's log file to sync it; flushes rely on sled alone"
            );
        }
        let commits = commit::GroupCommit::start(db.clone(), log);
        let (changes, _) = broadcast::channel(1024);
        let gate = Arc::new(RwLock::new(None));
        let writer = apply::Writer::start(apply::Target {
            meta: meta.clone(),
            blobs: blobs.clone(),
            gate: gate.clone(),
        });
        Ok(SledBackend {
            inner: Arc::new(Inner {
                writer,
                db,
                meta,
                blobs,
                commits,
                dir,
                gate,
            }),
            changes,
        })
    }

    fn tree(&self, space: Space) -> &sled::Tree {
        match space {
            Space::Meta => &self.inner.meta,
            Space::Blobs => &self.inner.blobs,
        }
    }

    /// The folder sled writes to.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub(super) fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.tree(space).get(key)?.map(|v| v.to_vec()))
    }

    pub(super) fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        order: ScanOrder,
    ) -> Result<KeyValues, BackendError> {
        let tree = self.tree(space);
        let iter = match &range.end {
            Some(end) => tree.range(range.start.as_slice()..end.as_slice()),
            None => tree.range(range.start.as_slice()..),
        };
        let limit = order.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut push =
            |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<bool, BackendError> {
                let (k, v) = item?;
                out.push((k.to_vec(), v.to_vec()));
                Ok(out.len() < limit)
            };
        if limit == 0 {
            return Ok(Vec::new());
        }
        if order.reverse {
            for item in iter.rev() {
                if !push(item)? {
                    break;
                }
            }
        } else {
            for item in iter {
                if !push(item)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Applies the batch's writes if its conditions hold, through the
    /// writer thread (`apply.rs`); a condition that does not hold is
    /// `Conflict` and nothing is written. The caller keeps the batch.
    pub(super) async fn commit(&self, batch: &mut Batch) -> Result<(), BackendError> {
        let (outcome, kept) = self.inner.writer.apply(std::mem::take(batch)).await;
        *batch = kept;
        outcome
    }

    /// sled's id generator (persisted in batches; ids after a crash are
    /// larger than every id handed out before it). The +1 keeps the ids of
    /// earlier releases, which never gave 0.
    pub(super) fn next_id(&self) -> Result<u64, BackendError> {
        Ok(self.inner.db.generate_id()? + 1)
    }

    /// sled's generator cannot be set: draw ids until past `id` (a copy
    /// from another engine; ids grow by about a million per restart, so
    /// the gap is small). A gap of more than 2^34 is refused.
    pub(super) fn ensure_ids_above(&self, id: u64) -> Result<(), BackendError> {
        let mut current = self.next_id()?;
        if id.saturating_sub(current) > 1 << 34 {
            return Err(BackendError::Engine(format!(
                "cannot move sled's id generator from {current} past {id}"
            )));
        }
        while current <= id {
            current = self.next_id()?;
        }
        Ok(())
    }

    pub(super) async fn sync(&self) -> Result<(), BackendError> {
        self.inner.commits.flush().await
    }

    /// Starts a capture (`capture.rs`): from now until the snapshot is
    /// dropped, its reads see the store as it is at this moment. Waits for
    /// the write sets in flight; one snapshot at a time.
    pub(super) fn snapshot(&self) -> Result<SledSnapshot, BackendError> {
        let mut gate = self.inner.gate.write().unwrap_or_else(|e| e.into_inner());
        if gate.is_some() {
            return Err(BackendError::Engine(
                "another backup of this store is in progress".into(),
            ));
        }
        let capture = Arc::new(capture::Capture::default());
        *gate = Some(capture.clone());
        Ok(SledSnapshot {
            backend: self.clone(),
            capture,
        })
    }
}

/// The store as it was when the snapshot was taken.
pub struct SledSnapshot {
    backend: SledBackend,
    capture: Arc<capture::Capture>,
}

impl SledSnapshot {
    /// About `limit` keys of `range` from its start, in key order, as they
    /// were at the snapshot (a page may hold more or fewer than `limit`,
    /// even none), and where the next page starts (None: the range is done).
    pub(super) fn page(
        &self,
        space: Space,
        range: &KeyRange,
        limit: usize,
    ) -> Result<(KeyValues, Option<Vec<u8>>), BackendError> {
        let order = ScanOrder {
            reverse: false,
            limit: Some(limit.max(1)),
        };
        let live = self.backend.scan(space, range, order)?;
        let full = live.len() >= limit.max(1);
        let (last, next) = match live.last() {
            Some((last, _)) if full => (Some(last.clone()), Some(super::after(last))),
            _ => (range.end.clone(), None),
        };
        let page = self
            .capture
            .rewind(space, live, &range.start, last.as_deref(), full);
        Ok((page, next))
    }
}

impl Drop for SledSnapshot {
    fn drop(&mut self) {
        let mut gate = self
            .backend
            .inner
            .gate
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *gate = None;
    }
}

fn locked_message(data_dir: &Path) -> String {
    format!(
        "the store is locked by another process ({}); is `tern serve` running?",
        data_dir.display()
    )
}
