//! The SMTP client (RFC 5321) for one next hop: a session opened by
//! `handshake.rs` (connect, EHLO, TLS as the hop's `HopSecurity` demands,
//! AUTH) carries transactions with PIPELINING when offered, SIZE,
//! 8BITMIME, SMTPUTF8 and DSN parameters as the peer allows, and a result
//! per recipient. The body is streamed with dot-stuffing, and every bare CR
//! or LF goes out as CRLF: Tern never sends a smuggling line end onward.

use super::dot_stuffing::BodyEncoder;
use super::mx::NextHop;
pub use super::tls::{ClientSetupError, TlsDemand, opportunistic_tls_config};
pub use super::wire::ReplyInfo;
use super::wire::Wire;
use crate::mail::xtext::xtext_encode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use super::timeouts::Timeouts;

#[derive(Clone)]
pub struct ClientConfig {
    pub helo_name: String,
    /// The handshake configuration (see `tls.rs`); None: never TLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub connect_timeout: Duration,
    pub timeouts: Timeouts,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            helo_name: "localhost".into(),
            tls: None,
            connect_timeout: Duration::from_secs(30),
            timeouts: Timeouts::default(),
        }
    }
}

pub struct OutboundRecipient {
    pub address: String,
    /// DSN NOTIFY value, e.g. "SUCCESS,FAILURE".
    pub notify: Option<String>,
    /// DSN ORCPT as "type;address" (not yet xtext-encoded).
    pub orcpt: Option<String>,
}

