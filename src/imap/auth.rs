//! Logging in (LOGIN, AUTHENTICATE PLAIN with SASL-IR) and ENABLE
//! (CONDSTORE, IMAP4rev2). Before
//! TLS both are refused unless `tls.allow_plaintext_auth` (the session
//! announces LOGINDISABLED then); failures cost the delay `crate::auth`
//! imposes; replies never tell whether an account exists.

use super::session::{Outcome, Session};
use super::wire::Framed;
use crate::auth::decode_plain;
use base64::Engine;
use imap_codec::AuthenticateDataCodec;
use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use std::io;

impl Session {
    pub async fn login(&mut self, login: &str, password: &[u8]) -> io::Result<Outcome> {
        if self.user.is_some() {
            return Ok(Outcome::Bad("already logged in".into()));
        }
        if !self.plaintext_ok() {
            return Ok(Outcome::No(
                "[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS".into(),
            ));
        }
        let password = String::from_utf8_lossy(password).into_owned();
        self.finish_login(login, &password).await
    }

    async fn finish_login(&mut self, login: &str, password: &str) -> io::Result<Outcome> {
        match self
            .ctx
            .auth
            .verify(self.conn.peer.ip(), login, password)
            .await
        {
            Some(account) => {
                let Some(slot) = self.ctx.limits.user(&account).await else {
                    tracing::warn!(user = %account, client = %self.conn.peer, "too many sessions for this user");
                    crate::metrics::counter(
                        "tern_limits_hit_total",
                        &[("limit", "max_sessions_per_user")],
                    );
                    return Ok(Outcome::No(
                        "[LIMIT] too many sessions for this user".into(),
                    ));
                };
                // Other nodes' changes to the user's folders raise events
                // here from now on (a shared store; nothing with sled).
                match self.ctx.store.watch(&account).await {
                    Ok(watch) => self.watch = Some(watch),
                    Err(e) => {
                        tracing::error!(user = %account, "cannot read the user's folders: {e}");
                        return Ok(Outcome::No(
                            "[UNAVAILABLE] the mail store is unavailable, try again later".into(),
                        ));
                    }
                }
                self.user_slot = Some(slot);
                tracing::info!(user = %account, client = %self.conn.peer, "imap login");
                self.user = Some(account);
                Ok(Outcome::Ok(format!(
                    "[CAPABILITY {}] logged in",
                    self.capabilities()
                )))
            }
            None => Ok(Outcome::No(
                "[AUTHENTICATIONFAILED] authentication failed".into(),
            )),
        }
    }

    pub async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> io::Result<Outcome> {
        if self.user.is_some() {
            return Ok(Outcome::Bad("already logged in".into()));
        }
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            return Ok(Outcome::No(
                "[CANNOT] only AUTHENTICATE PLAIN is supported".into(),
            ));
        }
        if !self.plaintext_ok() {
            return Ok(Outcome::No(
                "[PRIVACYREQUIRED] authentication is disabled before STARTTLS".into(),
            ));
        }
        let response = match initial {
            Some(r) => r,
            None => {
                self.conn.write_all(b"+ \r\n").await?;
                match self
                    .reader
                    .read(&mut self.conn, self.ctx.config.limits.command_timeout.0)
                    .await?
                {
                    Framed::Complete => {}
                    Framed::Eof | Framed::TimedOut => {
                        return Ok(Outcome::No("authentication abandoned".into()));
                    }
                }
                match self
                    .reader
                    .frag
                    .decode_message(&AuthenticateDataCodec::default())
                {
                    Ok(AuthenticateData::Continue(data)) => data.declassify().to_vec(),
                    Ok(AuthenticateData::Cancel) => {
                        return Ok(Outcome::Bad("authentication cancelled".into()));
                    }
                    Err(_) => return Ok(Outcome::Bad("malformed authentication response".into())),
                }
            }
        };
        let _ = tag;
        // The codec already decoded the base64; PLAIN's parser wants it encoded.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&response);
        match decode_plain(&b64) {
            Ok((authz, authc, pass)) if authz.is_empty() || authz.eq_ignore_ascii_case(&authc) => {
                self.finish_login(&authc, &pass).await
            }
            Ok(_) => Ok(Outcome::No(
                "[AUTHORIZATIONFAILED] authorization identity not allowed".into(),
            )),
            Err(e) => Ok(Outcome::Bad(format!(
                "cannot decode the PLAIN response: {e}"
            ))),
        }
    }

    pub async fn enable(
        &mut self,
        capabilities: Vec<CapabilityEnable<'static>>,
    ) -> io::Result<Outcome> {
        let mut enabled = Vec::new();
        for c in capabilities {
            if matches!(c, CapabilityEnable::CondStore) && !self.condstore {
                self.condstore = true;
                enabled.push("CONDSTORE");
            } else if c.to_string().eq_ignore_ascii_case("QRESYNC") {
                // RFC 7162 3.2.3: QRESYNC implies CONDSTORE; expunges are
                // reported as VANISHED from now on.
                if !self.qresync {
                    self.qresync = true;
                    self.condstore = true;
                    if let Some(view) = self.view.as_mut() {
                        view.vanished = true;
                    }
                    enabled.push("QRESYNC");
                }
            } else if c.to_string().eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                // RFC 9051: from now on the session speaks IMAP4rev2.
                self.rev2 = true;
                if let Some(view) = self.view.as_mut() {
                    view.show_recent = false;
                }
                enabled.push("IMAP4rev2");
            }
        }
        let line = if enabled.is_empty() {
            "* ENABLED\r\n".to_string()
        } else {
            format!("* ENABLED {}\r\n", enabled.join(" "))
        };
        self.conn.write_buffered(line.as_bytes()).await?;
        Ok(Outcome::Ok("ENABLE completed".into()))
    }
}
