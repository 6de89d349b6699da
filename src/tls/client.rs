//! Client TLS shared by every outgoing connection (SMTP to the next hop,
//! HTTPS policy fetches, the PostgreSQL store): the unverified configuration
//! of opportunistic encryption, and the trust anchors a verified one starts
//! from. What a connection then demands of the peer (nothing, a report, a
//! verified name) is the caller's business: `outbound/tls.rs` for mail.
//!
//! Trust anchors are the system's (rustls-native-certs: the operating
//! system's store, which the operator and the distribution keep current,
//! as Postfix and Stalwart use it; a compiled-in list such as webpki-roots
//! would go stale with the binary) or a PEM file the config names.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore};
use std::path::Path;
use std::sync::Arc;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that accepts any certificate (its handshake
/// signatures are still checked): encryption against passive listeners,
/// no authentication of the peer.
pub fn opportunistic_tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The anchors in `ca` (PEM) when given, else the system's; with words
/// saying where they came from, for log lines. An error says why none
/// could be had.
pub fn trust_anchors(ca: Option<&Path>) -> Result<(RootCertStore, String), String> {
    let mut roots = RootCertStore::empty();
    let anchors = match ca {
        Some(path) => {
            for cert in super::load_certs(path).map_err(|e| e.to_string())? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            path.display().to_string()
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!("reading the system's trust anchors: {e}");
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no system trust anchors found (install ca-certificates, \
                            or name a CA file in the config)"
                    .into());
            }
            "system roots".to_string()
        }
    };
    if roots.is_empty() {
        return Err(format!("{anchors}: no certificates"));
    }
    Ok((roots, anchors))
}

/// A client configuration that verifies the peer against `ca` (or the
/// system's anchors) and the name connected to, with no ALPN.
pub fn verified_tls_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let (roots, _) = trust_anchors(ca)?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any certificate, checking only that the handshake signatures are sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
