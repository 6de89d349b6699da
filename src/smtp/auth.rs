//! SMTP AUTH (RFC 4954) with PLAIN and LOGIN, only over TLS unless
//! `tls.allow_plaintext_auth`. Credentials are checked by `crate::auth`,
//! which also makes failures slow. A refusal is traced (by `auth`, or the
//! per-user session limit).

use super::session::Session;
use crate::auth::{decode_b64_text, decode_plain};
use crate::mail::Reply;
use crate::net::Line;
use std::io;

/// Longest SASL response line.
const MAX_SASL_LINE: usize = 12 * 1024;

impl Session {
    pub(super) async fn auth(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
    ) -> io::Result<()> {
        if !self.esmtp {
            return self
                .error(Reply::new(503, "5.5.1", "Error: send EHLO first"))
                .await;
        }
        if self.info.user.is_some() {
            return self
                .error(Reply::new(503, "5.5.1", "Error: already authenticated"))
                .await;
        }
        if self.tx.is_some() {
            return self
                .error(Reply::new(
                    503,
                    "5.5.1",
                    "Error: MAIL transaction in progress",
                ))
                .await;
        }
        if !self.auth_allowed() {
            return self
                .error_by(
                    "auth",
                    Reply::new(
                        538,
                        "5.7.11",
                        "Encryption required for requested authentication mechanism",
                    ),
                )
                .await;
        }
        let credentials = match mechanism {
            "PLAIN" => {
                let response = match initial {
                    Some(r) if r != "=" => r,
                    Some(_) => String::new(),
                    None => match self.challenge("").await? {
                        Some(r) => r,
                        None => return Ok(()),
                    },
                };
                match decode_plain(&response) {
                    Ok((authz, authc, pass))
                        if authz.is_empty() || authz.eq_ignore_ascii_case(&authc) =>
                    {
                        (authc, pass)
                    }
                    Ok(_) => {
                        return self
                            .error_by(
                                "auth",
                                Reply::new(535, "5.7.8", "Authentication credentials invalid"),
                            )
                            .await;
                    }
                    Err(e) => {
                        return self
                            .error(Reply::new(
                                501,
                                "5.5.2",
                                format!("Cannot decode response: {e}"),
                            ))
                            .await;
                    }
                }
            }
            "LOGIN" => {
                let user = match initial {
                    Some(r) => r,
                    None => match self.challenge("VXNlcm5hbWU6").await? {
                        Some(r) => r,
                        None => return Ok(()),
                    },
                };
                let Some(pass) = self.challenge("UGFzc3dvcmQ6").await? else {
                    return Ok(());
                };
                match (decode_b64_text(&user), decode_b64_text(&pass)) {
                    (Ok(u), Ok(p)) => (u, p),
                    _ => {
                        return self
                            .error(Reply::new(501, "5.5.2", "Cannot decode response"))
                            .await;
                    }
                }
            }
            _ => {
                return self
                    .error(Reply::new(504, "5.5.4", "Unrecognized authentication type"))
                    .await;
            }
        };
        let (login, password) = credentials;
        match self
            .ctx
            .auth
            .verify(self.info.client.ip(), &login, &password)
            .await
        {
            Some(user) => {
                let Some(slot) = self.ctx.limits.user(&user).await else {
                    tracing::warn!(user = %user, client = %self.info.client, "too many sessions for this user");
                    crate::metrics::counter(
                        "tern_limits_hit_total",
                        &[("limit", "max_sessions_per_user")],
                    );
                    let reply = Reply::new(
                        454,
                        "4.7.0",
                        "Too many sessions for this user, try again later",
                    );
                    let by = "limits.max_sessions_per_user";
                    self.trace_refusal(crate::trace::Stage::Helo, by, &reply);
                    return self.send(reply).await;
                };
                self.user_slot = Some(slot);
                self.info.user = Some(user);
                self.send(Reply::new(235, "2.7.0", "Authentication successful"))
                    .await
            }
            None => {
                self.error_by(
                    "auth",
                    Reply::new(535, "5.7.8", "Authentication credentials invalid"),
                )
                .await
            }
        }
    }

    /// Sends a 334 challenge and reads the answer; `None` when the client
    /// cancelled (a reply has been sent) or went away.
    async fn challenge(&mut self, text: &str) -> io::Result<Option<String>> {
        self.conn
            .write_all(format!("334 {text}\r\n").as_bytes())
            .await?;
        let timeout = self.ctx.config.limits.command_timeout.0;
        let Ok(line) = tokio::time::timeout(timeout, self.conn.read_line(MAX_SASL_LINE)).await
        else {
            self.timed_out().await?;
            return Ok(None);
        };
        match line? {
            Line::Complete(line) if line == b"*" => {
                self.error(Reply::new(501, "5.0.0", "Authentication cancelled"))
                    .await?;
                Ok(None)
            }
            Line::Complete(line) => Ok(Some(String::from_utf8_lossy(&line).into_owned())),
            Line::TooLong => {
                self.error(Reply::new(
                    500,
                    "5.5.6",
                    "Authentication exchange line is too long",
                ))
                .await?;
                Ok(None)
            }
            Line::Eof => {
                self.closing = true;
                Ok(None)
            }
        }
    }
}
