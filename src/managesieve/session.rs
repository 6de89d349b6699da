//! One ManageSieve connection (RFC 5804): the greeting with capabilities,
//! the non-authenticated state (STARTTLS, AUTHENTICATE PLAIN — refused
//! before TLS unless `tls.allow_plaintext_auth`, as IMAP and POP3 do; the
//! same `crate::auth` checks, delays and failure limits), then the script
//! commands (`scripts.rs`) until LOGOUT, an idle timeout, too many errors
//! or shutdown. STARTTLS discards anything pipelined before the handshake
//! and sends the capabilities again.

use super::command::{Command, CommandError, parse};
use super::wire::{Frame, Token, read_command, string};
use crate::auth::decode_plain;
use crate::context::ServerContext;
use crate::net::Connection;
use crate::shutdown::Shutdown;
use std::io;
use std::sync::Arc;

/// Bad commands before the server hangs up.
const MAX_ERRORS: u32 = 10;

pub(super) struct Session {
    pub conn: Connection,
    pub ctx: Arc<ServerContext>,
    /// The logged-in account.
    pub user: Option<String>,
    /// The logged-in user's place in `limits.max_sessions_per_user`.
    user_slot: Option<crate::limits::UserSlot>,
    errors: u32,
    commands: u32,
}

pub async fn run(conn: Connection, ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    let mut s = Session {
        conn,
        ctx,
        user: None,
        user_slot: None,
        errors: 0,
        commands: 0,
    };
    let result = tokio::select! {
        r = s.serve() => r,
        _ = shutdown.recv() => s.conn.write_all(b"BYE (TRYLATER) \"Server shutting down\"\r\n").await,
    };
    if let Err(e) = result {
        tracing::debug!(client = %s.conn.peer, "managesieve session ended: {e}");
    }
    s.conn.shutdown().await;
}

