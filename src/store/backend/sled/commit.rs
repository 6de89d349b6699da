//! Group commit: concurrent sessions share one fsync. A single flusher
//! thread runs sled's (blocking) flush; each flush has a generation number
//! taken as it starts, and a caller waits until a flush that started after
//! its own writes has finished. sled's `flush_async` is not used: under many
//! concurrent callers it deadlocked here (seen with 20 sessions).
//!
//! sled 0.34 ends its log writes on Linux with `sync_file_range`, which
//! neither flushes the drive's write cache nor the file's metadata (the log
//! file grows), so it alone does not make a write survive a power cut. Each
//! flush is therefore followed by `fdatasync` of sled's log file (`db`),
//! as Postfix fsyncs a queue file before its 250: one per group, shared.

use crate::store::backend::BackendError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, watch};

pub(super) struct GroupCommit {
    /// Generation of the last flush that has started.
    started: Arc<AtomicU64>,
    /// Wakes the flusher.
    wanted: Arc<Notify>,
    /// (generation of the last finished flush, its error if it failed)
    done: watch::Receiver<(u64, Option<String>)>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// `log` is sled's log file, synced after each flush.
    pub(super) fn start(db: sled::Db, log: Option<std::fs::File>) -> GroupCommit {
        let started = Arc::new(AtomicU64::new(0));
        let wanted = Arc::new(Notify::new());
        let (tx, done) = watch::channel((0, None));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, w, st) = (started.clone(), wanted.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("tern-flusher".into())
            .spawn(move || flusher(db, log, s, w, st, tx))
            .ok();
        GroupCommit {
            started,
            wanted,
            done,
            stop,
            thread,
        }
    }

    pub(super) async fn flush(&self) -> Result<(), BackendError> {
        let need = self.started.load(Ordering::SeqCst) + 1;
        let mut done = self.done.clone();
        self.wanted.notify_one();
        let result = done.wait_for(|(g, _)| *g >= need).await;
        match result {
            Ok(state) => match &state.1 {
                None => Ok(()),
                Some(e) => Err(BackendError::Engine(format!(
                    "flushing to disk failed: {e}"
                ))),
            },
            Err(_) => Err(BackendError::Engine(
                "flushing to disk failed: the flusher thread stopped".into(),
            )),
        }
    }
}

impl Drop for GroupCommit {
    /// Stops the flusher (after a last flush) so the database can close.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wanted.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn flusher(
    db: sled::Db,
    log: Option<std::fs::File>,
    started: Arc<AtomicU64>,
    wanted: Arc<Notify>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    done: watch::Sender<(u64, Option<String>)>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(_) => return,
    };
    loop {
        runtime.block_on(wanted.notified());
        let generation = started.fetch_add(1, Ordering::SeqCst) + 1;
        let began = std::time::Instant::now();
        let error = match db.flush() {
            Err(e) => Some(e.to_string()),
            Ok(_) => log
                .as_ref()
                .and_then(|f| f.sync_data().err())
                .map(|e| format!("fdatasync of the store's log: {e}")),
        };
        crate::metrics::observe_flush(began.elapsed());
        let _ = done.send((generation, error));
        if stop.load(Ordering::SeqCst) {
            return;
        }
    }
}
