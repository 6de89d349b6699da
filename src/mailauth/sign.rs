//! DKIM signing (RFC 6376; RSA-SHA256 and Ed25519-SHA256, RFC 8463) with
//! the `[[dkim]]` keys, one per local domain. Tern signs when it accepts a
//! message from an authenticated or trusted client: the DKIM-Signature goes
//! into the stored prefix, so every delivery attempt (and every local copy)
//! carries the same signed bytes. A domain may have one RSA and one
//! Ed25519 key; it is then signed with both (RFC 8463 section 4: verifiers
//! that know only RSA still find a signature they can check).
//!
//! With `[auth] arc_seal`, a key of that domain seals mail from outside
//! that Tern forwards (RFC 8617): its RSA key, because RFC 8617 section 5.1
//! (and so common verifiers such as dkimpy) knows only rsa-sha256. A domain
//! with an Ed25519 key only still seals with it, and `check-config` and the
//! server's start warn (`arc_seal_warning`).

use super::MailAuthError;
use crate::config::{DkimAlgorithm, DkimKeyConfig};
use mail_auth::arc::ArcSealer;
use mail_auth::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::DkimSigner;
use mail_auth::signer::Ready;
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults};
use rustls::pki_types::PrivateKeyDer;
use std::collections::HashMap;

/// Header fields signed (those present are signed; From is required).
/// Absent ones in this list are "oversigned" by mail-auth, so they cannot be
/// added later without breaking the signature.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Header fields an ARC-Message-Signature covers (those present).
const ARC_SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "DKIM-Signature",
];

pub struct Signer {
    /// Per domain, its signers (RSA first).
    by_domain: HashMap<String, Vec<DkimSigner<DkimKey, Ready>>>,
    arc: Option<ArcSealer<DkimKey, Ready>>,
}

pub(super) fn load_key(k: &DkimKeyConfig) -> Result<DkimKey, MailAuthError> {
    let err = |message: String| MailAuthError::Key {
        path: k.private_key.clone(),
        message,
    };
    let pem = std::fs::read(&k.private_key).map_err(|e| err(e.to_string()))?;
    let der = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("no private key in the PEM file".into()))?;
    match (k.algorithm, der) {
        (DkimAlgorithm::RsaSha256, der @ (PrivateKeyDer::Pkcs1(_) | PrivateKeyDer::Pkcs8(_))) => {
            RsaKey::<Sha256>::from_key_der(der)
                .map(DkimKey::from)
                .map_err(|e| err(e.to_string()))
        }
        (DkimAlgorithm::Ed25519Sha256, PrivateKeyDer::Pkcs8(der)) => {
            Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der())
                .map(DkimKey::from)
                .map_err(|e| err(e.to_string()))
        }
        (alg, _) => Err(err(format!(
            "not a {alg:?} private key (PKCS#1 or PKCS#8 PEM)"
        ))),
    }
}

impl Signer {
    /// The signers of the `[[dkim]]` keys, and the ARC sealer of the
    /// `arc_seal` domain's key (validated by the config to be one of them;
    /// its RSA key when it has one).
    pub fn load(keys: &[DkimKeyConfig], arc_seal: Option<&str>) -> Result<Signer, MailAuthError> {
        let mut by_domain: HashMap<String, Vec<_>> = HashMap::new();
        let mut keys: Vec<&DkimKeyConfig> = keys.iter().collect();
        // RSA first: its signature leads, and the ARC sealer prefers it.
        keys.sort_by_key(|k| k.algorithm != DkimAlgorithm::RsaSha256);
        let mut arc = None;
        for k in keys {
            let signer = DkimSigner::from_key(load_key(k)?)
                .domain(k.domain.clone())
                .selector(k.selector.clone())
                .headers(SIGNED_HEADERS.iter().copied());
            by_domain
                .entry(k.domain.to_ascii_lowercase())
                .or_default()
                .push(signer);
            if arc.is_none() && arc_seal.is_some_and(|d| d.eq_ignore_ascii_case(&k.domain)) {
                arc = Some(
                    ArcSealer::from_key(load_key(k)?)
                        .domain(k.domain.clone())
                        .selector(k.selector.clone())
                        .headers(ARC_SIGNED_HEADERS.iter().copied()),
                );
            }
        }
        Ok(Signer { by_domain, arc })
    }

    /// Whether forwarded mail is ARC-sealed.
    pub fn seals(&self) -> bool {
        self.arc.is_some()
    }

