//! The durable store: message bodies (`blobs`), users, mailboxes with
//! folders, UIDs, flags and mod-sequences, the delivery queue, and the
//! smaller records beside them. It owns every byte Tern keeps except the
//! TLS files; nothing else opens the engine. Every module here is written
//! over the storage seam (`backend/`): keyed reads, ordered scans and
//! conditional write sets retried on conflict (`writeset.rs` builds the
//! mail ones), so the same code runs on sled and on PostgreSQL and needs no
//! process-wide lock. `flush` is the durability point: nothing is
//! acknowledged to a client before the flush that covers it has returned.
//!
//! Layout (`Space::Meta`): small records under key prefixes (`u/` users,
//! `f/` folders, `m/` messages, `q/` queue entries, `b/` blob records, `p/`
//! blobs still being written, `w/` web mail sessions, `s/` subscriptions of
//! deleted folders, `x/` UIDs expunged per folder and mod-sequence and `X/`
//! that history's horizon (`vanished.rs`, for QRESYNC), `v/` one-time
//! conversions done, `k/<plugin>\0<key>` the plugins' key-value areas, `d/`
//! DMARC evaluations kept for aggregate reports and `d#` their count,
//! `t/<domain>` cached MTA-STS policies, `r/<period>\0<domain>` TLS-RPT
//! tallies, `e/<user>\0<name>` users' Sieve scripts, `E/<user>` each
//! user's index of them, `Q/<user>` what each user's mail takes
//! (`quota.rs`), `F/<address>` recent failed logins when nodes share the
//! store (`logins.rs`); `T/`, `I/`, `G/`, `R/` and `R#` decision traces,
//! `trace.rs`); `Space::Blobs` holds message bytes in chunks. On
//! sled these are the trees `meta` and `blobs` of every earlier release.

pub mod backend;
mod blobs;
mod combine;
mod dmarc;
mod folders;
mod kv;
mod leases;
mod logins;
mod mailbox;
mod pulls;
mod queue;
mod quota;
#[cfg(test)]
mod races;
mod sieve;
mod sts;
mod subscriptions;
mod tlsrpt;
mod trace;
mod trace_clients;
mod trace_codec;
mod turns;
mod users;
mod vanished;
mod watch;
mod web;
mod writeset;

pub use blobs::{BlobId, BlobParts, BlobReader, BlobRecord, BlobWriter, Tail};
pub use dmarc::{DmarcDkimResult, DmarcPublished, DmarcRow, DmarcWindow};
pub use folders::{CopyResult, FlagOp, SEPARATOR, check_folder_name};
pub use kv::{KvError, MAX_KV_KEY, MAX_KV_VALUE};
pub use leases::{KeptLease, Lease, LeaseRecord};
pub use mailbox::{
    Flag, FolderInfo, LocalCopy, MailboxEvent, MessageMeta, SPECIAL_FOLDERS, canonical_folder,
};
pub use pulls::PullMark;
pub use queue::{
    QueueEntry, QueueRecipient, RecipientState, delivery_lease, format_queue_id, parse_queue_id,
};
pub use quota::{Admission, Quota, QuotaOverride, Usage};
pub use sieve::{MAX_SCRIPT_NAME, SieveError, SieveScripts, check_script, check_script_name};
pub use sts::StsPolicyRecord;
pub use tlsrpt::{TlsRptFailure, TlsRptTally};
pub use trace::MAX_ATTEMPTS;
pub use turns::Contention;
pub use users::{UserRecord, check_password};
pub use vanished::MAX_VANISHED_RECORDS;
pub use watch::Watch;
pub use web::WebSession;