pub struct OutboundEnvelope {
    /// Empty for the null sender.
    pub mail_from: String,
    pub recipients: Vec<OutboundRecipient>,
    pub size: u64,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub ret: Option<String>,
    pub envid: Option<String>,
    /// REQUIRETLS (RFC 8689): only to a verified hop that supports it, and
    /// passed on in MAIL FROM.
    pub require_tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientResult {
    Accepted(ReplyInfo),
    Temporary(ReplyInfo),
    Permanent(ReplyInfo),
}

impl RecipientResult {
    fn from_reply(r: ReplyInfo) -> RecipientResult {
        if r.is_positive() {
            RecipientResult::Accepted(r)
        } else if r.is_transient() {
            RecipientResult::Temporary(r)
        } else {
            RecipientResult::Permanent(r)
        }
    }
}

#[derive(Debug)]
pub struct DeliveryReport {
    /// One per recipient, in the envelope's order.
    pub results: Vec<RecipientResult>,
    /// "host[ip]:port" that answered.
    pub remote: String,
    pub tls: Option<String>,
    /// The certificate was verified for the hop's name.
    pub verified: bool,
    /// What a reporting-only policy found wrong with the TLS (TLS-RPT).
    pub tls_problem: Option<super::tls::CertFailure>,
    /// The peer took DSN parameters (it reports success itself).
    pub dsn: bool,
}

/// What a delivery to one hop demands: its TLS, and the credentials
/// (the smarthost's) that may be sent once TLS is verified — never otherwise.
#[derive(Clone, Debug)]
pub struct HopSecurity {
    pub tls: TlsDemand,
    pub auth: Option<(String, String)>,
    /// The policy in words, for logs and `tern queue show`
    /// ("smarthost starttls", "MTA-STS enforce", "opportunistic").
    pub policy: String,
}

impl HopSecurity {
    pub fn opportunistic() -> HopSecurity {
        HopSecurity {
            tls: TlsDemand::Opportunistic,
            auth: None,
            policy: "opportunistic".into(),
        }
    }
}

/// A failure of the whole attempt before any recipient got its own answer.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("connect to {0} failed: {1}")]
    Connect(String, String),
    #[error("{0} greeted with: {1}")]
    Greeting(String, ReplyInfo),
    #[error("{0} refused EHLO/HELO: {1}")]
    Helo(String, ReplyInfo),
    #[error("{0}: TLS failed: {1}")]
    Tls(String, String),
    /// (remote, policy, what happened)
    #[error("{0}: TLS required ({1}) but {2}")]
    TlsRequired(String, String, String),
    /// (remote, policy, why the certificate failed)
    #[error("{0}: certificate not trusted ({1}): {2}")]
    Untrusted(String, String, super::tls::CertFailure),
    #[error("{0}: AUTH failed: {1}")]
    Auth(String, ReplyInfo),
    #[error("{0}: MAIL FROM refused: {1}")]
    MailFrom(String, ReplyInfo),
    #[error("{0}: message size {1} exceeds the limit of {2}")]
    TooBig(String, u64, u64),
    #[error("{0} does not support SMTPUTF8, which the message needs")]
    NeedsSmtputf8(String),
    /// (remote, why): the message asked for REQUIRETLS and this hop cannot honour it.
    #[error("{0}: REQUIRETLS cannot be honoured: {1}")]
    RequireTls(String, String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

impl AttemptError {
    /// Permanent for every recipient of the attempt (no other hop would do better).
    pub fn is_permanent(&self) -> bool {
        match self {
            AttemptError::MailFrom(_, r) => r.is_permanent(),
            AttemptError::TooBig(..) | AttemptError::NeedsSmtputf8(_) => true,
            _ => false,
        }
    }

    /// For a TLS failure (else None): its RFC 8460 result type and the
    /// "host[ip]:port" it happened with.
    pub fn tls_result(&self) -> Option<(&'static str, &str)> {
        match self {
            AttemptError::Untrusted(remote, _, failure) => Some((failure.result_type, remote)),
            AttemptError::TlsRequired(remote, ..) => Some(("starttls-not-supported", remote)),
            AttemptError::Tls(remote, _) | AttemptError::RequireTls(remote, _) => {
                Some(("validation-failure", remote))
            }
            _ => None,
        }
    }

    /// A failure of TLS as the hop's policy (or REQUIRETLS) demands it.
    pub fn is_tls_failure(&self) -> bool {
        matches!(
            self,
            AttemptError::Tls(..)
                | AttemptError::TlsRequired(..)
                | AttemptError::Untrusted(..)
                | AttemptError::RequireTls(..)
        )
    }

    pub fn enhanced(&self) -> Option<&str> {
        match self {
            AttemptError::MailFrom(_, r) => r.enhanced.as_deref().or(Some("5.0.0")),
            AttemptError::TooBig(..) => Some("5.3.4"),
            AttemptError::NeedsSmtputf8(_) => Some("5.6.7"),
            AttemptError::RequireTls(..) => Some("5.7.30"),
            AttemptError::Connect(..) | AttemptError::Io(..) => Some("4.4.1"),
            AttemptError::Greeting(..) | AttemptError::Helo(..) => Some("4.4.0"),
            AttemptError::Tls(..) | AttemptError::Untrusted(..) => Some("4.7.5"),
            AttemptError::TlsRequired(..) => Some("4.7.10"),
            AttemptError::Auth(..) => Some("4.7.0"),
        }
    }
}

/// What the peer's EHLO said it supports.
#[derive(Debug, Default)]
pub(super) struct Extensions {
    pub(super) starttls: bool,
    pipelining: bool,
    size: Option<u64>,
    eightbitmime: bool,
    smtputf8: bool,
    dsn: bool,
    pub(super) auth_plain: bool,
    requiretls: bool,
}

impl Extensions {
    pub(super) fn from_reply(r: &ReplyInfo) -> Extensions {
        let mut e = Extensions::default();
        for line in r.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let kw = words.next().unwrap_or("").to_ascii_uppercase();
            match kw.as_str() {
                "STARTTLS" => e.starttls = true,
                "PIPELINING" => e.pipelining = true,
                "SIZE" => e.size = Some(words.next().and_then(|w| w.parse().ok()).unwrap_or(0)),
                "8BITMIME" => e.eightbitmime = true,
                "SMTPUTF8" => e.smtputf8 = true,
                "DSN" => e.dsn = true,
                "REQUIRETLS" => e.requiretls = true,
                "AUTH" => e.auth_plain = words.any(|w| w.eq_ignore_ascii_case("PLAIN")),
                _ => {}
            }
        }
        e
    }
}

/// An open SMTP session with one next hop, greeted, with TLS and AUTH done:
/// it can carry several transactions (connection reuse).
pub struct ClientSession {
    pub(super) wire: Wire,
    pub(super) ext: Extensions,
    pub(super) remote: String,
    pub(super) tls: Option<String>,
    /// The certificate was verified for the hop's name.
    pub(super) verified: bool,
    /// What a reporting-only policy found wrong (for TLS-RPT).
    pub(super) tls_problem: Option<super::tls::CertFailure>,
}

/// Delivers one message to one hop on a new connection.
pub async fn deliver(
    hop: &NextHop,
    cfg: &ClientConfig,
    security: &HopSecurity,
    env: &OutboundEnvelope,
    message: &mut (dyn AsyncRead + Unpin + Send),
) -> Result<DeliveryReport, AttemptError> {
    let mut session = ClientSession::open(hop, cfg, security).await?;
    let result = session.send(cfg, env, message).await;
    session.quit().await;
    result
}

impl ClientSession {
    /// "host[ip]:port" of the peer.
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Does the peer take DSN parameters (so it reports SUCCESS itself)?
    pub fn supports_dsn(&self) -> bool {
        self.ext.dsn
    }

