//! Changes made by other nodes: on a shared store (`Store::is_shared`) the
//! mailbox events of `Store::subscribe` are raised only by the process
//! that made the change, so an IMAP session on one node would not hear of
//! mail delivered on another. The sessions' users are watched instead: a
//! logged-in session holds a [`Watch`] for its user, and one task per
//! process reads each watched user's folder records (`f/<user>\0`, one
//! prefix scan) every [`POLL`] and raises a `MailboxEvent` for every
//! folder whose UIDVALIDITY, next UID or highest mod-sequence changed (or
//! that appeared or went) since the last look. Every change to a folder's
//! messages moves its mod-sequence (`writeset.rs`), so nothing is missed;
//! a local change is seen twice (its own event, then the poll's), which
//! costs a session one more reload of the folder and nothing else. No
//! engine notification (PostgreSQL's LISTEN/NOTIFY) is relied on: polling
//! the seam's reads works on any engine. With sled (one process) a watch
//! does nothing.

use super::backend::{KeyRange, ScanOrder, Space};
use super::mailbox::FolderInfo;
use super::{MailboxEvent, Store, StoreError, decode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the watched users' folders are read.
pub const POLL: Duration = Duration::from_secs(1);

/// What tells one state of a folder's contents from another.
type Mark = (u32, u32, u64);

fn mark(info: &FolderInfo) -> Mark {
    (info.uidvalidity, info.next_uid, info.highest_modseq)
}

/// The users watched by this process: how many sessions each, and their
/// folders as last read.
#[derive(Default)]
pub(super) struct Watched {
    users: HashMap<String, (usize, HashMap<String, Mark>)>,
    /// Whether the polling task runs (it ends when no user is watched).
    polling: bool,
}

/// A session's interest in its user's folders; dropping it ends it.
pub struct Watch {
    watched: Option<(Weak<Mutex<Watched>>, String)>,
}

impl Store {
    /// Watches `user`'s folders for changes made by other nodes while the
    /// returned guard lives (a no-op guard with sled). The folders are read
    /// once now, so a change made after this returns is reported.
    pub async fn watch(&self, user: &str) -> Result<Watch, StoreError> {
        if !self.is_shared() {
            return Ok(Watch { watched: None });
        }
        let first = self.folder_marks(user).await?;
        let watched = &self.inner.watched;
        let start = {
            let mut w = watched.lock().unwrap_or_else(|p| p.into_inner());
            w.users
                .entry(user.to_string())
                .or_insert_with(|| (0, first))
                .0 += 1;
            !std::mem::replace(&mut w.polling, true)
        };
        if start {
            tokio::spawn(poll(self.clone()));
        }
        Ok(Watch {
            watched: Some((Arc::downgrade(watched), user.to_string())),
        })
    }

    async fn folder_marks(&self, user: &str) -> Result<HashMap<String, Mark>, StoreError> {
        let prefix = format!("f/{user}\0").into_bytes();
        let found = self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
            .await?;
        let mut marks = HashMap::new();
        for (_, v) in found {
            let info: FolderInfo = decode("folder", &v)?;
            marks.insert(info.name.clone(), mark(&info));
        }
        Ok(marks)
    }

    /// Reads every watched user's folders once and raises an event for
    /// each that changed. False: nobody is watched any more (the task ends).
    async fn poll_once(&self) -> bool {
        let users: Vec<String> = {
            let mut w = self.inner.watched.lock().unwrap_or_else(|p| p.into_inner());
            if w.users.is_empty() {
                w.polling = false;
                return false;
            }
            w.users.keys().cloned().collect()
        };
        for user in users {
            let now = match self.folder_marks(&user).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(user = %user, "reading folders for changes failed: {e}");
                    continue;
                }
            };
            let changed: Vec<String> = {
                let mut w = self.inner.watched.lock().unwrap_or_else(|p| p.into_inner());
                let Some((_, before)) = w.users.get_mut(&user) else {
                    continue; // unwatched meanwhile
                };
                let mut changed: Vec<String> = now
                    .iter()
                    .filter(|(name, m)| before.get(*name) != Some(m))
                    .map(|(name, _)| name.clone())
                    .collect();
                changed.extend(before.keys().filter(|n| !now.contains_key(*n)).cloned());
                *before = now;
                changed
            };
            for folder in changed {
                self.notify(MailboxEvent {
                    user: user.clone(),
                    folder,
                });
            }
        }
        true
    }
}

/// The polling task: runs while some user is watched.
async fn poll(store: Store) {
    loop {
        tokio::time::sleep(POLL).await;
        if !store.poll_once().await {
            return;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some((watched, user)) = self.watched.take() else {
            return;
        };
        let Some(watched) = watched.upgrade() else {
            return;
        };
        let mut w = watched.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, _)) = w.users.get_mut(&user) {
            *n -= 1;
            if *n == 0 {
                w.users.remove(&user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_watch_on_sled_is_inert() {
        let (_dir, store) = super::super::store_with_bob().await;
        let w = store.watch("bob@example.test").await.unwrap();
        assert!(w.watched.is_none());
        assert!(store.inner.watched.lock().unwrap().users.is_empty());
    }

    #[tokio::test]
    async fn changes_are_raised_once_per_look() {
        let (_dir, store) = super::super::store_with_bob().await;
        let user = "bob@example.test";
        store.create_folder(user, "INBOX").await.ok();
        // Registered by hand (sled is not shared): the poll itself is the
        // same on every engine.
        let first = store.folder_marks(user).await.unwrap();
        store
            .inner
            .watched
            .lock()
            .unwrap()
            .users
            .insert(user.to_string(), (1, first));
        let mut events = store.subscribe();
        assert!(store.poll_once().await);
        assert!(events.try_recv().is_err(), "nothing changed yet");
        store.create_folder(user, "Lists").await.unwrap();
        while events.try_recv().is_ok() {} // the local event
        assert!(store.poll_once().await);
        let e = events.try_recv().unwrap();
        assert_eq!((e.user.as_str(), e.folder.as_str()), (user, "Lists"));
        assert!(events.try_recv().is_err());
        assert!(store.poll_once().await);
        assert!(events.try_recv().is_err(), "raised once");
        store.inner.watched.lock().unwrap().users.clear();
        assert!(!store.poll_once().await);
    }
}
