//! The server's own identities as receivers will judge them, for `tern
//! doctor`: SPF evaluated for one of our addresses, forward-confirmed
//! reverse DNS (RFC 8601 `iprev`), and whether the record a `[[dkim]]` key
//! publishes verifies a signature made with the key on disk. Everything
//! goes through mail-auth, as the inbound checks do, so the doctor agrees
//! with what other servers running the same logic conclude. Never sends
//! anything anywhere but to the DNS.

use super::MailAuthError;
use super::sign::load_key;
use crate::config::{DkimKeyConfig, DnsConfig};
use mail_auth::crypto::DkimKey;
use mail_auth::dkim::DkimSigner;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimResult, IprevResult, MessageAuthenticator, SpfResult};
use std::net::IpAddr;

/// What SPF says about one address sending for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfVerdict {
    Pass,
    /// fail, softfail or neutral: the address is not authorised.
    NotAuthorised(&'static str),
    /// The domain publishes no SPF record.
    NoRecord,
    /// The record is broken (two records, bad syntax, too many look-ups).
    PermError,
    TempError,
}

/// Forward-confirmed reverse DNS of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iprev {
    /// The PTR names (lower case, without the final dot), one of which
    /// resolves back to the address.
    Confirmed(Vec<String>),
    /// PTR names exist, but none resolves back to the address.
    Unconfirmed(Vec<String>),
    /// No PTR record (or a broken one).
    NoPtr(String),
    Temporary(String),
}

/// Does the DNS publish a `[[dkim]]` key as it is on disk?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimVerdict {
    /// A signature made with the private key verifies with the published record.
    Verified,
    /// A record is published but does not verify the signature (another key).
    Mismatch(String),
    /// No key record at `selector._domainkey.domain` (or an unusable one).
    Unusable(String),
    Temporary(String),
}

/// mail-auth's resolver, built from `[dns]` like the inbound checks'.
pub struct Probe {
    authenticator: MessageAuthenticator,
}

fn names(ptr: Option<&std::sync::Arc<[Box<str>]>>) -> Vec<String> {
    ptr.map(|list| {
        list.iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .collect()
    })
    .unwrap_or_default()
}

impl Probe {
    pub fn new(dns: &DnsConfig) -> Result<Probe, MailAuthError> {
        Ok(Probe {
            authenticator: super::resolver::authenticator(dns)?,
        })
    }

    /// SPF for mail from `postmaster@domain` sent by `ip`, which says
    /// `hostname` in its EHLO (RFC 7208 `check_host`).
    pub async fn spf(&self, ip: IpAddr, domain: &str, hostname: &str) -> SpfVerdict {
        let sender = format!("postmaster@{domain}");
        let params = SpfParameters::mail_from(ip, hostname, hostname, &sender);
        let out = self.authenticator.check_host(params).await;
        match out.result() {
            SpfResult::Pass => SpfVerdict::Pass,
            SpfResult::Fail => SpfVerdict::NotAuthorised("fail"),
            SpfResult::SoftFail => SpfVerdict::NotAuthorised("softfail"),
            SpfResult::Neutral => SpfVerdict::NotAuthorised("neutral"),
            SpfResult::None => SpfVerdict::NoRecord,
            SpfResult::PermError => SpfVerdict::PermError,
            SpfResult::TempError => SpfVerdict::TempError,
        }
    }

    /// The PTR names of `ip` and whether one resolves back to it.
    pub async fn iprev(&self, ip: IpAddr) -> Iprev {
        let out = self.authenticator.verify_iprev(ip).await;
        let ptr = names(out.ptr.as_ref());
        match &out.result {
            IprevResult::Pass => Iprev::Confirmed(ptr),
            IprevResult::Fail(_) => Iprev::Unconfirmed(ptr),
            // PTR names whose forward look-up found nothing.
            IprevResult::PermError(_) if !ptr.is_empty() => Iprev::Unconfirmed(ptr),
            IprevResult::PermError(e) => Iprev::NoPtr(e.to_string()),
            IprevResult::TempError(e) => Iprev::Temporary(e.to_string()),
            IprevResult::None => Iprev::NoPtr("not checked".into()),
        }
    }

    /// Signs a small message with `key` and verifies it against the DNS.
    pub async fn dkim(&self, key: &DkimKeyConfig) -> Result<DkimVerdict, MailAuthError> {
        let signer = DkimSigner::from_key(load_key(key)?)
            .domain(key.domain.clone())
            .selector(key.selector.clone())
            .headers(["From", "To", "Subject"]);
        let body = format!(
            "From: <postmaster@{d}>\r\nTo: <postmaster@{d}>\r\nSubject: tern doctor\r\n\r\nA DKIM key check.\r\n",
            d = key.domain
        );
        let signature = signer
            .sign(body.as_bytes())
            .map_err(|e| MailAuthError::Sign {
                domain: key.domain.clone(),
                message: e.to_string(),
            })?;
        use mail_auth::headers::HeaderWriter as _;
        let message = format!("{}{body}", signature.to_header());
        let Some(parsed) = AuthenticatedMessage::parse(message.as_bytes()) else {
            return Err(MailAuthError::Sign {
                domain: key.domain.clone(),
                message: "the signed test message does not parse".into(),
            });
        };
        let outputs = self.authenticator.verify_dkim(&parsed).await;
        let Some(out) = outputs.first() else {
            return Ok(DkimVerdict::Unusable("no signature evaluated".into()));
        };
        Ok(match out.result() {
            DkimResult::Pass => DkimVerdict::Verified,
            DkimResult::Fail(e) | DkimResult::Neutral(e) => DkimVerdict::Mismatch(e.to_string()),
            DkimResult::PermError(e) => DkimVerdict::Unusable(e.to_string()),
            DkimResult::TempError(e) => DkimVerdict::Temporary(e.to_string()),
            DkimResult::None => DkimVerdict::Unusable("not checked".into()),
        })
    }
}

/// The key record `key` needs at `selector._domainkey.domain` (the value,
/// `v=DKIM1; k=…; p=…`), derived from the private key on disk.
pub fn dkim_record(key: &DkimKeyConfig) -> Result<String, MailAuthError> {
    let err = |message: String| MailAuthError::Key {
        path: key.private_key.clone(),
        message,
    };
    match load_key(key)? {
        DkimKey::Rsa(k) => {
            let spki = super::keygen::rsa_spki(&k.public_key()).map_err(err)?;
            Ok(super::keygen::key_record("rsa", &spki))
        }
        DkimKey::Ed25519(k) => Ok(super::keygen::key_record("ed25519", &k.public_key())),
        DkimKey::MlDsa44(_) => Err(err("not a DKIM key type".into())),
    }
}