use backend::{Backend, BackendError};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Backend(BackendError),
    #[error("store record is corrupt ({what}): {message}")]
    Corrupt { what: String, message: String },
    #[error("no such user: {0}")]
    NoSuchUser(String),
    #[error("user already exists: {0}")]
    UserExists(String),
    #[error("no such folder: {0}")]
    NoSuchFolder(String),
    #[error("folder already exists: {0}")]
    FolderExists(String),
    #[error("no such queue entry: {0}")]
    NoSuchQueueEntry(String),
    #[error("message body {0} is missing")]
    MissingBlob(u64),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The embedded engine is held by another process; the text (the
    /// engine's) names the folder and asks whether a server runs.
    #[error("{0}")]
    Locked(String),
    /// A write set lost a race with another writer (`attempt` retries it).
    #[error("the store changed under a write; retry")]
    Conflict(Contention),
    /// The change would take `user` over their quota (`too_big`: the
    /// message alone is larger than the whole quota).
    #[error("{user} is over quota")]
    OverQuota { user: String, too_big: bool },
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The engine behind the seam (`backend/`): every read and write.
    backend: Backend,
    events: broadcast::Sender<MailboxEvent>,
    /// Writers that lost a race retry one at a time per record (`attempt`).
    turns: turns::Turns,
    /// Accepted messages arriving together are written together (`combine.rs`).
    combiner: combine::Combiner,
    /// `[users] default_quota` in bytes; `quota::NO_DEFAULT`: none.
    default_quota: std::sync::atomic::AtomicU64,
    /// This process's `node_id` (stamped on the queue entries it accepts).
    node: std::sync::OnceLock<String>,
    /// `[queue] lease`: a shared store's entries are queued leased to the
    /// node that accepted them for this long.
    queue_lease: std::sync::OnceLock<std::time::Duration>,
    /// Users whose folders are polled for other nodes' changes (`watch.rs`).
    watched: Arc<std::sync::Mutex<watch::Watched>>,
    /// Tells this store from any other opened in the process (caches of
    /// what is derived from its blobs are kept per store).
    instance: u64,
}