/// What a command handler tells the loop.
pub(super) enum Next {
    Continue,
    Close,
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        self.send_capabilities().await?;
        self.ok(None, "Tern ManageSieve ready").await?;
        let timeout = self.ctx.config.limits.command_timeout.0;
        let max_literal = self.ctx.config.sieve.max_script_size.0;
        loop {
            self.conn.flush().await?;
            let frame = match tokio::time::timeout(
                timeout,
                read_command(&mut self.conn, max_literal),
            )
            .await
            {
                Err(_) => {
                    return self
                        .conn
                        .write_all(b"BYE \"Disconnected for inactivity\"\r\n")
                        .await;
                }
                Ok(f) => f?,
            };
            let tokens = match frame {
                Frame::Eof => return Ok(()),
                Frame::TooLong => {
                    self.bad("Line too long").await?;
                    continue;
                }
                Frame::TooBig(n) => {
                    self.errors += 1;
                    let max = self.ctx.config.sieve.max_script_size.0;
                    self.no(
                        Some("QUOTA/MAXSIZE"),
                        &format!("A literal of {n} octets is above the limit of {max}"),
                    )
                    .await?;
                    continue;
                }
                Frame::Bad(why) => {
                    self.bad(why).await?;
                    continue;
                }
                Frame::Command(t) => t,
            };
            self.commands += 1;
            if self.commands > self.ctx.config.limits.max_commands_per_session {
                crate::metrics::counter(
                    "tern_limits_hit_total",
                    &[("limit", "max_commands_per_session")],
                );
                return self
                    .conn
                    .write_all(b"BYE (TRYLATER) \"Too many commands\"\r\n")
                    .await;
            }
            let cmd = match parse(&tokens) {
                Ok(c) => c,
                Err(CommandError::Unknown) => {
                    self.bad("Unknown command").await?;
                    continue;
                }
                Err(CommandError::Syntax(why)) => {
                    self.bad(why).await?;
                    continue;
                }
            };
            if let Next::Close = self.dispatch(cmd).await? {
                return Ok(());
            }
            if self.errors >= MAX_ERRORS {
                return self.conn.write_all(b"BYE \"Too many errors\"\r\n").await;
            }
        }
    }

    async fn dispatch(&mut self, cmd: Command) -> io::Result<Next> {
        match cmd {
            Command::Logout => {
                self.ok(None, "Logout completed").await?;
                self.conn.flush().await?;
                return Ok(Next::Close);
            }
            Command::Capability => {
                self.send_capabilities().await?;
                self.ok(None, "Capability completed").await?;
            }
            Command::Noop(tag) => match tag {
                Some(tag) => {
                    let mut line = b"OK (TAG ".to_vec();
                    line.extend(string(tag.as_bytes()));
                    line.extend_from_slice(b") \"Done\"\r\n");
                    self.conn.write_buffered(&line).await?;
                }
                None => self.ok(None, "Done").await?,
            },
            Command::StartTls => return self.starttls().await,
            Command::Authenticate { mechanism, initial } => {
                return self.authenticate(&mechanism, initial).await;
            }
            Command::Unauthenticate => {
                if self.user.take().is_some() {
                    self.user_slot = None;
                    self.ok(None, "Unauthenticate completed").await?;
                } else {
                    self.bad("Not authenticated").await?;
                }
            }
            other => {
                if self.user.is_none() {
                    return self.bad("Authenticate first").await.map(|_| Next::Continue);
                }
                self.script_command(other).await?;
            }
        }
        Ok(Next::Continue)
    }

    fn plaintext_ok(&self) -> bool {
        self.conn.is_tls() || self.ctx.config.tls.allow_plaintext_auth
    }

    /// The capability lines (RFC 5804 section 1.7).
    async fn send_capabilities(&mut self) -> io::Result<()> {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let pair = |k: &str, v: &str| {
            let mut l = string(k.as_bytes());
            l.push(b' ');
            l.extend(string(v.as_bytes()));
            l
        };
        lines.push(pair("IMPLEMENTATION", "Tern"));
        lines.push(pair("SIEVE", &tern_sieve::EXTENSIONS.join(" ")));
        let sasl = if self.plaintext_ok() && self.user.is_none() {
            "PLAIN"
        } else {
            ""
        };
        lines.push(pair("SASL", sasl));
        if !self.conn.is_tls() && self.user.is_none() {
            lines.push(string(b"STARTTLS"));
        }
        let redirects = self.ctx.config.sieve.max_redirects.to_string();
        lines.push(pair("MAXREDIRECTS", &redirects));
        if let Some(user) = &self.user {
            lines.push(pair("OWNER", user));
        }
        lines.push(pair("VERSION", "1.0"));
        lines.push(string(b"UNAUTHENTICATE"));
        for mut l in lines {
            l.extend_from_slice(b"\r\n");
            self.conn.write_buffered(&l).await?;
        }
        Ok(())
    }

    /// `OK [(code)] "text"`.
    pub(super) async fn ok(&mut self, code: Option<&str>, text: &str) -> io::Result<()> {
        self.respond("OK", code, text).await
    }

    /// `NO [(code)] "text"`.
    pub(super) async fn no(&mut self, code: Option<&str>, text: &str) -> io::Result<()> {
        self.respond("NO", code, text).await
    }

    /// A refused request that counts towards `MAX_ERRORS`.
    async fn bad(&mut self, text: &str) -> io::Result<()> {
        self.errors += 1;
        self.no(None, text).await
    }

    async fn respond(&mut self, word: &str, code: Option<&str>, text: &str) -> io::Result<()> {
        let mut line = word.as_bytes().to_vec();
        if let Some(code) = code {
            line.extend_from_slice(format!(" ({code})").as_bytes());
        }
        line.push(b' ');
        line.extend(string(text.as_bytes()));
        line.extend_from_slice(b"\r\n");
        self.conn.write_buffered(&line).await
    }

    async fn starttls(&mut self) -> io::Result<Next> {
        if self.conn.is_tls() {
            self.bad("TLS is already active").await?;
            return Ok(Next::Continue);
        }
        if self.user.is_some() {
            self.bad("STARTTLS is only valid before authentication")
                .await?;
            return Ok(Next::Continue);
        }
        self.ok(None, "Begin TLS negotiation now").await?;
        self.conn.flush().await?;
        // Anything the client sent after STARTTLS is dropped here.
        if let Err(e) = self.conn.start_tls(&self.ctx.tls).await {
            tracing::info!(client = %self.conn.peer, "managesieve STARTTLS handshake failed: {e}");
            return Err(e);
        }
        self.send_capabilities().await?;
        self.ok(None, "TLS negotiation successful").await?;
        Ok(Next::Continue)
    }

    async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> io::Result<Next> {
        if self.user.is_some() {
            self.bad("Already authenticated").await?;
            return Ok(Next::Continue);
        }
        if mechanism != "PLAIN" {
            self.bad("Unsupported authentication mechanism").await?;
            return Ok(Next::Continue);
        }
        if !self.plaintext_ok() {
            self.errors += 1;
            self.no(
                Some("ENCRYPT-NEEDED"),
                "Authentication is only allowed over TLS; use STARTTLS",
            )
            .await?;
            return Ok(Next::Continue);
        }
        let response = match initial {
            Some(r) => r,
            None => {
                // An empty challenge; the client answers with a string.
                self.conn.write_all(b"\"\"\r\n").await?;
                match read_command(&mut self.conn, super::wire::MAX_LINE as u64).await? {
                    Frame::Eof => return Ok(Next::Close),
                    Frame::Command(t) => match t.as_slice() {
                        [Token::Str(s)] if s.as_slice() == b"*" => {
                            self.bad("Authentication cancelled").await?;
                            return Ok(Next::Continue);
                        }
                        [Token::Str(s)] => s.clone(),
                        _ => {
                            self.bad("Expected the response as a string").await?;
                            return Ok(Next::Continue);
                        }
                    },
                    _ => {
                        self.bad("Expected the response as a string").await?;
                        return Ok(Next::Continue);
                    }
                }
            }
        };
        let response = String::from_utf8_lossy(&response).into_owned();
        let (authz, authc, password) = match decode_plain(&response) {
            Ok(parts) => parts,
            Err(e) => {
                self.bad(&format!("Cannot decode the response: {e}"))
                    .await?;
                return Ok(Next::Continue);
            }
        };
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(&authc) {
            self.bad("Authorization identity not allowed").await?;
            return Ok(Next::Continue);
        }
        let Some(account) = self
            .ctx
            .auth
            .verify(self.conn.peer.ip(), &authc, &password)
            .await
        else {
            self.errors += 1;
            self.no(None, "Authentication failed").await?;
            return Ok(Next::Continue);
        };
        let Some(slot) = self.ctx.limits.user(&account).await else {
            tracing::warn!(user = %account, client = %self.conn.peer, "too many sessions for this user");
            crate::metrics::counter(
                "tern_limits_hit_total",
                &[("limit", "max_sessions_per_user")],
            );
            self.no(Some("TRYLATER"), "Too many sessions for this user")
                .await?;
            return Ok(Next::Continue);
        };
        self.user_slot = Some(slot);
        self.user = Some(account);
        self.ok(None, "Logged in").await?;
        Ok(Next::Continue)
    }
}
