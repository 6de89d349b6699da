//! The POP3 server (RFC 1939, with CAPA from RFC 2449, STLS from RFC 2595
//! and AUTH PLAIN from RFC 5034): `session.rs` runs the AUTHORIZATION,
//! TRANSACTION and UPDATE states, `command.rs` parses lines, `maildrop.rs`
//! is the locked INBOX snapshot a session works on.

pub(crate) mod command;
mod maildrop;
mod session;

pub use session::run;

use crate::store::{KeptLease, Store, StoreError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a maildrop lock lasts on a shared store unless renewed (a
/// dead node's locks lapse after this).
pub const LOCK_LEASE: Duration = Duration::from_secs(60);

/// The mailboxes with a POP3 session open (RFC 1939: one at a time per
/// mailbox). One set per running server, owned by the POP3 side: the
/// listener hands it to every POP3 session. On a store shared with other
/// nodes the lock is also a store lease, `pop3/<user>` (held by the node
/// and the session, kept alive every third of [`LOCK_LEASE`]), so a
/// mailbox open on one node is refused on every other; a node that dies
/// stops renewing, and its locks lapse with their leases.
#[derive(Clone)]
pub struct MaildropLocks {
    held: Arc<Mutex<HashSet<String>>>,
    /// The store, when it is shared with other nodes.
    shared: Option<Store>,
}

impl MaildropLocks {
    /// The locks of a server on `store`.
    pub fn new(store: &Store) -> MaildropLocks {
        MaildropLocks {
            held: Arc::default(),
            shared: store.is_shared().then(|| store.clone()),
        }
    }

    /// Takes the lock on `user`'s mailbox, or `None` if another POP3
    /// session (of this node or, on a shared store, of any) holds it.
    pub async fn acquire(&self, user: &str) -> Result<Option<MailboxLock>, StoreError> {
        let taken = {
            let mut set = self.held.lock().unwrap_or_else(|p| p.into_inner());
            set.insert(user.to_string())
        };
        if !taken {
            return Ok(None);
        }
        // From here the guard gives the in-process lock back on any return.
        let mut lock = MailboxLock {
            locks: self.clone(),
            user: user.to_string(),
            lease: None,
        };
        if let Some(store) = &self.shared {
            let holder = format!("{}#{:016x}", store.node(), rand::random::<u64>());
            match store
                .take_lease(&format!("pop3/{user}"), &holder, LOCK_LEASE)
                .await?
            {
                Some(lease) => lock.lease = Some(store.keep_lease(lease, LOCK_LEASE)),
                None => return Ok(None),
            }
        }
        Ok(Some(lock))
    }
}

/// The one-session-per-mailbox lock; released when dropped (the store
/// lease in the background) or, at once, by `release`.
pub struct MailboxLock {
    locks: MaildropLocks,
    user: String,
    lease: Option<KeptLease>,
}

impl MailboxLock {
    /// Gives the lock up now, the store lease included, so the mailbox can
    /// be opened again anywhere as soon as this returns.
    pub async fn release(mut self) {
        if let (Some(kept), Some(store)) = (self.lease.take(), &self.locks.shared) {
            let lease = kept.stop();
            if let Err(e) = store.drop_lease(&lease).await {
                tracing::warn!(user = %self.user, "giving the POP3 lock up failed (it lapses): {e}");
            }
        }
    }
}

impl Drop for MailboxLock {
    fn drop(&mut self) {
        let mut set = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_session_per_mailbox() {
        let (_dir, store) = crate::store::store_with_bob().await;
        let locks = MaildropLocks::new(&store);
        let first = locks.acquire("ann@x.test").await.unwrap();
        assert!(first.is_some());
        assert!(locks.acquire("ann@x.test").await.unwrap().is_none());
        assert!(locks.acquire("bob@x.test").await.unwrap().is_some());
        drop(first);
        let again = locks.acquire("ann@x.test").await.unwrap().unwrap();
        again.release().await;
        assert!(locks.acquire("ann@x.test").await.unwrap().is_some());
    }
}
