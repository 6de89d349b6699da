//! Accepted messages that arrive together commit together: one write set
//! for several messages (their bodies' records, local copies, queue
//! entries and traces), as a database's group commit does for
//! transactions.
//!
//! Deliveries into one folder must take turns: each reads the folder's
//! next UID and writes it back advanced, so only one can commit at a time,
//! and twenty sessions delivering into one mailbox wait for each other's
//! commits one by one. Folded into one write set, the second message's
//! copy reads the folder as the first left it (the write set keeps what it
//! changed), so N messages cost one commit, one fsync on PostgreSQL and one
//! sled transaction.
//!
//! The first message to arrive while no group is being written starts a
//! writer task (spawned, so a session that goes away cannot strand the
//! others); every message that arrives while it writes joins the next
//! group. Nothing waits for company: a message alone is written at once.
//! A group that fails for a reason other than a race (a user over quota, a
//! folder gone) is written again one message at a time, so each message
//! gets its own outcome and the others are not refused for it.

use super::backend::{BackendError, Batch};
use super::mailbox::{LocalCopy, canonical_folder, folder_key};
use super::queue::QueueEntry;
use super::writeset::WriteSet;
use super::{BlobId, Store, StoreError, mailbox::NewCopy};
use crate::trace::Trace;
use tokio::sync::oneshot;

/// Most messages in one write set.
const MOST_PER_GROUP: usize = 64;

/// One accepted message waiting to be written.
pub(super) struct Accepted {
    /// The body's last chunk and record (`BlobWriter::finish`).
    pub body: Batch,
    pub blob: BlobId,
    pub size: u64,
    pub date: i64,
    pub copies: Vec<LocalCopy>,
    pub queue: Option<QueueEntry>,
    pub trace: Option<Trace>,
}

struct Waiting {
    message: Accepted,
    reply: oneshot::Sender<Result<Vec<u32>, StoreError>>,
}

/// The messages waiting for the writer task, and whether one is at work.
#[derive(Default)]
pub(super) struct Combiner {
    state: std::sync::Mutex<Waiters>,
}

#[derive(Default)]
struct Waiters {
    waiting: Vec<Waiting>,
    writing: bool,
}

impl Store {
    /// Writes `message` (with whatever else is waiting): the UIDs of its
    /// copies, in order.
    pub(super) async fn write_accepted(&self, message: Accepted) -> Result<Vec<u32>, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let start = {
            let mut state = self.combiner().lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.push(Waiting { message, reply });
            !std::mem::replace(&mut state.writing, true)
        };
        if start {
            let store = self.clone();
            tokio::spawn(async move { store.write_groups().await });
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(BackendError::Unavailable(
                "the task writing accepted messages stopped".into(),
            )))
        })
    }

    fn combiner(&self) -> &std::sync::Mutex<Waiters> {
        &self.inner.combiner.state
    }

    /// The writer task: groups until nothing waits.
    async fn write_groups(&self) {
        loop {
            let group: Vec<Waiting> = {
                let mut state = self.combiner().lock().unwrap_or_else(|e| e.into_inner());
                if state.waiting.is_empty() {
                    state.writing = false;
                    return;
                }
                let n = state.waiting.len().min(MOST_PER_GROUP);
                state.waiting.drain(..n).collect()
            };
            let messages: Vec<&Accepted> = group.iter().map(|w| &w.message).collect();
            match self.write_group(&messages).await {
                Ok(uids) => {
                    for (waiting, uids) in group.into_iter().zip(uids) {
                        let _ = waiting.reply.send(Ok(uids));
                    }
                }
                Err(_) if group.len() > 1 => {
                    for waiting in group {
                        let outcome = self.write_group(&[&waiting.message]).await;
                        let _ = waiting
                            .reply
                            .send(outcome.map(|mut u| u.pop().unwrap_or_default()));
                    }
                }
                Err(e) => {
                    if let Some(waiting) = group.into_iter().next() {
                        let _ = waiting.reply.send(Err(e));
                    }
                }
            }
        }
    }

    /// One write set for `messages` (retried on a race, holding the turns
    /// of the folders they file into).
    async fn write_group(&self, messages: &[&Accepted]) -> Result<Vec<Vec<u32>>, StoreError> {
        let folders: Vec<Vec<u8>> = messages
            .iter()
            .flat_map(|m| &m.copies)
            .map(|c| folder_key(&c.user, &canonical_folder(&c.folder)))
            .collect();
        self.attempt_in_turns(&folders, || async {
            let mut ws = WriteSet::new(self);
            let mut all = Vec::with_capacity(messages.len());
            for m in messages {
                ws.batch.writes.extend(m.body.writes.clone());
                ws.batch
                    .conditions
                    .extend(m.body.conditions.iter().cloned());
                let mut uids = Vec::with_capacity(m.copies.len());
                for c in &m.copies {
                    let copy = NewCopy {
                        blob: m.blob,
                        size: m.size,
                        flags: c.flags.clone(),
                        internal_date: m.date,
                    };
                    uids.push(ws.add_copy(&c.user, &c.folder, copy, true).await?);
                }
                if let Some(q) = &m.queue {
                    self.queue_in(&mut ws.batch, q);
                }
                if let Some(t) = &m.trace {
                    super::trace::put_trace(&mut ws.batch, t);
                }
                all.push(uids);
            }
            ws.commit().await?;
            Ok(all)
        })
        .await
    }
}
