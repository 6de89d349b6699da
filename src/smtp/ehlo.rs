//! EHLO, HELO and LHLO: greeting the client and announcing extensions.
//! STARTTLS is offered only before TLS, REQUIRETLS (RFC 8689) only after
//! it, AUTH only where it may be used (after TLS, unless
//! `tls.allow_plaintext_auth`).

use super::session::Session;
use crate::config::Protocol;
use crate::hooks::Verdict;
use crate::mail::Reply;
use std::io;

impl Session {
    pub(super) async fn ehlo(&mut self, name: String, extended: bool) -> io::Result<()> {
        if name.trim().is_empty() {
            return self
                .error(Reply::new(501, "5.5.4", "Syntax: EHLO hostname"))
                .await;
        }
        if self.protocol == Protocol::Lmtp && !extended {
            return self
                .error(Reply::new(500, "5.5.1", "Error: LMTP needs LHLO"))
                .await;
        }
        self.info.trace.set_helo(&name);
        match self.ctx.hooks.helo(&self.info, &name).await {
            Verdict::Reject(r) | Verdict::Tempfail(r) => return self.refuse(r).await,
            Verdict::Disconnect(r) => {
                self.closing = true;
                return self.send(r).await;
            }
            Verdict::Continue | Verdict::Accept => {}
        }
        self.tx = None;
        self.esmtp = extended;
        self.info.helo = Some(name.clone());
        let host = self.ctx.config.hostname.clone();
        if !extended {
            return self.send(Reply::bare(250, vec![host])).await;
        }
        let mut lines = vec![format!("{host} Hello {name}")];
        lines.push(format!(
            "SIZE {}",
            self.ctx.config.limits.max_message_size.0
        ));
        lines.push("PIPELINING".into());
        lines.push("8BITMIME".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push("SMTPUTF8".into());
        lines.push("CHUNKING".into());
        lines.push("DSN".into());
        if !self.conn.is_tls() {
            lines.push("STARTTLS".into());
        } else if self.protocol != Protocol::Lmtp {
            // RFC 8689: only over TLS, on the MX and submission listeners.
            lines.push("REQUIRETLS".into());
        }
        if self.auth_allowed() && self.protocol != Protocol::Lmtp {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("HELP".into());
        self.send(Reply::bare(250, lines)).await
    }

    /// AUTH may run here: after TLS, or in plain text when configured.
    pub(super) fn auth_allowed(&self) -> bool {
        self.conn.is_tls() || self.ctx.config.tls.allow_plaintext_auth
    }
}