/// The next `Inner::instance`.
static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> StoreError {
        match e {
            BackendError::Locked(what) => StoreError::Locked(what),
            other => StoreError::Backend(other),
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `dir/store` (sled, the default engine).
    pub async fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::on(Backend::open_sled(dir)?).await
    }

    /// The store on an engine already opened (`Backend::open`), after
    /// sweeping the bodies of messages whose writer never committed.
    pub async fn on(backend: Backend) -> Result<Store, StoreError> {
        let (events, _) = broadcast::channel(1024);
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                events,
                turns: turns::Turns::new(),
                combiner: combine::Combiner::default(),
                default_quota: std::sync::atomic::AtomicU64::new(quota::NO_DEFAULT),
                node: std::sync::OnceLock::new(),
                queue_lease: std::sync::OnceLock::new(),
                watched: Arc::default(),
                instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            }),
        };
        store.discard_unfinished_blobs().await?;
        Ok(store)
    }

    /// Names this process among the nodes sharing the store (once).
    pub fn set_node(&self, node_id: &str) {
        let _ = self.inner.node.set(node_id.to_string());
    }

    /// `[queue] lease`: how long a new entry stays leased to this node.
    pub fn set_queue_lease(&self, ttl: std::time::Duration) {
        let _ = self.inner.queue_lease.set(ttl);
    }

    /// This store's number among the stores opened in this process.
    pub fn instance(&self) -> u64 {
        self.inner.instance
    }

    /// This process's `node_id` ("" when none was set: tools, tests).
    pub fn node(&self) -> &str {
        self.inner.node.get().map_or("", String::as_str)
    }

    /// The engine itself (backups read it whole).
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The engine's name ("sled", "postgres").
    pub fn engine_name(&self) -> &'static str {
        self.inner.backend.engine_name()
    }

    /// Makes every write so far durable (fsync). Concurrent callers share
    /// flushes (group commit): one flusher thread runs sled's flush, and a
    /// caller waits for the first flush that *started* after it called.
    pub async fn flush(&self) -> Result<(), StoreError> {
        Ok(self.inner.backend.sync().await?)
    }

    /// Bytes free for us on the store's file system; None if unknown. sled
    /// cannot recover from a failed write without a restart, so the
    /// receivers refuse new mail (452 4.3.1) well before this reaches 0.
    pub fn free_space(&self) -> Option<u64> {
        use std::os::unix::ffi::OsStrExt;
        let dir = self.inner.backend.local_dir()?;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a valid NUL-terminated string and `st` a valid
        // out-pointer for the duration of the call.
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
        (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
    }

    /// A new unique, increasing id (queue ids and blob ids).
    pub async fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.inner.backend.next_id().await?)
    }

    /// Whether the one-time data conversion `name` has run (`v/<name>`).
    pub async fn conversion_done(&self, name: &str) -> Result<bool, StoreError> {
        let key = format!("v/{name}").into_bytes();
        Ok(self
            .inner
            .backend
            .get(backend::Space::Meta, &key)
            .await?
            .is_some())
    }

    /// Records that the one-time data conversion `name` has run.
    pub async fn set_conversion_done(&self, name: &str) -> Result<(), StoreError> {
        let mut batch = backend::Batch::new();
        batch.put(
            backend::Space::Meta,
            format!("v/{name}").into_bytes(),
            Vec::new(),
        );
        Ok(self.inner.backend.commit(batch).await?)
    }

    /// Subscribes to changes in mailboxes (new mail, flags, expunges):
    /// those made by this process, and on a shared store those other nodes
    /// made to the folders of watched users (`watch`).
    pub fn subscribe(&self) -> broadcast::Receiver<MailboxEvent> {
        self.inner.events.subscribe()
    }

    /// Runs `attempt` (read, build a write set, commit) again while its
    /// commit conflicts with another writer's (`backend::retry`); the
    /// retries hold the turns of the records it raced for (`turns.rs`).
    /// An attempt never calls `attempt` itself: a nested retry could wait
    /// for a turn its caller holds.
    pub(crate) async fn attempt<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let contention = match attempt().await {
            Err(StoreError::Conflict(contention)) => contention,
            Err(StoreError::Backend(BackendError::Conflict)) => Contention::default(),
            other => return other,
        };
        let _turns = self.inner.turns.take(&contention).await;
        self.retry_in_turn(attempt).await
    }

    /// `attempt`, holding from the first try the turns of `keys`, records
    /// the caller knows it will race for (the folders a delivery files
    /// into): deliveries into one folder in this process then take turns
    /// instead of reading the same next UID and all but one retrying. On
    /// sled that matters most: the write sets that arrive together commit
    /// together (`backend/sled/apply.rs`), so a folder's deliveries would
    /// otherwise meet in one group and all but one lose.
    pub(crate) async fn attempt_in_turns<T, F, Fut>(
        &self,
        keys: &[Vec<u8>],
        attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let contention = self.inner.turns.contention(keys.iter().map(Vec::as_slice));
        let _turns = self.inner.turns.take(&contention).await;
        self.retry_in_turn(attempt).await
    }

    /// Runs `attempt` until it does not conflict (`backend::retry`), the
    /// caller holding its turns.
    async fn retry_in_turn<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let outcome = backend::retry(|| {
            let run = attempt();
            async move {
                match run.await {
                    Err(StoreError::Conflict(_) | StoreError::Backend(BackendError::Conflict)) => {
                        Err(BackendError::Conflict)
                    }
                    other => Ok(other),
                }
            }
        })
        .await;
        outcome.map_err(StoreError::from)?
    }

    fn notify(&self, event: MailboxEvent) {
        let _ = self.inner.events.send(event);
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

/// A stored value of kind `what` that does not decode.
fn corrupt(what: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        message: message.to_string(),
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain records to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Unix time in seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
impl Store {
    /// How many keys `space` holds.
    pub(crate) async fn count_for_test(&self, space: backend::Space) -> usize {
        let all = backend::KeyRange::prefix(b"");
        self.inner
            .backend
            .scan(space, &all, backend::ScanOrder::ALL)
            .await
            .map(|kv| kv.len())
            .unwrap_or(usize::MAX)
    }
}

/// A fresh store (in the returned folder) with the account
/// bob@example.test, password "pw".
#[cfg(test)]
pub(crate) async fn store_with_bob() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store.add_user("bob@example.test", "pw").await.unwrap();
    (dir, store)
}

/// Runs `op` `each` times in each of `writers` tasks at once (a race).
#[cfg(test)]
pub(crate) async fn race<F, Fut>(store: &Store, writers: usize, each: usize, op: F)
where
    F: Fn(Store) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, op) = (store.clone(), op.clone());
            tokio::spawn(async move {
                for _ in 0..each {
                    op(store.clone()).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Opens a store a test has just dropped: sled's own threads let go of the
/// file lock shortly after the drop, so the open is retried (up to 30 s)
/// while it reports the store locked.
#[cfg(test)]
pub(crate) async fn reopen_for_test(dir: &Path) -> Store {
    let start = std::time::Instant::now();
    loop {
        match Store::open(dir).await {
            Ok(s) => return s,
            Err(StoreError::Locked(_)) if start.elapsed() < std::time::Duration::from_secs(30) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopen failed: {e}"),
        }
    }
}