    /// The next ARC set for `msg` (ARC-Seal, ARC-Message-Signature and
    /// ARC-Authentication-Results, CRLF-terminated), carrying our results
    /// `ar`; None without a sealer, or when the chain failed before us
    /// (RFC 8617 5.1: a failed chain is not sealed again).
    pub fn arc_seal(
        &self,
        msg: &AuthenticatedMessage<'_>,
        ar: &AuthenticationResults<'_>,
        arc: &ArcOutput<'_>,
    ) -> Option<String> {
        use mail_auth::headers::HeaderWriter as _;
        let sealer = self.arc.as_ref()?;
        if !arc.can_be_sealed() {
            return None;
        }
        match sealer.seal(msg, ar, arc) {
            Ok(set) => Some(set.to_header()),
            Err(e) => {
                tracing::error!("ARC sealing failed: {e}");
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    pub fn has_key(&self, domain: &str) -> bool {
        self.by_domain.contains_key(&domain.to_ascii_lowercase())
    }

    /// Signs the message made of `parts` (read as if concatenated: the
    /// prefix Tern adds, then the body as received) for `domain`; returns
    /// the `DKIM-Signature:` field(s), one per key of the domain, each
    /// CRLF-terminated, or None without a key.
    pub fn sign<'a>(
        &self,
        domain: &str,
        parts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<String>, MailAuthError> {
        let domain = domain.to_ascii_lowercase();
        let Some(signers) = self.by_domain.get(&domain) else {
            return Ok(None);
        };
        let parts: Vec<&[u8]> = parts.into_iter().collect();
        use mail_auth::headers::HeaderWriter as _;
        let mut fields = String::new();
        for signer in signers {
            let sig =
                signer
                    .sign_chained(parts.iter().copied())
                    .map_err(|e| MailAuthError::Sign {
                        domain: domain.clone(),
                        message: e.to_string(),
                    })?;
            fields.push_str(&sig.to_header());
        }
        Ok(Some(fields))
    }

    /// Signs a submitted message (over SMTP from an authenticated or
    /// trusted client, or sent from web mail) for the domain of its From:
    /// address, else of the envelope sender, when that domain is local and
    /// has a key. The signature covers `prefix` (what Tern puts in front)
    /// and `body` (the message as submitted), and goes at the top of
    /// `prefix`. Returns the domain signed for.
    pub fn sign_submission(
        &self,
        config: &crate::config::Config,
        header: &[u8],
        envelope_from: Option<&str>,
        prefix: &mut Vec<u8>,
        body: &[u8],
    ) -> Result<Option<String>, MailAuthError> {
        if self.is_empty() {
            return Ok(None);
        }
        let header_from = mail_parser::MessageParser::default()
            .parse_headers(header)
            .and_then(|m| {
                m.from()
                    .and_then(|f| f.first())
                    .and_then(|a| a.address())
                    .map(str::to_string)
            });
        let domain = [header_from.as_deref(), envelope_from]
            .into_iter()
            .flatten()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .find(|d| config.is_local_domain(d) && self.has_key(d));
        let Some(domain) = domain else {
            return Ok(None);
        };
        if let Some(sig) = self.sign(&domain, [prefix.as_slice(), body])? {
            let mut signed = sig.into_bytes();
            signed.extend_from_slice(prefix);
            *prefix = signed;
        }
        Ok(Some(domain))
    }
}

/// The warning `check-config` and the server's start give when the
/// `arc_seal` domain has no RSA key: its seals are Ed25519, which RFC 8617
/// does not define and common verifiers refuse.
pub fn arc_seal_warning(keys: &[DkimKeyConfig], arc_seal: Option<&str>) -> Option<String> {
    let domain = arc_seal?;
    let mine: Vec<_> = keys
        .iter()
        .filter(|k| k.domain.eq_ignore_ascii_case(domain))
        .collect();
    (!mine.is_empty() && mine.iter().all(|k| k.algorithm != DkimAlgorithm::RsaSha256)).then(|| {
        format!(
            "[auth] arc_seal = {domain:?} has only an Ed25519 key: ARC verifiers (RFC 8617, dkimpy) \
             accept rsa-sha256 seals only; add an RSA key for {domain} \
             (tern dkim generate {domain} SELECTOR --algorithm rsa) as a second [[dkim]] entry"
        )
    })
}
