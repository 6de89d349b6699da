//! One SMTP (or LMTP) session: its state, the command loop, and dispatch to
//! the file that handles each phase (`ehlo.rs`, `auth.rs`, `envelope.rs`,
//! `data.rs`). Replies are batched while pipelined input is waiting and
//! flushed when the client has nothing more queued (RFC 2920).

use super::command::{Command, ForwardPath, parse_command};
use crate::address::{Address, ReversePath};
use crate::config::Protocol;
use crate::context::ServerContext;
use crate::hooks::{SessionInfo, Verdict};
use crate::mail::Reply;
use crate::mail::Target;
use crate::mail::{MailParams, RcptParams};
use crate::net::{Connection, Line};
use crate::shutdown::Shutdown;
use crate::trace::{Event, Stage};
use std::io;
use std::sync::Arc;

/// Longest command line accepted (RFC 5321 says 512; extensions need more).
pub(super) const MAX_COMMAND_LINE: usize = 4096;

/// A recipient accepted at RCPT.
pub(super) struct Recipient {
    pub address: Address,
    pub params: RcptParams,
    pub targets: Vec<Target>,
}

/// The mail transaction between MAIL and the end of data.
pub(super) struct Transaction {
    pub from: ReversePath,
    pub params: MailParams,
    pub rcpts: Vec<Recipient>,
    /// BDAT chunks in progress.
    pub bdat: Option<super::data::BdatState>,
}

impl Transaction {
    /// The envelope as the hooks see it.
    pub fn envelope(&self) -> crate::hooks::Envelope<'_> {
        crate::hooks::Envelope {
            from: &self.from,
            params: &self.params,
            recipients: self
                .rcpts
                .iter()
                .map(|r| crate::hooks::EnvelopeRecipient {
                    address: r.address.to_string(),
                    params: &r.params,
                })
                .collect(),
        }
    }
}

pub(super) struct Session {
    pub conn: Connection,
    pub ctx: Arc<ServerContext>,
    pub protocol: Protocol,
    pub info: SessionInfo,
    pub esmtp: bool,
    pub tx: Option<Transaction>,
    shutdown: Shutdown,
    errors: u32,
    commands: u32,
    /// Bytes of DATA/BDAT received since the last free-space check.
    pub data_since_space_check: usize,
    pub closing: bool,
    /// The logged-in user's place in `limits.max_sessions_per_user`.
    pub user_slot: Option<crate::limits::UserSlot>,
    /// The stage of the command being handled, for the trace of a refusal.
    pub stage: Stage,
}

