//! TLS for outbound SMTP. The handshake itself accepts any certificate
//! (its signatures are still checked), so opportunistic STARTTLS (RFC 3207
//! as MTAs use it) encrypts against passive listeners without refusing to
//! deliver. What a delivery demands beyond that is a `TlsDemand`: nothing,
//! a check that is only reported (MTA-STS `testing`), or a chain verified
//! against trust anchors for the next hop's name before a single command
//! is sent over the connection (a verified smarthost, MTA-STS `enforce`).
//! The unverified configuration and the trust anchors come from
//! `tls/client.rs`, shared with every other outgoing connection.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("outbound TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("outbound TLS trust anchors: {0}")]
    Anchors(String),
}

pub use crate::tls::client::opportunistic_tls_config;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks a certificate chain against a set of trust anchors and a host
/// name (RFC 6125 rules as webpki applies them: a wildcard stands for one
/// leftmost label). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    /// Where the anchors came from, for log lines ("system roots", a file).
    pub anchors: String,
}

impl Verifier {
    /// Anchors from `ca` (PEM) when given, else the system's.
    pub fn load(ca: Option<&Path>) -> Result<Verifier, ClientSetupError> {
        let (roots, anchors) =
            crate::tls::client::trust_anchors(ca).map_err(ClientSetupError::Anchors)?;
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| ClientSetupError::Anchors(e.to_string()))?;
        Ok(Verifier { inner, anchors })
    }

    /// Is `chain` (end entity first) valid now for `name`?
    pub fn verify(&self, chain: &[CertificateDer<'static>], name: &str) -> Result<(), CertFailure> {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err(CertFailure::new(
                "certificate-not-trusted",
                "no certificate presented".into(),
            ));
        };
        let server_name =
            ServerName::try_from(name.trim_end_matches('.').to_string()).map_err(|_| {
                CertFailure::new(
                    "certificate-host-mismatch",
                    format!("{name:?} is not a name a certificate can be checked against"),
                )
            })?;
        self.inner
            .verify_server_cert(
                end_entity,
                intermediates,
                &server_name,
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
            .map_err(|e| {
                use rustls::CertificateError as C;
                let result_type = match &e {
                    rustls::Error::InvalidCertificate(
                        C::Expired
                        | C::ExpiredContext { .. }
                        | C::NotValidYet
                        | C::NotValidYetContext { .. },
                    ) => "certificate-expired",
                    rustls::Error::InvalidCertificate(
                        C::NotValidForName | C::NotValidForNameContext { .. },
                    ) => "certificate-host-mismatch",
                    _ => "certificate-not-trusted",
                };
                let text = format!(
                    "certificate for {name}: {e} (trust anchors: {})",
                    self.anchors
                );
                CertFailure::new(result_type, text)
            })
    }

    /// A client configuration that verifies during the handshake (HTTPS).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientSetupError> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_webpki_verifier(self.inner.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Why a certificate did not verify: the words for logs, and the
/// result type of RFC 8460 (TLS-RPT) it counts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFailure {
    pub result_type: &'static str,
    pub text: String,
}

impl CertFailure {
    pub fn new(result_type: &'static str, text: String) -> CertFailure {
        CertFailure { result_type, text }
    }
}

impl std::fmt::Display for CertFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What one delivery demands of the next hop's TLS.
#[derive(Clone, Debug)]
pub enum TlsDemand {
    /// Never STARTTLS (`relay.smarthost_tls = "none"`).
    Plain,
    /// STARTTLS when offered, the certificate not checked.
    Opportunistic,
    /// STARTTLS when offered, the certificate checked against the hop's
    /// name; a failure is reported and the delivery goes on (MTA-STS testing).
    Report(Verifier),
    /// TLS with a certificate valid for the hop's name, or no transaction:
    /// `implicit` starts TLS on connect (RFC 8314), otherwise STARTTLS.
    Require { verifier: Verifier, implicit: bool },
}

impl TlsDemand {
    pub fn verifier(&self) -> Option<&Verifier> {
        match self {
            TlsDemand::Report(v) | TlsDemand::Require { verifier: v, .. } => Some(v),
            TlsDemand::Plain | TlsDemand::Opportunistic => None,
        }
    }

    pub fn required(&self) -> bool {
        matches!(self, TlsDemand::Require { .. })
    }

    /// A short tag for connection-cache keys: sessions are reused only
    /// under the demand they were opened with.
    pub fn tag(&self) -> &'static str {
        match self {
            TlsDemand::Plain => "plain",
            TlsDemand::Opportunistic => "opportunistic",
            TlsDemand::Report(_) => "report",
            TlsDemand::Require { implicit: true, .. } => "implicit",
            TlsDemand::Require { .. } => "require",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_and_leaf(names: &[&str]) -> (tempfile::TempDir, Vec<CertificateDer<'static>>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        (dir, vec![leaf.der().clone()])
    }

    #[test]
    fn verifies_names_against_the_given_anchors_only() {
        let (dir, chain) = ca_and_leaf(&["mx.example.test", "*.wild.test"]);
        let v = Verifier::load(Some(&dir.path().join("ca.pem"))).unwrap();
        assert!(v.verify(&chain, "mx.example.test").is_ok());
        assert!(v.verify(&chain, "a.wild.test").is_ok());
        // A wildcard stands for exactly one label.
        assert!(v.verify(&chain, "a.b.wild.test").is_err());
        let err = v.verify(&chain, "other.test").unwrap_err();
        assert!(err.text.contains("other.test"), "{err}");
        assert_eq!(err.result_type, "certificate-host-mismatch");
        // Another CA's anchors do not vouch for it.
        let (other, _) = ca_and_leaf(&["x.test"]);
        let v2 = Verifier::load(Some(&other.path().join("ca.pem"))).unwrap();
        assert!(v2.verify(&chain, "mx.example.test").is_err());
        assert!(v.verify(&[], "mx.example.test").is_err());
    }
}
