//! The storage seam: the small surface every engine implements, and the
//! dispatch that picks the engine from the config. Everything that means
//! mail (UIDs, mod-sequences, reference counts, the queue, users, the
//! plugins' key-value areas) is written once above this, in terms of keys,
//! ordered ranges and conditional write sets; no engine knows what a folder
//! is, and no engine type is named outside its own folder and this file.
//!
//! The surface:
//! - keyed reads ([`Backend::get`]) and ordered range scans
//!   ([`Backend::scan`]) in a [`Space`] (a table of byte keys and values,
//!   ordered bytewise);
//! - one atomic write set with conditions ([`Batch`], [`Backend::commit`]):
//!   puts and deletes that happen all or not at all, and only if every key
//!   named by [`Batch::require`] still has the value the writer read (or is
//!   still absent). A failed condition is [`BackendError::Conflict`]: the
//!   caller reads again and retries ([`retry`]), so two writers racing for
//!   the next UID or a counter never produce a duplicate or a lost update,
//!   with no process-wide lock. Only a condition makes a conflict: an
//!   engine that can fail a write set for a race (PostgreSQL's
//!   serialization failures) tries it again itself, its conditions read
//!   afresh, up to [`retry`]'s bound, so a caller may take `Conflict` for
//!   "the record is there" or "the value changed";
//! - unique increasing ids ([`Backend::next_id`]);
//! - change notifications carried by the write set that caused them
//!   ([`Batch::notify`], [`Backend::changes`]);
//! - the durability point ([`Backend::sync`]): when it returns, every write
//!   committed before it was called survives a crash. Nothing is
//!   acknowledged to a client before it.
//!
//! Message bodies are chunks in [`Space::Blobs`] under
//! `<blob id, 8 bytes BE><chunk index, 4 bytes BE>`, written as they arrive.

pub mod dump;
pub mod migrate;
mod postgres;
mod sled;
mod snapshot;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod engine_tests;

pub use postgres::{PostgresSettings, SslMode};
pub use snapshot::Snapshot;

use std::future::Future;
use std::path::Path;
use tokio::sync::broadcast;

/// A table of the store: byte keys in bytewise order, byte values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Small records under key prefixes (users, folders, messages, queue…).
    Meta,
    /// Message bytes in chunks.
    Blobs,
}

impl Space {
    pub const ALL: [Space; 2] = [Space::Meta, Space::Blobs];

    /// The number engines store for the space (never reuse one).
    pub(crate) fn number(self) -> i16 {
        match self {
            Space::Meta => 0,
            Space::Blobs => 1,
        }
    }

    /// The space's name (sled's tree name).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Blobs => "blobs",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// A condition of the write set did not hold: read again and retry.
    /// A write that raced another is tried again by the engine itself (up
    /// to [`retry`]'s bound), so this is never a race alone.
    #[error("the write conflicted with another; retry")]
    Conflict,
    /// The engine cannot be reached now (database down, pool exhausted,
    /// statement timeout): a temporary failure.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The engine refused to open (schema too new, bad settings).
    #[error("{0}")]
    Open(String),
    /// An embedded engine is held by another process (a running server).
    #[error("{0}")]
    Locked(String),
    /// Any other engine failure (I/O error, corrupt data).
    #[error("store engine: {0}")]
    Engine(String),
}

/// A range of keys: from `start` (inclusive) to `end` (exclusive, or the
/// end of the space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        KeyRange {
            start: prefix.to_vec(),
            end: prefix_end(prefix),
        }
    }

    /// Keys from `start` (inclusive) to `end` (exclusive).
    pub fn between(start: &[u8], end: &[u8]) -> KeyRange {
        KeyRange {
            start: start.to_vec(),
            end: Some(end.to_vec()),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }
}

/// The first key after every key that starts with `prefix` (None: no such
/// key, the prefix is all 0xff or empty).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest key after `key`.
pub(crate) fn after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// What a scan returns: (key, value) pairs in the order walked.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// How a scan walks its range and how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOrder {
    pub reverse: bool,
    pub limit: Option<usize>,
}

impl ScanOrder {
    /// Every key, in ascending order.
    pub const ALL: ScanOrder = ScanOrder {
        reverse: false,
        limit: None,
    };

    /// The last key of the range (highest), if any.
    pub const LAST: ScanOrder = ScanOrder {
        reverse: true,
        limit: Some(1),
    };
}

/// One write of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    Put(Vec<u8>),
    Delete,
}