/// Runs a session to its end.
pub async fn run(
    conn: Connection,
    ctx: Arc<ServerContext>,
    protocol: Protocol,
    shutdown: Shutdown,
) {
    let trusted = ctx.config.is_trusted(conn.peer.ip());
    let info = SessionInfo {
        client: conn.peer,
        local: conn.local,
        protocol,
        helo: None,
        tls: conn.tls_info(),
        user: None,
        trusted,
        plugins: ctx.hooks.session(),
        trace: crate::trace::Recorder::new(conn.peer.ip()),
    };
    let mut session = Session {
        conn,
        ctx,
        protocol,
        info,
        esmtp: false,
        tx: None,
        shutdown,
        errors: 0,
        commands: 0,
        data_since_space_check: 0,
        closing: false,
        user_slot: None,
        stage: Stage::Connect,
    };
    if let Err(e) = session.serve().await {
        tracing::debug!(client = %session.info.client, "session ended: {e}");
    }
    session.keep_refused().await;
    session.conn.shutdown().await;
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        let hostname = self.ctx.config.hostname.clone();
        match self.ctx.hooks.connect(&self.info).await {
            Verdict::Reject(r) | Verdict::Disconnect(r) | Verdict::Tempfail(r) => {
                let code = if r.is_transient() { 421 } else { 554 };
                let enhanced = r.enhanced.clone().unwrap_or_else(|| "5.7.1".into());
                let reply = Reply::new(code, &enhanced, r.text().to_string());
                tracing::info!(client = %self.info.client, reply = %reply, "connection refused");
                return self.conn.write_all(&reply.to_wire()).await;
            }
            Verdict::Continue | Verdict::Accept => {}
        }
        let banner = if self.protocol == Protocol::Lmtp {
            "LMTP"
        } else {
            "ESMTP"
        };
        self.send(Reply::bare(220, vec![format!("{hostname} {banner} Tern")]))
            .await?;
        let timeout = self.ctx.config.limits.command_timeout.0;
        while !self.closing {
            if self.conn.buffered().is_empty() {
                self.conn.flush().await?;
            }
            let idle = self.tx.is_none();
            let line = tokio::select! {
                r = tokio::time::timeout(timeout, self.conn.read_line(MAX_COMMAND_LINE)) => r,
                _ = self.shutdown.recv(), if idle => {
                    let r = Reply::new(421, "4.3.2", format!("{hostname} Service shutting down, closing transmission channel"));
                    return self.conn.write_all(&r.to_wire()).await;
                }
            };
            let line = match line {
                Err(_) => return self.timed_out().await,
                Ok(line) => line?,
            };
            match line {
                Line::Eof => return Ok(()),
                Line::TooLong => {
                    self.error(Reply::new(500, "5.5.2", "Error: line too long"))
                        .await?
                }
                Line::Complete(bytes) => self.command(&bytes).await?,
            }
        }
        self.conn.flush().await
    }

    /// The client said nothing for `limits.command_timeout`: 421 and close.
    pub async fn timed_out(&mut self) -> io::Result<()> {
        tracing::info!(client = %self.info.client, "idle timeout");
        let host = self.ctx.config.hostname.clone();
        self.closing = true;
        self.tx = None;
        let r = Reply::new(421, "4.4.2", format!("{host} Error: timeout exceeded"));
        self.trace_closing("idle timeout", &r);
        self.conn.write_all(&r.to_wire()).await
    }

    /// Queues a reply; it is flushed before the next read would wait.
    pub async fn send(&mut self, reply: Reply) -> io::Result<()> {
        self.conn.write_buffered(&reply.to_wire()).await
    }

    /// A protocol error (order, syntax): reply, count it, and give up
    /// after too many. Traced as the protocol's refusal.
    pub async fn error(&mut self, reply: Reply) -> io::Result<()> {
        self.error_by("protocol", reply).await
    }

    /// A refused command counted like a protocol error, traced as decided
    /// by `by` (the built-in check that refused it).
    pub async fn error_by(&mut self, by: &str, reply: Reply) -> io::Result<()> {
        self.errors += 1;
        tracing::info!(client = %self.info.client, reply = %reply, "command refused");
        self.trace_refusal(self.stage, by, &reply);
        self.send(reply).await?;
        if self.errors >= self.ctx.config.limits.max_errors {
            let host = self.ctx.config.hostname.clone();
            let r = Reply::new(421, "4.7.0", format!("{host} Error: too many errors"));
            self.trace_closing("error limit", &r);
            self.send(r).await?;
            self.closing = true;
        }
        Ok(())
    }

    /// A transaction starts: the refused one before it, if any, is kept.
    pub(super) async fn begin_trace(&self, from: &ReversePath) {
        let sender = match from {
            ReversePath::Null => String::new(),
            other => other.to_string(),
        };
        if let Some(t) = self.info.trace.begin(&sender) {
            crate::trace::keep_refused(&self.ctx.store, t).await;
        }
    }

    /// The transaction or session ended: a refusal in it is kept.
    pub(super) async fn keep_refused(&self) {
        if let Some(t) = self.info.trace.refused() {
            crate::trace::keep_refused(&self.ctx.store, t).await;
        }
    }

    /// Records a refusal decided by the session itself (limits, storage,
    /// protocol errors).
    pub(super) fn trace_refusal(&self, stage: Stage, by: &str, reply: &Reply) {
        self.info.trace.record(Event::refusal(stage, by, reply));
    }

    /// Records the session closing on the server's own account (a limit,
    /// the idle timeout) with the 421 it says.
    fn trace_closing(&self, by: &str, reply: &Reply) {
        let e = Event::new(self.stage, by, "disconnect").reply(reply);
        self.info.trace.record(e);
    }

    /// Sends a refusal from a check or hook: counted like an error only for 5xx.
    pub async fn refuse(&mut self, reply: Reply) -> io::Result<()> {
        crate::metrics::refused(refusal_reason(&reply));
        self.send(reply).await
    }

    fn smtputf8(&self) -> bool {
        self.tx.as_ref().map(|t| t.params.smtputf8).unwrap_or(false)
    }

    async fn command(&mut self, line: &[u8]) -> io::Result<()> {
        self.commands += 1;
        self.stage = self.state_stage();
        if self.commands > self.ctx.config.limits.max_commands_per_session {
            tracing::warn!(client = %self.info.client, "too many commands in one session");
            crate::metrics::counter(
                "tern_limits_hit_total",
                &[("limit", "max_commands_per_session")],
            );
            let host = self.ctx.config.hostname.clone();
            self.closing = true;
            self.tx = None;
            let r = Reply::new(421, "4.7.0", format!("{host} Error: too many commands"));
            self.trace_closing("command limit", &r);
            return self.send(r).await;
        }
        let cmd = match parse_command(line, self.smtputf8()) {
            Ok(c) => c,
            Err(e) => return self.error(e.reply()).await,
        };
        self.stage = command_stage(&cmd).unwrap_or(self.stage);
        match cmd {
            Command::Ehlo(name) => self.ehlo(name, true).await,
            Command::Helo(name) => self.ehlo(name, false).await,
            Command::StartTls => self.starttls().await,
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(&mechanism, initial_response).await,
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, params } => {
                let to = match to {
                    ForwardPath::Mailbox(a) => a,
                    ForwardPath::Postmaster => {
                        let domain = self
                            .ctx
                            .config
                            .local_domains
                            .first()
                            .cloned()
                            .unwrap_or_else(|| self.ctx.config.hostname.clone());
                        Address::new_unchecked("postmaster", &domain)
                    }
                };
                self.rcpt(to, params).await
            }
            Command::Data => self.data().await,
            Command::Bdat { size, last } => self.bdat(size, last).await,
            Command::Rset => {
                self.tx = None;
                self.keep_refused().await;
                self.send(Reply::new(250, "2.0.0", "Ok")).await
            }
            Command::Noop => self.send(Reply::new(250, "2.0.0", "Ok")).await,
            Command::Quit => {
                self.closing = true;
                let host = self.ctx.config.hostname.clone();
                self.send(Reply::new(221, "2.0.0", format!("{host} Bye")))
                    .await
            }
            Command::Vrfy(_) => {
                self.send(Reply::new(
                    252,
                    "2.5.0",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                ))
                .await
            }
            Command::Expn(_) => {
                self.error(Reply::new(502, "5.5.1", "EXPN is not available"))
                    .await
            }
            Command::Help(_) => {
                let mut r = Reply::new(
                    214,
                    "2.0.0",
                    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
                );
                r.lines.push("See RFC 5321".into());
                self.send(r).await
            }
        }
    }

    /// Starts TLS; everything the client pipelined before is thrown away
    /// and the session starts again from EHLO (RFC 3207).
    async fn starttls(&mut self) -> io::Result<()> {
        if self.conn.is_tls() {
            return self
                .error(Reply::new(503, "5.5.1", "Error: TLS already active"))
                .await;
        }
        if self.protocol == Protocol::Lmtp && !self.esmtp {
            return self
                .error(Reply::new(503, "5.5.1", "Error: send LHLO first"))
                .await;
        }
        self.send(Reply::new(220, "2.0.0", "Ready to start TLS"))
            .await?;
        self.conn.flush().await?;
        if let Err(e) = self.conn.start_tls(&self.ctx.tls).await {
            tracing::info!(client = %self.info.client, "STARTTLS handshake failed: {e}");
            self.closing = true;
            return Ok(());
        }
        self.info.tls = self.conn.tls_info();
        self.info.helo = None;
        self.esmtp = false;
        self.tx = None;
        Ok(())
    }

    /// Where the session stands, for a command that names no stage of its
    /// own (RSET, NOOP, an unparsable line).
    fn state_stage(&self) -> Stage {
        match &self.tx {
            _ if self.info.helo.is_none() => Stage::Connect,
            None => Stage::Helo,
            Some(tx) if tx.rcpts.is_empty() => Stage::Mail,
            Some(_) => Stage::Rcpt,
        }
    }

    /// Is the client allowed to start a mail transaction here?
    pub fn needs_auth(&self) -> bool {
        matches!(self.protocol, Protocol::Submission | Protocol::Submissions)
            && self.info.user.is_none()
    }
}

/// The stage a command belongs to (None: it has none of its own).
fn command_stage(cmd: &Command) -> Option<Stage> {
    match cmd {
        Command::Ehlo(_) | Command::Helo(_) | Command::StartTls | Command::Auth { .. } => {
            Some(Stage::Helo)
        }
        Command::Mail { .. } => Some(Stage::Mail),
        Command::Rcpt { .. } => Some(Stage::Rcpt),
        Command::Data | Command::Bdat { .. } => Some(Stage::Data),
        _ => None,
    }
}

/// The `reason` label of a refusal in `tern_messages_refused_total`, from
/// its enhanced status code.
pub(super) fn refusal_reason(reply: &Reply) -> &'static str {
    let enhanced = reply.enhanced.as_deref().unwrap_or("");
    let detail = enhanced.get(2..).unwrap_or("");
    match detail {
        "1.1" => "unknown_recipient",
        "3.1" => "no_space",
        "3.4" => "size",
        "6.0" => "mime_parts",
        "5.3" => "too_many_recipients",
        "3.0" => "storage",
        d if d.starts_with("1.") => "bad_address",
        d if d.starts_with("7.") => "policy",
        d if d.starts_with("4.") => "dns",
        _ => "other",
    }
}
