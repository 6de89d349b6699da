//! The POP3 server (RFC 1939, with CAPA from RFC 2449, STLS from RFC 2595
//! and AUTH PLAIN from RFC 5034): `session.rs` runs the AUTHORIZATION,
//! TRANSACTION and UPDATE states, `command.rs` parses lines, `maildrop.rs`
//! is the locked INBOX snapshot a session works on.

pub(crate) mod command;
mod maildrop;
mod session;

pub use session::run;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The mailboxes with a POP3 session open (RFC 1939: one at a time per
/// mailbox). One set per running server, owned by the POP3 side: the
/// listener hands it to every POP3 session.
#[derive(Clone, Default)]
pub struct MaildropLocks {
    held: Arc<Mutex<HashSet<String>>>,
}

impl MaildropLocks {
    /// Takes the lock on `user`'s mailbox, or `None` if another POP3
    /// session holds it.
    pub fn acquire(&self, user: &str) -> Option<MailboxLock> {
        let mut set = self.held.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(user.to_string()).then(|| MailboxLock {
            locks: self.clone(),
            user: user.to_string(),
        })
    }
}

/// The one-session-per-mailbox lock; released when dropped.
pub struct MailboxLock {
    locks: MaildropLocks,
    user: String,
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

    #[test]
    fn one_session_per_mailbox() {
        let locks = MaildropLocks::default();
        let first = locks.acquire("ann@x.test");
        assert!(first.is_some());
        assert!(locks.acquire("ann@x.test").is_none());
        assert!(locks.acquire("bob@x.test").is_some());
        drop(first);
        assert!(locks.acquire("ann@x.test").is_some());
    }
}
