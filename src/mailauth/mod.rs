//! Message authentication on the way in (SPF, DKIM, DMARC, ARC, and the
//! `Authentication-Results` header of RFC 8601) and DKIM signing on the way
//! out, on the mail-auth crate. Nothing here parses a record by hand.
//!
//! - `resolver.rs`: mail-auth's own hickory resolver, built from `[dns]`.
//! - `spf.rs`, `dkim.rs`, `arc.rs`, `dmarc.rs`: one check each, mapped to
//!   the plain `AuthResults` the hooks and plugins see.
//! - `records.rs`: policy records published twice (SPF permerror, DMARC
//!   not applied), which mail-auth does not detect.
//! - `results.rs`: `AuthResults`, the header, and forged headers claiming
//!   our host name.
//! - `policy.rs`: `[auth]` (with forwarder overrides) turns results into a decision.
//! - `sign.rs`: `[[dkim]]` keys and signing; `keygen.rs`: `tern dkim generate`.
//! - `probe.rs`: our own SPF, iprev and DKIM records as receivers judge
//!   them, for `tern doctor`.

mod arc;
mod dkim;
mod dmarc;
pub mod keygen;
mod policy;
pub mod probe;
mod records;
mod resolver;
mod results;
mod sign;
mod spf;

pub use policy::{Decision, actions as policy_actions, decide};
pub use results::{
    AuthResults, DkimCheck, DmarcCheck, DmarcPolicy, Outcome, SpfCheck, forged_results,
};
pub use sign::{Signer, arc_seal_warning};

use crate::config::Config;
use mail_auth::{AuthenticatedMessage, MessageAuthenticator};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MailAuthError {
    #[error("DNS resolver for message authentication: {0}")]
    Resolver(String),
    #[error("DKIM key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("DKIM signing for {domain}: {message}")]
    Sign { domain: String, message: String },
    #[error("DKIM key generation: {0}")]
    Generate(String),
    #[error("DNS for message authentication: {0}")]
    Dns(#[from] crate::dns::DnsError),
}

/// What the receiving session knows about where a message came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub ip: IpAddr,
    /// The EHLO/HELO name ("unknown" when none was given).
    pub helo: &'a str,
    /// The MAIL FROM address; empty for the null reverse-path.
    pub mail_from: &'a str,
}

impl Origin<'_> {
    /// The domain SPF and DMARC take as the RFC5321.MailFrom domain (the
    /// HELO name for the null reverse-path).
    pub fn mail_from_domain(&self) -> &str {
        match self.mail_from.rsplit_once('@') {
            Some((_, d)) if !d.is_empty() => d,
            _ => self.helo,
        }
    }
}

/// The verifier and signer shared by all sessions.
pub struct MailAuth {
    authenticator: MessageAuthenticator,
    /// Tern's own resolver, for what mail-auth does not look at.
    dns: crate::dns::Dns,
    hostname: String,
    signer: Signer,
}

impl MailAuth {
    pub fn new(config: &Config) -> Result<MailAuth, MailAuthError> {
        if let Some(w) = arc_seal_warning(&config.dkim, config.auth.arc_seal.as_deref()) {
            tracing::warn!("{w}");
        }
        Ok(MailAuth {
            authenticator: resolver::authenticator(&config.dns)?,
            dns: crate::dns::Dns::new(config.dns.nameservers.as_deref(), config.dns.timeout.0)?,
            hostname: config.hostname.clone(),
            signer: Signer::load(&config.dkim, config.auth.arc_seal.as_deref())?,
        })
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The addresses of `rua` (as published by `domain`) that may receive
    /// its DMARC reports (RFC 7489 section 7.1): those within the domain,
    /// and those whose domain publishes `DOMAIN._report._dmarc.THEIRS`.
    pub async fn authorized_rua(
        &self,
        domain: &str,
        rua: &[String],
    ) -> Result<Vec<String>, MailAuthError> {
        self.authenticator
            .authorized_report_addresses((domain, rua))
            .await
            .map(|list| list.into_iter().cloned().collect())
            .map_err(|e| MailAuthError::Resolver(e.to_string()))
    }

    /// Runs every check on `message` (the whole message as received: header
    /// section and body). `spf` false skips SPF (`spf_fail = "off"`).
    /// `forwarding`: the message goes on to another domain, so it gets an
    /// ARC set when `[auth] arc_seal` is configured.
    pub async fn verify(
        &self,
        origin: &Origin<'_>,
        message: &[u8],
        spf: bool,
        forwarding: bool,
    ) -> AuthResults {
        let a = &self.authenticator;
        let host = self.hostname.as_str();
        let spf_results = if spf {
            Some(spf::check(a, &self.dns, origin, host).await)
        } else {
            None
        };
        let parsed = AuthenticatedMessage::parse(message);
        let Some(msg) = parsed.as_ref() else {
            // Not a parseable message: only SPF can say anything.
            return results::unparsed(host, origin, spf_results);
        };
        let dkim_out = a.verify_dkim(msg).await;
        let arc_out = arc::check(a, msg).await;
        let spf_for_dmarc = spf::for_dmarc(spf_results.as_ref(), origin);
        let dmarc_out = dmarc::check(a, &self.dns, msg, &dkim_out, origin, &spf_for_dmarc).await;
        let sealer = (forwarding && self.signer.seals()).then_some(&self.signer);
        let outputs = results::Outputs {
            spf: spf_results.as_ref(),
            msg,
            dkim: &dkim_out,
            arc: &arc_out,
            dmarc: &dmarc_out,
        };
        results::build(host, origin, outputs, sealer)
    }
}
