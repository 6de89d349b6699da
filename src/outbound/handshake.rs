//! Opening a session with one next hop: connect (each address in turn),
//! TLS on connect when the demand is implicit, the greeting, EHLO with HELO
//! fallback, STARTTLS as the hop's `TlsDemand` asks — the certificate is
//! checked right after the handshake, before anything is said over the
//! connection — EHLO again, and AUTH PLAIN only over TLS that verified.
//! A demand that cannot be met ends the attempt with a temporary error
//! that says why; nothing of the message has been sent.

use super::client::{AttemptError, ClientConfig, ClientSession, Extensions, HopSecurity};
use super::mx::NextHop;
use super::tls::{CertFailure, TlsDemand};
use super::wire::Wire;
use tokio::net::TcpStream;

impl ClientSession {
    /// Connects and greets; TLS and AUTH as `security` demands.
    pub async fn open(
        hop: &NextHop,
        cfg: &ClientConfig,
        security: &HopSecurity,
    ) -> Result<ClientSession, AttemptError> {
        let (stream, addr) = connect(hop, cfg).await?;
        let remote = format!("{}[{}]:{}", hop.host, addr.ip(), addr.port());
        let mut wire = Wire::new(Box::new(stream));
        let io = |e| AttemptError::Io(remote.clone(), e);
        let mut secured = None;
        // A failure the policy only reports (MTA-STS testing), for TLS-RPT.
        let mut problem = None;
        if let TlsDemand::Require { implicit: true, .. } = security.tls {
            secured = Some(secure(&mut wire, hop, cfg, security, &remote).await?);
        }
        let greeting = wire.reply(cfg.timeouts.greeting).await.map_err(io)?;
        if !greeting.is_positive() {
            wire.shutdown().await;
            return Err(AttemptError::Greeting(remote, greeting));
        }
        let mut ext = ehlo(&mut wire, &remote, cfg).await?;
        if secured.is_none() && !matches!(security.tls, TlsDemand::Plain) {
            if ext.starttls && cfg.tls.is_some() {
                wire.send(b"STARTTLS\r\n").await.map_err(io)?;
                let r = wire.reply(cfg.timeouts.mail).await.map_err(io)?;
                if r.is_positive() {
                    secured = Some(secure(&mut wire, hop, cfg, security, &remote).await?);
                    ext = ehlo(&mut wire, &remote, cfg).await?;
                } else if security.tls.required() {
                    return Err(refuse(
                        wire,
                        remote,
                        security,
                        format!("STARTTLS was refused: {r}"),
                    )
                    .await);
                } else {
                    tracing::info!(remote, reply = %r, "STARTTLS refused; continuing in plain text");
                }
            } else if security.tls.required() {
                let why = "the server does not offer STARTTLS".to_string();
                return Err(refuse(wire, remote, security, why).await);
            } else if security.tls.verifier().is_some() {
                tracing::warn!(remote, policy = %security.policy, "the server does not offer STARTTLS; delivering in plain text (the policy only reports)");
                problem = Some(CertFailure::new(
                    "starttls-not-supported",
                    "the server does not offer STARTTLS".into(),
                ));
            }
        }
        let (tls, verified) = match secured {
            Some((version, verified, reported)) => {
                problem = problem.or(reported);
                (Some(version), verified)
            }
            None => (None, false),
        };
        if let Some((user, pass)) = &security.auth {
            if !verified {
                // The demands that carry credentials all require verified
                // TLS, so this is a safety net, never a fallback.
                wire.shutdown().await;
                return Err(AttemptError::Untrusted(
                    remote,
                    security.policy.clone(),
                    CertFailure::new(
                        "certificate-not-trusted",
                        "the connection is not verified TLS; credentials withheld".into(),
                    ),
                ));
            }
            if ext.auth_plain {
                let token = crate::auth::encode_b64(&format!("\0{user}\0{pass}"));
                wire.send(format!("AUTH PLAIN {token}\r\n").as_bytes())
                    .await
                    .map_err(io)?;
                let r = wire.reply(cfg.timeouts.mail).await.map_err(io)?;
                if !r.is_positive() {
                    return Err(AttemptError::Auth(remote, r));
                }
            } else {
                tracing::warn!(
                    remote,
                    "smarthost credentials not sent: the server offers no AUTH PLAIN"
                );
            }
        }
        Ok(ClientSession {
            wire,
            ext,
            remote,
            tls,
            verified,
            tls_problem: problem,
        })
    }
}