/// An atomic write set: puts and deletes, the conditions under which they
/// apply, and the changes to announce once they have. Later writes to a key
/// replace earlier ones in the same batch.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// (space, key) → what the writer expects to find (None: absent).
    pub(crate) conditions: Vec<(Space, Vec<u8>, Option<Vec<u8>>)>,
    /// (space, key) → the final write to it, in key order.
    pub(crate) writes: std::collections::BTreeMap<(Space, Vec<u8>), Write>,
    pub(crate) changes: Vec<String>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn put(&mut self, space: Space, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes
            .insert((space, key.into()), Write::Put(value.into()));
    }

    pub fn delete(&mut self, space: Space, key: impl Into<Vec<u8>>) {
        self.writes.insert((space, key.into()), Write::Delete);
    }

    /// The batch applies only if `key` still holds `expected` (None: the
    /// key is still absent) when it commits.
    pub fn require(&mut self, space: Space, key: impl Into<Vec<u8>>, expected: Option<&[u8]>) {
        self.conditions
            .push((space, key.into(), expected.map(<[u8]>::to_vec)));
    }

    /// Announces `change` to [`Backend::changes`] subscribers once the batch
    /// has committed (never if it did not).
    pub fn notify(&mut self, change: impl Into<String>) {
        self.changes.push(change.into());
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.conditions.is_empty()
    }

    /// How many keys the batch writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }
}

/// Which engine, and how to reach it.
#[derive(Debug, Clone)]
pub enum EngineSettings {
    /// The embedded default: sled in `DATA_DIR/store`.
    Sled {
        data_dir: std::path::PathBuf,
    },
    Postgres(PostgresSettings),
}

impl EngineSettings {
    /// The engine `[store]` names (absent: sled in `data_dir`).
    pub fn from_config(config: &crate::config::Config) -> EngineSettings {
        use crate::config::{StoreBackend, StoreSslMode};
        let store = &config.store;
        match (store.backend, store.url.as_deref()) {
            (StoreBackend::Postgres, Some(url)) => {
                let mut pg = PostgresSettings::new(url);
                pg.password_file = store.password_file.clone();
                pg.pool_size = store.pool_size;
                pg.sslmode = match store.sslmode {
                    StoreSslMode::Disable => SslMode::Disable,
                    StoreSslMode::Require => SslMode::Require,
                    StoreSslMode::VerifyFull => SslMode::VerifyFull,
                };
                pg.ca_file = store.ca_file.clone();
                pg.statement_timeout = store.statement_timeout.0;
                pg.connect_timeout = store.connect_timeout.0;
                EngineSettings::Postgres(pg)
            }
            // Validation refuses postgres without a url.
            _ => EngineSettings::Sled {
                data_dir: config.data_dir.clone(),
            },
        }
    }

    /// `sled:DATA_DIR` or `postgres:URL` (`tern store migrate`); the URL's
    /// `sslmode` and `sslrootcert` parameters are honoured.
    pub fn parse_location(text: &str) -> Result<EngineSettings, BackendError> {
        if let Some(dir) = text.strip_prefix("sled:") {
            Ok(EngineSettings::Sled {
                data_dir: dir.into(),
            })
        } else if let Some(url) = text.strip_prefix("postgres:") {
            Ok(EngineSettings::Postgres(PostgresSettings::from_url(url)?))
        } else if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            Ok(EngineSettings::Postgres(PostgresSettings::from_url(text)?))
        } else {
            Err(BackendError::Open(format!(
                "{text:?}: name a store as sled:DATA_DIR or postgres:postgresql://user@host:port/db"
            )))
        }
    }

    /// The place, for messages: the folder, or the hosts (never a password).
    pub fn describe(&self) -> String {
        match self {
            EngineSettings::Sled { data_dir } => format!("sled in {}", data_dir.display()),
            EngineSettings::Postgres(pg) => format!("postgres at {}", pg.hosts_for_messages()),
        }
    }
}

/// The engine the store runs on (cheap to clone).
#[derive(Clone)]
pub enum Backend {
    Sled(sled::SledBackend),
    Postgres(postgres::PostgresBackend),
}

impl Backend {
    /// Opens (creating or migrating) the engine the settings name.
    pub async fn open(settings: &EngineSettings) -> Result<Backend, BackendError> {
        match settings {
            EngineSettings::Sled { data_dir } => {
                Ok(Backend::Sled(sled::SledBackend::open(data_dir)?))
            }
            EngineSettings::Postgres(pg) => Ok(Backend::Postgres(
                postgres::PostgresBackend::open(pg).await?,
            )),
        }
    }

    /// Opens sled in `data_dir/store` (the default engine).
    pub fn open_sled(data_dir: &Path) -> Result<Backend, BackendError> {
        Ok(Backend::Sled(sled::SledBackend::open(data_dir)?))
    }

