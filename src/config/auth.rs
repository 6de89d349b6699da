//! The `[auth]` table (SPF, DKIM, DMARC and ARC on mail from outside, and
//! ARC sealing of what Tern forwards) and the `[[dkim]]` signing keys.

use super::{ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What to do when SPF fails (`[auth] spf_fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpfAction {
    /// 550 5.7.23 at end of data.
    Reject,
    /// Accept; the result is in Authentication-Results and the hooks' `AuthResults`.
    Tag,
    /// SPF is not checked at all (DMARC then rests on DKIM alone).
    Off,
}

/// What to do when DMARC fails under a published `p=reject` or `p=quarantine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcAction {
    /// p=reject: 550 5.7.1 at end of data; p=quarantine: local copies go to Junk.
    Honour,
    /// Accept into INBOX; the disposition the domain asked for is recorded
    /// (`AuthResults::disposition`) for plugins.
    Tag,
    /// Ignore the domain's policy (the result is still in Authentication-Results).
    Off,
}

/// Overrides for one trusted forwarder (`[auth.forwarders."domain"]`), which
/// apply when the HELO name or the MAIL FROM domain is that domain or below it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthOverride {
    pub spf_fail: Option<SpfAction>,
    pub dmarc_reject: Option<DmarcAction>,
    pub dmarc_quarantine: Option<DmarcAction>,
}

/// SPF, DKIM, DMARC and ARC checks on mail from outside (`[auth]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Run the checks on mail from clients neither authenticated nor trusted.
    pub verify: bool,
    pub spf_fail: SpfAction,
    pub dmarc_reject: DmarcAction,
    pub dmarc_quarantine: DmarcAction,
    pub forwarders: BTreeMap<String, AuthOverride>,
    /// Seal mail from outside that Tern forwards (a recipient routed to
    /// another domain) with an ARC set (RFC 8617), signed with the
    /// `[[dkim]]` key of this domain. Unset: no sealing.
    pub arc_seal: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            verify: true,
            spf_fail: SpfAction::Tag,
            dmarc_reject: DmarcAction::Honour,
            dmarc_quarantine: DmarcAction::Honour,
            forwarders: BTreeMap::new(),
            arc_seal: None,
        }
    }
}

/// DKIM signature algorithm of a `[[dkim]]` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DkimAlgorithm {
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    #[serde(rename = "ed25519-sha256", alias = "ed25519")]
    Ed25519Sha256,
}

/// A DKIM signing key for a local domain (`[[dkim]]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    pub domain: String,
    pub selector: String,
    /// PEM file: PKCS#1 or PKCS#8 for RSA, PKCS#8 for Ed25519 (`tern dkim generate` writes one).
    pub private_key: PathBuf,
    #[serde(default = "default_dkim_algorithm")]
    pub algorithm: DkimAlgorithm,
}

fn default_dkim_algorithm() -> DkimAlgorithm {
    DkimAlgorithm::RsaSha256
}

/// Checks `[auth]` against the `[[dkim]]` keys.
pub(super) fn validate(auth: &AuthConfig, dkim: &[DkimKeyConfig]) -> Result<(), ConfigError> {
    let mut keys = std::collections::HashSet::new();
    for k in dkim {
        if k.domain.is_empty() || k.selector.is_empty() || k.selector.contains(char::is_whitespace)
        {
            return Err(invalid("dkim", "each key needs a domain and a selector"));
        }
        if !keys.insert((k.domain.to_ascii_lowercase(), k.algorithm)) {
            return Err(invalid(
                "dkim",
                format!(
                    "two {:?} keys for domain {:?}; one signing key per domain and algorithm",
                    k.algorithm, k.domain
                ),
            ));
        }
    }
    if let Some(d) = &auth.arc_seal
        && !dkim.iter().any(|k| k.domain.eq_ignore_ascii_case(d))
    {
        return Err(invalid(
            "auth.arc_seal",
            format!("{d:?} has no [[dkim]] key to seal with"),
        ));
    }
    Ok(())
}
