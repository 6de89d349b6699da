//! One POP3 session through its three states. Replies carry RFC 2449
//! response codes ([AUTH], [IN-USE], [SYS/TEMP]); login is refused before
//! TLS unless `tls.allow_plaintext_auth`; failures are slowed by
//! `crate::auth`; deletions happen only at QUIT.

use super::command::{Command, CommandError, parse};
use super::maildrop::{Maildrop, Stuffer};
use super::{MailboxLock, MaildropLocks};
use crate::auth::decode_plain;
use crate::context::ServerContext;
use crate::net::{Connection, Line};
use crate::shutdown::Shutdown;
use std::io;
use std::sync::Arc;

const MAX_LINE: usize = 8 * 1024;
/// Bad commands before the server hangs up.
const MAX_ERRORS: u32 = 10;

enum State {
    Authorization { user: Option<String> },
    Transaction { drop: Maildrop, lock: MailboxLock },
}

struct Session {
    conn: Connection,
    ctx: Arc<ServerContext>,
    /// The server's POP3 maildrop locks.
    locks: MaildropLocks,
    state: State,
    errors: u32,
    commands: u32,
    /// The logged-in user's place in `limits.max_sessions_per_user`.
    user_slot: Option<crate::limits::UserSlot>,
}

pub async fn run(
    conn: Connection,
    ctx: Arc<ServerContext>,
    locks: MaildropLocks,
    mut shutdown: Shutdown,
) {
    let mut s = Session {
        conn,
        ctx,
        locks,
        state: State::Authorization { user: None },
        errors: 0,
        commands: 0,
        user_slot: None,
    };
    let result = tokio::select! {
        r = s.serve() => r,
        _ = shutdown.recv() => s.conn.write_all(b"-ERR [SYS/TEMP] server shutting down\r\n").await,
    };
    if let Err(e) = result {
        tracing::debug!(client = %s.conn.peer, "pop3 session ended: {e}");
    }
    s.conn.shutdown().await;
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        let host = self.ctx.config.hostname.clone();
        self.conn
            .write_all(format!("+OK {host} Tern POP3 server ready\r\n").as_bytes())
            .await?;
        let timeout = self.ctx.config.limits.command_timeout.0;
        loop {
            if self.conn.buffered().is_empty() {
                self.conn.flush().await?;
            }
            let line = match tokio::time::timeout(timeout, self.conn.read_line(MAX_LINE)).await {
                Err(_) => {
                    return self
                        .conn
                        .write_all(b"-ERR [SYS/TEMP] autologout: idle too long\r\n")
                        .await;
                }
                Ok(l) => l?,
            };
            let line = match line {
                Line::Eof => return Ok(()), // dropped: nothing is deleted
                Line::TooLong => {
                    self.err("line too long").await?;
                    continue;
                }
                Line::Complete(l) => l,
            };
            self.commands += 1;
            if self.commands > self.ctx.config.limits.max_commands_per_session {
                tracing::warn!(client = %self.conn.peer, "too many commands in one pop3 session");
                crate::metrics::counter(
                    "tern_limits_hit_total",
                    &[("limit", "max_commands_per_session")],
                );
                // Dropped without QUIT: nothing is deleted.
                return self
                    .conn
                    .write_all(b"-ERR [SYS/TEMP] too many commands, bye\r\n")
                    .await;
            }
            let cmd = match parse(&line) {
                Ok(c) => c,
                Err(CommandError::Unknown) => {
                    self.err("unknown command").await?;
                    continue;
                }
                Err(CommandError::Syntax(why)) => {
                    self.err(why).await?;
                    continue;
                }
            };
            if matches!(cmd, Command::Quit) {
                return self.quit().await;
            }
            if self.errors >= MAX_ERRORS {
                return self.conn.write_all(b"-ERR too many errors, bye\r\n").await;
            }
            match std::mem::replace(&mut self.state, State::Authorization { user: None }) {
                State::Authorization { user } => self.authorization(cmd, user).await?,
                State::Transaction { drop, lock } => {
                    self.state = State::Transaction { drop, lock };
                    self.transaction(cmd).await?;
                }
            }
        }
    }

    async fn ok(&mut self, text: &str) -> io::Result<()> {
        self.conn
            .write_buffered(format!("+OK {text}\r\n").as_bytes())
            .await
    }

    async fn err(&mut self, text: &str) -> io::Result<()> {
        self.errors += 1;
        self.conn
            .write_buffered(format!("-ERR {text}\r\n").as_bytes())
            .await?;
        if self.errors >= MAX_ERRORS {
            self.conn.flush().await?;
        }
        Ok(())
    }

    fn plaintext_ok(&self) -> bool {
        self.conn.is_tls() || self.ctx.config.tls.allow_plaintext_auth
    }

    async fn capa(&mut self) -> io::Result<()> {
        let mut lines = vec![
            "+OK Capability list follows",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
        ];
        if self.plaintext_ok() {
            lines.push("USER");
            lines.push("SASL PLAIN");
        }
        if !self.conn.is_tls() {
            lines.push("STLS");
        }
        lines.push("IMPLEMENTATION Tern");
        lines.push(".");
        let text = lines.join("\r\n") + "\r\n";
        self.conn.write_buffered(text.as_bytes()).await
    }

    async fn authorization(&mut self, cmd: Command, user: Option<String>) -> io::Result<()> {
        match cmd {
            Command::Capa => self.capa().await,
            Command::Stls => {
                if self.conn.is_tls() {
                    return self.err("TLS already active").await;
                }
                self.conn
                    .write_all(b"+OK Begin TLS negotiation\r\n")
                    .await?;
                if let Err(e) = self.conn.start_tls(&self.ctx.tls).await {
                    tracing::info!(client = %self.conn.peer, "STLS handshake failed: {e}");
                    return Err(e);
                }
                Ok(())
            }
            Command::User(name) => {
                if !self.plaintext_ok() {
                    return self
                        .err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS")
                        .await;
                }
                self.state = State::Authorization { user: Some(name) };
                self.ok("send PASS").await
            }
            Command::Pass(password) => {
                let Some(name) = user else {
                    return self.err("USER first").await;
                };
                if !self.plaintext_ok() {
                    return self
                        .err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS")
                        .await;
                }
                self.login(&name, &password).await
            }
            Command::Auth {
                mechanism: None, ..
            } => self.conn.write_buffered(b"+OK\r\nPLAIN\r\n.\r\n").await,
            Command::Auth {
                mechanism: Some(m),
                initial,
            } => {
                if m != "PLAIN" {
                    return self.err("unsupported authentication mechanism").await;
                }
                if !self.plaintext_ok() {
                    return self
                        .err("[AUTH] Authentication disallowed on non-secure connections; use STLS")
                        .await;
                }
                let response = match initial {
                    Some(r) if r == "=" => String::new(),
                    Some(r) => r,
                    None => {
                        self.conn.write_all(b"+ \r\n").await?;
                        match self.conn.read_line(MAX_LINE).await? {
                            Line::Complete(l) if l == b"*" => {
                                return self.err("authentication cancelled").await;
                            }
                            Line::Complete(l) => String::from_utf8_lossy(&l).into_owned(),
                            Line::TooLong => return self.err("line too long").await,
                            Line::Eof => return Ok(()),
                        }
                    }
                };
                match decode_plain(&response) {
                    Ok((authz, authc, pass))
                        if authz.is_empty() || authz.eq_ignore_ascii_case(&authc) =>
                    {
                        self.login(&authc, &pass).await
                    }
                    Ok(_) => self.err("[AUTH] authorization identity not allowed").await,
                    Err(e) => self.err(&format!("cannot decode response: {e}")).await,
                }
            }
            Command::Apop => {
                self.err("APOP is not supported; use USER/PASS or AUTH PLAIN over TLS")
                    .await
            }
            Command::Noop => self.err("log in first").await,
            _ => self.err("command not valid before login").await,
        }
    }

    async fn login(&mut self, login: &str, password: &str) -> io::Result<()> {
        let Some(account) = self
            .ctx
            .auth
            .verify(self.conn.peer.ip(), login, password)
            .await
        else {
            return self.err("[AUTH] Authentication failed").await;
        };
        let Some(slot) = self.ctx.limits.user(&account).await else {
            tracing::warn!(user = %account, client = %self.conn.peer, "too many sessions for this user");
            crate::metrics::counter(
                "tern_limits_hit_total",
                &[("limit", "max_sessions_per_user")],
            );
            return self
                .err("[IN-USE] Too many sessions for this user, try again later")
                .await;
        };
        self.user_slot = Some(slot);
        let lock = match self.locks.acquire(&account).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                tracing::info!(user = %account, client = %self.conn.peer, "pop3 mailbox in use");
                return self
                    .err("[IN-USE] Mailbox is locked by another POP3 session")
                    .await;
            }
            Err(e) => {
                tracing::error!(user = %account, "cannot lock the maildrop: {e}");
                return self
                    .err("[SYS/TEMP] cannot open the mailbox, try again later")
                    .await;
            }
        };
        match Maildrop::open_for(&self.ctx, &account).await {
            Ok(drop) => {
                let (n, size) = drop.stat();
                self.state = State::Transaction { drop, lock };
                self.ok(&format!("Logged in, {n} messages ({size} octets)"))
                    .await
            }
            Err(e) => {
                tracing::error!(user = %account, "cannot open maildrop: {e}");
                self.err("[SYS/TEMP] cannot open the mailbox, try again later")
                    .await
            }
        }
    }

    fn drop_mut(&mut self) -> Option<&mut Maildrop> {
        match &mut self.state {
            State::Transaction { drop, .. } => Some(drop),
            State::Authorization { .. } => None,
        }
    }

    async fn transaction(&mut self, cmd: Command) -> io::Result<()> {
        let Some(drop) = self.drop_mut() else {
            return Ok(());
        };
        match cmd {
            Command::Capa => self.capa().await,
            Command::Stat => {
                let (n, size) = drop.stat();
                self.ok(&format!("{n} {size}")).await
            }
            Command::List(None) => {
                let mut out = String::from("+OK scan listing follows\r\n");
                for (n, m) in drop.live() {
                    out.push_str(&format!("{n} {}\r\n", m.size));
                }
                out.push_str(".\r\n");
                self.conn.write_buffered(out.as_bytes()).await
            }
            Command::List(Some(n)) => match drop.get(n).map(|m| m.size) {
                Some(size) => self.ok(&format!("{n} {size}")).await,
                None => self.err("no such message").await,
            },
            Command::Uidl(None) => {
                let mut out = String::from("+OK unique-id listing follows\r\n");
                for (n, m) in drop.live() {
                    out.push_str(&format!("{n} {}\r\n", drop.uid_of(m)));
                }
                out.push_str(".\r\n");
                self.conn.write_buffered(out.as_bytes()).await
            }
            Command::Uidl(Some(n)) => match drop.get(n).map(|m| drop.uid_of(m)) {
                Some(uid) => self.ok(&format!("{n} {uid}")).await,
                None => self.err("no such message").await,
            },
            Command::Retr(n) => self.send_message(n, None).await,
            Command::Top(n, lines) => self.send_message(n, Some(lines)).await,
            Command::Dele(n) => {
                if drop.delete(n) {
                    self.ok(&format!("message {n} deleted")).await
                } else {
                    self.err("no such message").await
                }
            }
            Command::Rset => {
                drop.reset();
                let (n, size) = drop.stat();
                self.ok(&format!("maildrop has {n} messages ({size} octets)"))
                    .await
            }
            Command::Noop => self.ok("").await,
            Command::Stls => self.err("STLS is only valid before login").await,
            _ => self.err("command not valid after login").await,
        }
    }

    async fn send_message(&mut self, n: usize, top: Option<usize>) -> io::Result<()> {
        let Some(drop) = self.drop_mut() else {
            return Ok(());
        };
        let Some(meta) = drop.get(n).cloned() else {
            return self.err("no such message").await;
        };
        let mut parts = match drop.parts(&meta).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(uid = meta.uid, "cannot read message: {e}");
                return self.err("[SYS/TEMP] cannot read the message").await;
            }
        };
        let head = match top {
            None => format!("+OK {} octets\r\n", meta.size),
            Some(_) => "+OK top of message follows\r\n".to_string(),
        };
        self.conn.write_buffered(head.as_bytes()).await?;
        let mut stuffer = Stuffer::new(top);
        let mut out = Vec::with_capacity(70 * 1024);
        while let Some(part) = parts.next_part().await {
            let part = match part {
                Ok(p) => p,
                Err(e) => {
                    // The +OK is out: all we can do is end the response and the session.
                    tracing::error!(uid = meta.uid, "message vanished mid-transfer: {e}");
                    return Err(io::Error::other(e));
                }
            };
            let more = stuffer.feed(&part, &mut out);
            self.conn.write_buffered(&out).await?;
            out.clear();
            if !more {
                break;
            }
        }
        stuffer.finish(&mut out);
        self.conn.write_buffered(&out).await
    }

    async fn quit(&mut self) -> io::Result<()> {
        let host = self.ctx.config.hostname.clone();
        if let State::Transaction { drop, .. } = &self.state {
            let result = match drop.commit().await {
                Ok(n) => self
                    .ctx
                    .store
                    .flush()
                    .await
                    .map(|_| n)
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(n) => tracing::info!(client = %self.conn.peer, deleted = n, "pop3 logout"),
                Err(e) => {
                    tracing::error!("pop3 update failed: {e}");
                    return self
                        .conn
                        .write_all(b"-ERR [SYS/TEMP] some deleted messages were not removed\r\n")
                        .await;
                }
            }
        }
        // The deletions are done: the mailbox is free again, on every node,
        // before the client hears so.
        let state = std::mem::replace(&mut self.state, State::Authorization { user: None });
        if let State::Transaction { lock, .. } = state {
            lock.release().await;
        }
        self.conn
            .write_all(format!("+OK {host} Tern POP3 server signing off\r\n").as_bytes())
            .await
    }
}
