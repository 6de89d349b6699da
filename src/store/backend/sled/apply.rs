//! The one writer: a thread that applies every write set, and applies the
//! write sets that arrive while it is busy together, as one sled
//! transaction. sled pays for each transaction with two seals of its log
//! buffer, each a write handed to its I/O pool (which wakes every idle pool
//! thread); sled also runs its transactions one at a time, so one writer
//! loses no concurrency and turns N transactions into one under load. Idle,
//! a write set goes alone, as soon as it arrives (no waiting for company).
//!
//! Inside the group each write set keeps its own meaning: its conditions
//! are read after the writes of the sets before it in the group (as if
//! they had committed one after the other), and a set whose conditions do
//! not hold is left out and reported as a conflict without touching the
//! others. A storage error fails every set of the group.

use super::capture::Capture;
use crate::store::backend::{BackendError, Batch, Space, Write};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use tokio::sync::oneshot;

/// Most write sets in one transaction.
const MOST_PER_GROUP: usize = 256;

/// One write set on its way to the writer, and where its outcome goes
/// (with the batch handed back).
struct Job {
    batch: Batch,
    reply: oneshot::Sender<(Result<(), BackendError>, Batch)>,
}

/// The handle to the writer thread; dropping it ends the thread once the
/// write sets already sent are applied.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The trees the writer applies to, and the backup capture gate (write
/// sets hold it shared while they apply).
pub(super) struct Target {
    pub meta: sled::Tree,
    pub blobs: sled::Tree,
    pub gate: Arc<RwLock<Option<Arc<Capture>>>>,
}

impl Writer {
    pub(super) fn start(target: Target) -> Writer {
        let (jobs, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tern-writer".into())
            .spawn(move || run(target, rx))
            .ok();
        Writer {
            jobs: Some(jobs),
            thread,
        }
    }

    /// Applies `batch` as one write set (with whatever else is waiting);
    /// hands it back with the outcome.
    pub(super) async fn apply(&self, batch: Batch) -> (Result<(), BackendError>, Batch) {
        let stopped = || BackendError::Engine("the store's writer thread stopped".into());
        let (reply, outcome) = oneshot::channel();
        let job = Job { batch, reply };
        let Some(jobs) = self.jobs.as_ref() else {
            return (Err(stopped()), job.batch);
        };
        if let Err(mpsc::SendError(job)) = jobs.send(job) {
            return (Err(stopped()), job.batch);
        }
        outcome
            .await
            .unwrap_or_else(|_| (Err(stopped()), Batch::new()))
    }
}

impl Drop for Writer {
    /// Ends the writer (after the write sets already sent) so the database
    /// can close.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(target: Target, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MOST_PER_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // A panic inside sled fails this group, not the writer (and with
        // it every later write set).
        let outcomes = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply_group(&target, &group)
        }))
        .unwrap_or_else(|_| {
            Err(BackendError::Engine(
                "the store's writer panicked applying a write set".into(),
            ))
        });
        for (i, job) in group.into_iter().enumerate() {
            let outcome = match &outcomes {
                Ok(applied) if applied[i] => Ok(()),
                Ok(_) => Err(BackendError::Conflict),
                Err(e) => Err(e.clone()),
            };
            let _ = job.reply.send((outcome, job.batch));
        }
    }
}

/// One sled transaction over both trees for the whole group; which sets
/// applied (the others' conditions did not hold).
fn apply_group(target: &Target, group: &[Job]) -> Result<Vec<bool>, BackendError> {
    let gate = target.gate.read().unwrap_or_else(|e| e.into_inner());
    let capture = gate.as_deref();
    let result = (&target.meta, &target.blobs).transaction(
        |(meta, blobs)| -> Result<Vec<bool>, ConflictableTransactionError<()>> {
            let pick = |space: Space| -> &TransactionalTree {
                match space {
                    Space::Meta => meta,
                    Space::Blobs => blobs,
                }
            };
            // A backup's capture records each key's value before the
            // group's first write to it (a later set of the group would
            // otherwise see an earlier set's write as the key's "before").
            if let Some(capture) = capture {
                for job in group {
                    for (space, key) in job.batch.writes.keys() {
                        let old = pick(*space).get(key)?;
                        capture.record(*space, key, old.as_deref());
                    }
                }
            }
            let mut applied = Vec::with_capacity(group.len());
            for job in group {
                let mut holds = true;
                for (space, key, expected) in &job.batch.conditions {
                    if pick(*space).get(key)?.as_deref() != expected.as_deref() {
                        holds = false;
                        break;
                    }
                }
                applied.push(holds);
                if !holds {
                    continue;
                }
                for ((space, key), write) in &job.batch.writes {
                    match write {
                        Write::Put(value) => {
                            pick(*space).insert(key.as_slice(), value.as_slice())?;
                        }
                        Write::Delete => {
                            pick(*space).remove(key.as_slice())?;
                        }
                    }
                }
            }
            Ok(applied)
        },
    );
    match result {
        Ok(applied) => Ok(applied),
        // The closure never aborts: a set whose conditions fail is skipped.
        Err(TransactionError::Abort(())) => Err(BackendError::Conflict),
        Err(TransactionError::Storage(e)) => Err(e.into()),
    }
}