    /// The folder an embedded engine writes to (None: a database server).
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            Backend::Sled(b) => Some(b.dir()),
            Backend::Postgres(_) => None,
        }
    }

    /// The engine's name, for logs and `tern store` output.
    pub fn engine_name(&self) -> &'static str {
        match self {
            Backend::Sled(_) => "sled",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        match self {
            Backend::Sled(b) => b.get(space, key),
            Backend::Postgres(b) => b.get(space, key).await,
        }
    }

    /// The keys and values of `range`, in key order (or reversed), at most
    /// `order.limit` of them.
    pub async fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        order: ScanOrder,
    ) -> Result<KeyValues, BackendError> {
        match self {
            Backend::Sled(b) => b.scan(space, range, order),
            Backend::Postgres(b) => b.scan(space, range, order).await,
        }
    }

    /// Applies the batch atomically if its conditions hold (else
    /// `Conflict`, and nothing is written), then announces its changes.
    /// Committed is not yet durable on every engine: see [`Backend::sync`].
    pub async fn commit(&self, mut batch: Batch) -> Result<(), BackendError> {
        self.commit_kept(&mut batch).await
    }

    /// `commit`, leaving the batch with the caller (its conditions say
    /// what a conflicting write set raced for; its changes are announced
    /// and taken).
    pub async fn commit_kept(&self, batch: &mut Batch) -> Result<(), BackendError> {
        if !batch.is_empty() {
            match self {
                Backend::Sled(b) => b.commit(batch).await?,
                Backend::Postgres(b) => b.commit(batch).await?,
            }
        }
        self.announce(std::mem::take(&mut batch.changes));
        Ok(())
    }

    /// A new unique id, larger than every id this store gave before.
    pub async fn next_id(&self) -> Result<u64, BackendError> {
        match self {
            Backend::Sled(b) => b.next_id(),
            Backend::Postgres(b) => b.next_id().await,
        }
    }

    /// Moves the id generator on so that every later id is above `id` (a
    /// store copied from another engine keeps its ids unique).
    pub async fn ensure_ids_above(&self, id: u64) -> Result<(), BackendError> {
        match self {
            Backend::Sled(b) => b.ensure_ids_above(id),
            Backend::Postgres(b) => b.ensure_ids_above(id).await,
        }
    }

    /// The durability point: returns once every write committed before the
    /// call is on stable storage. Concurrent callers share the work.
    pub async fn sync(&self) -> Result<(), BackendError> {
        match self {
            Backend::Sled(b) => b.sync().await,
            // A PostgreSQL commit returns after its WAL record is flushed
            // (synchronous_commit = on, which the engine sets per session).
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Changes announced by committed batches, from now on.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        match self {
            Backend::Sled(b) => b.changes.subscribe(),
            Backend::Postgres(b) => b.changes.subscribe(),
        }
    }

    fn announce(&self, changes: Vec<String>) {
        let sender = match self {
            Backend::Sled(b) => &b.changes,
            Backend::Postgres(b) => &b.changes,
        };
        for change in changes {
            // No subscriber is not an error.
            let _ = sender.send(change);
        }
    }
}

/// How often [`retry`] tries a write set that keeps conflicting.
pub const MAX_ATTEMPTS: u32 = 64;

/// Runs `attempt` (read, decide, commit) until it does not conflict: the
/// optimistic-concurrency loop every read-modify-write above the seam uses.
/// After [`MAX_ATTEMPTS`] conflicts the last one is returned.
pub async fn retry<T, F, Fut>(mut attempt: F) -> Result<T, BackendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BackendError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(BackendError::Conflict) if tries + 1 < MAX_ATTEMPTS => {
                tries += 1;
                // Back off a little, with jitter, so racing writers spread.
                let micros = rand::random_range(0..(50u64 << tries.min(8)));
                tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_end_after_the_last_key_with_the_prefix() {
        let r = KeyRange::prefix(b"m/a\0");
        assert!(r.contains(b"m/a\0"));
        assert!(r.contains(b"m/a\0\xff\xff"));
        assert!(!r.contains(b"m/a\x01"));
        assert!(!r.contains(b"m/"));
        assert_eq!(KeyRange::prefix(b"a\xff").end, Some(b"b".to_vec()));
        assert_eq!(KeyRange::prefix(b"\xff\xff").end, None);
        assert_eq!(KeyRange::prefix(b"").end, None);
    }

    #[test]
    fn a_later_write_to_a_key_replaces_an_earlier_one() {
        let mut b = Batch::new();
        b.put(Space::Meta, b"k".to_vec(), b"1".to_vec());
        b.delete(Space::Meta, b"k".to_vec());
        b.put(Space::Blobs, b"k".to_vec(), b"2".to_vec());
        assert_eq!(b.len(), 2);
        assert_eq!(
            b.writes.get(&(Space::Meta, b"k".to_vec())),
            Some(&Write::Delete)
        );
    }
}
