//! The POP3 server (RFC 1939, with CAPA from RFC 2449, STLS from RFC 2595
//! and AUTH PLAIN from RFC 5034): `session.rs` runs the AUTHORIZATION,
//! TRANSACTION and UPDATE states, `command.rs` parses lines, `maildrop.rs`
//! is the locked INBOX snapshot a session works on.

pub(crate) mod command;
mod maildrop;
mod session;

pub use session::run;

use crate::server::ServerContext;
use std::sync::Arc;

/// The one-session-per-mailbox lock; released when dropped.
pub struct MailboxLock {
    ctx: Arc<ServerContext>,
    user: String,
}

impl MailboxLock {
    /// Takes the lock, or `None` if another POP3 session holds it.
    pub fn acquire(ctx: &Arc<ServerContext>, user: &str) -> Option<MailboxLock> {
        let mut set = ctx.pop3_locks.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(user.to_string()).then(|| MailboxLock {
            ctx: ctx.clone(),
            user: user.to_string(),
        })
    }
}

impl Drop for MailboxLock {
    fn drop(&mut self) {
        let mut set = self
            .ctx
            .pop3_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        set.remove(&self.user);
    }
}