/// Says goodbye and explains why TLS as required could not be had.
async fn refuse(
    mut wire: Wire,
    remote: String,
    security: &HopSecurity,
    why: String,
) -> AttemptError {
    tracing::warn!(remote, policy = %security.policy, "{why}; nothing sent, delivery deferred");
    let _ = wire.send(b"QUIT\r\n").await;
    wire.shutdown().await;
    AttemptError::TlsRequired(remote, security.policy.clone(), why)
}

/// The TLS handshake and the certificate check the demand asks for:
/// (protocol version, verified).
async fn secure(
    wire: &mut Wire,
    hop: &NextHop,
    cfg: &ClientConfig,
    security: &HopSecurity,
    remote: &str,
) -> Result<(String, bool, Option<CertFailure>), AttemptError> {
    let tls_error = |e: String| AttemptError::Tls(remote.to_string(), e);
    let config = cfg
        .tls
        .clone()
        .ok_or_else(|| tls_error("no TLS client configuration".into()))?;
    let (version, chain) = wire
        .start_tls(config, &hop.host)
        .await
        .map_err(|e| tls_error(e.to_string()))?;
    let Some(verifier) = security.tls.verifier() else {
        tracing::debug!(
            remote,
            "TLS {version} (certificate not verified: opportunistic)"
        );
        return Ok((version, false, None));
    };
    match verifier.verify(&chain, &hop.host) {
        Ok(()) => {
            tracing::debug!(remote, policy = %security.policy, "TLS {version}, certificate verified");
            Ok((version, true, None))
        }
        Err(why) if security.tls.required() => {
            tracing::warn!(remote, policy = %security.policy, "TLS certificate not trusted: {why}; nothing sent, delivery deferred");
            wire.shutdown().await;
            Err(AttemptError::Untrusted(
                remote.to_string(),
                security.policy.clone(),
                why,
            ))
        }
        Err(why) => {
            tracing::warn!(remote, policy = %security.policy, "TLS certificate not trusted: {why}; delivering anyway (the policy only reports)");
            Ok((version, false, Some(why)))
        }
    }
}

async fn connect(
    hop: &NextHop,
    cfg: &ClientConfig,
) -> Result<(TcpStream, std::net::SocketAddr), AttemptError> {
    let mut last = String::from("no addresses");
    for addr in &hop.addrs {
        match tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, *addr));
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: timed out"),
        }
    }
    Err(AttemptError::Connect(hop.host.clone(), last))
}

async fn ehlo(
    wire: &mut Wire,
    remote: &str,
    cfg: &ClientConfig,
) -> Result<Extensions, AttemptError> {
    let io = |e| AttemptError::Io(remote.to_string(), e);
    wire.send(format!("EHLO {}\r\n", cfg.helo_name).as_bytes())
        .await
        .map_err(io)?;
    let r = wire.reply(cfg.timeouts.mail).await.map_err(io)?;
    if r.is_positive() {
        return Ok(Extensions::from_reply(&r));
    }
    wire.send(format!("HELO {}\r\n", cfg.helo_name).as_bytes())
        .await
        .map_err(io)?;
    let r = wire.reply(cfg.timeouts.mail).await.map_err(io)?;
    if r.is_positive() {
        return Ok(Extensions::default());
    }
    Err(AttemptError::Helo(remote.to_string(), r))
}