    /// Ends the session politely.
    pub async fn quit(mut self) {
        let _ = self.wire.send(b"QUIT\r\n").await;
        let _ = self.wire.reply(Duration::from_secs(10)).await;
        self.wire.shutdown().await;
    }

    /// RSET between transactions; false if the session is no longer usable.
    pub async fn reset(&mut self, cfg: &ClientConfig) -> bool {
        if self.wire.send(b"RSET\r\n").await.is_err() {
            return false;
        }
        matches!(self.wire.reply(cfg.timeouts.mail).await, Ok(r) if r.is_positive())
    }

    /// One mail transaction on this session.
    pub async fn send(
        &mut self,
        cfg: &ClientConfig,
        env: &OutboundEnvelope,
        message: &mut (dyn AsyncRead + Unpin + Send),
    ) -> Result<DeliveryReport, AttemptError> {
        let remote = self.remote.clone();
        let tls = self.tls.clone();
        let verified = self.verified;
        let tls_problem = self.tls_problem.clone();
        let ext = &self.ext;
        let wire = &mut self.wire;
        let io = |e| AttemptError::Io(remote.clone(), e);
        if let Some(max) = ext.size
            && max > 0
            && env.size > max
        {
            return Err(AttemptError::TooBig(remote, env.size, max));
        }
        if env.smtputf8 && !ext.smtputf8 {
            return Err(AttemptError::NeedsSmtputf8(remote));
        }
        if env.require_tls && !self.verified {
            let why = "the connection is not TLS verified for the host's name".to_string();
            return Err(AttemptError::RequireTls(remote, why));
        }
        if env.require_tls && !ext.requiretls {
            let why = "the server does not announce REQUIRETLS".to_string();
            return Err(AttemptError::RequireTls(remote, why));
        }
        let mail = mail_command(ext, env);
        let rcpts: Vec<String> = env
            .recipients
            .iter()
            .map(|r| rcpt_command(ext, r))
            .collect();
        let t = &cfg.timeouts;
        let (mail_reply, rcpt_replies, data_reply) = if ext.pipelining {
            let mut batch = mail.clone().into_bytes();
            for r in &rcpts {
                batch.extend_from_slice(r.as_bytes());
            }
            batch.extend_from_slice(b"DATA\r\n");
            wire.send(&batch).await.map_err(io)?;
            let m = wire.reply(t.mail).await.map_err(io)?;
            // 421 closes the session: the replies to the rest of the batch
            // will never come, and this one says why.
            if m.code == 421 {
                return Err(AttemptError::MailFrom(remote.clone(), m));
            }
            let mut rr = Vec::new();
            for _ in &rcpts {
                match wire.reply(t.rcpt).await {
                    Ok(r) => rr.push(r),
                    Err(_) if !m.is_positive() => {
                        return Err(AttemptError::MailFrom(remote.clone(), m));
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            let d = wire.reply(t.data_init).await.map_err(io)?;
            (m, rr, Some(d))
        } else {
            wire.send(mail.as_bytes()).await.map_err(io)?;
            let m = wire.reply(t.mail).await.map_err(io)?;
            let mut rr = Vec::new();
            if m.is_positive() {
                for r in &rcpts {
                    wire.send(r.as_bytes()).await.map_err(io)?;
                    rr.push(wire.reply(t.rcpt).await.map_err(io)?);
                }
            }
            (m, rr, None)
        };
        let done = |results| {
            Ok(DeliveryReport {
                results,
                remote: remote.clone(),
                tls: tls.clone(),
                verified,
                tls_problem: tls_problem.clone(),
                dsn: ext.dsn,
            })
        };
        if !mail_reply.is_positive() {
            if data_reply.as_ref().is_some_and(|d| d.code == 354) {
                wire.send(b".\r\n").await.map_err(io)?;
                let _ = wire.reply(t.data_end).await;
            }
            return Err(AttemptError::MailFrom(remote.clone(), mail_reply));
        }
        let accepted: Vec<bool> = rcpt_replies.iter().map(|r| r.is_positive()).collect();
        let mut results: Vec<RecipientResult> = rcpt_replies
            .into_iter()
            .map(RecipientResult::from_reply)
            .collect();
        let any = accepted.iter().any(|a| *a);
        let data_reply = match data_reply {
            Some(d) => d,
            None if any => {
                wire.send(b"DATA\r\n").await.map_err(io)?;
                wire.reply(t.data_init).await.map_err(io)?
            }
            None => return done(results),
        };
        if data_reply.code != 354 {
            for (res, ok) in results.iter_mut().zip(&accepted) {
                if *ok {
                    *res = RecipientResult::from_reply(data_reply.clone());
                }
            }
            return done(results);
        }
        if !any {
            // The peer took DATA with no recipients: end it empty.
            wire.send(b".\r\n").await.map_err(io)?;
            let _ = wire.reply(t.data_end).await;
            return done(results);
        }
        send_body(wire, message, env.size, t.data_block)
            .await
            .map_err(io)?;
        let end = wire.reply(t.data_end).await.map_err(io)?;
        for (res, ok) in results.iter_mut().zip(&accepted) {
            if *ok {
                *res = RecipientResult::from_reply(end.clone());
            }
        }
        done(results)
    }
}

fn mail_command(ext: &Extensions, env: &OutboundEnvelope) -> String {
    let mut mail = format!("MAIL FROM:<{}>", env.mail_from);
    if ext.size.is_some() {
        mail.push_str(&format!(" SIZE={}", env.size));
    }
    if env.eight_bit && ext.eightbitmime {
        mail.push_str(" BODY=8BITMIME");
    }
    if env.smtputf8 {
        mail.push_str(" SMTPUTF8");
    }
    if env.require_tls {
        mail.push_str(" REQUIRETLS");
    }
    if ext.dsn {
        if let Some(ret) = &env.ret {
            mail.push_str(&format!(" RET={ret}"));
        }
        if let Some(envid) = &env.envid {
            mail.push_str(&format!(" ENVID={}", xtext_encode(envid)));
        }
    }
    mail.push_str("\r\n");
    mail
}

fn rcpt_command(ext: &Extensions, r: &OutboundRecipient) -> String {
    let mut line = format!("RCPT TO:<{}>", r.address);
    if ext.dsn {
        if let Some(n) = &r.notify {
            line.push_str(&format!(" NOTIFY={n}"));
        }
        if let Some((kind, addr)) = r.orcpt.as_deref().and_then(|o| o.split_once(';')) {
            line.push_str(&format!(" ORCPT={kind};{}", xtext_encode(addr)));
        }
    }
    line.push_str("\r\n");
    line
}

/// Streams the message: bare CR or LF become CRLF, leading dots are doubled,
/// and the end is `CRLF . CRLF`.
async fn send_body(
    wire: &mut Wire,
    message: &mut (dyn AsyncRead + Unpin + Send),
    size: u64,
    block: Duration,
) -> std::io::Result<()> {
    let mut enc = BodyEncoder::default();
    // No bigger than the message: zeroing 64 KiB for a 5 KB message was 8%
    // of the instructions per relayed message (callgrind, bench/README.md).
    let read_size = (size as usize).clamp(4 * 1024, 64 * 1024);
    let mut buf = vec![0u8; read_size];
    let mut out = Vec::with_capacity(read_size + read_size / 8);
    loop {
        let n = message.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        enc.feed(&buf[..n], &mut out);
        // Held back until a full read's worth is ready, so a small message
        // and its final dot leave in one write.
        if out.len() >= read_size {
            send_block(wire, &out, block).await?;
            out.clear();
        }
    }
    enc.finish(&mut out);
    send_block(wire, &out, block).await
}

/// One write of DATA content, within the data-block timeout.
async fn send_block(wire: &mut Wire, bytes: &[u8], block: Duration) -> std::io::Result<()> {
    tokio::time::timeout(block, wire.send(bytes))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out sending data"))?
}
