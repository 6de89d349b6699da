//! Server TLS: the certificates (the configured ones, or a self-signed
//! certificate for `hostname` generated in `data_dir` on first start), the
//! `TlsAcceptor` every listener shares, whose certificates a reload
//! replaces while the server runs (SIGHUP, `tern tls reload`: `context.rs`).

mod certs;
pub mod client;

pub use certs::{CertificateSet, Certificates};

use crate::config::{CertificateEntry, Config};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("no certificate configured")]
    NoCertificate,
}

/// The certificate and key file names used for the generated certificate.
pub const GENERATED_CERT: &str = "tls-cert.pem";
pub const GENERATED_KEY: &str = "tls-key.pem";

/// The acceptor the listeners share, and the certificates behind it (which
/// a reload replaces without a new acceptor).
pub struct ServerTls {
    acceptor: TlsAcceptor,
    certificates: Arc<Certificates>,
}

impl std::ops::Deref for ServerTls {
    type Target = TlsAcceptor;
    fn deref(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

impl ServerTls {
    /// Loads the certificates of `config` and makes new handshakes use
    /// them; on any error the ones serving now stay. Returns how many, and
    /// the warnings about names they do not cover.
    pub fn reload(&self, config: &Config) -> Result<(usize, Vec<String>), TlsError> {
        let set = CertificateSet::load(&entries(config)?)?;
        let summary = (set.count(), set.warnings().to_vec());
        self.certificates.replace(set);
        Ok(summary)
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The configured certificates, or the generated one (made on first use).
fn entries(config: &Config) -> Result<Vec<CertificateEntry>, TlsError> {
    let entries = config.tls.entries();
    if !entries.is_empty() {
        return Ok(entries);
    }
    let (certificate, private_key) = ensure_self_signed(&config.data_dir, &config.hostname)?;
    Ok(vec![CertificateEntry {
        names: Vec::new(),
        certificate,
        private_key,
    }])
}

/// Builds the acceptor from the config, generating a certificate if needed.
pub fn acceptor(config: &Config) -> Result<ServerTls, TlsError> {
    let set = CertificateSet::load(&entries(config)?)?;
    for w in set.warnings() {
        tracing::warn!("TLS: {w}");
    }
    let certificates = Arc::new(Certificates::new(set));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        certificates,
    })
}

/// Returns the paths of the generated certificate, creating it on first use.
pub fn ensure_self_signed(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = data_dir.join(GENERATED_CERT);
    let key_path = data_dir.join(GENERATED_KEY);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(data_dir).map_err(|source| TlsError::Write {
        path: data_dir.to_path_buf(),
        source,
    })?;
    write_self_signed(&cert_path, &key_path, hostname)?;
    Ok((cert_path, key_path))
}

/// Writes a new self-signed certificate for `hostname` and its key (mode
/// 0600) at these paths.
pub fn write_self_signed(
    cert_path: &Path,
    key_path: &Path,
    hostname: &str,
) -> Result<(), TlsError> {
    let certified = rcgen::generate_simple_self_signed(vec![hostname.to_string()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path.to_path_buf(),
        source,
    })?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate for {hostname}");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    f.write_all(bytes).map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, TlsError> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut open(path)?).collect();
    let certs = certs.map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no certificate found".into(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Pem {
            path: path.to_path_buf(),
            message: "no private key found".into(),
        })
}

/// What protected a session: the protocol version and the cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: &'static str,
    pub cipher: rustls::CipherSuite,
}

impl TlsInfo {
    /// What the handshake of `conn` agreed on.
    pub fn of(conn: &rustls::ServerConnection) -> TlsInfo {
        TlsInfo {
            version: version_name(conn.protocol_version()),
            cipher: conn
                .negotiated_cipher_suite()
                .map(|s| s.suite())
                .unwrap_or(rustls::CipherSuite::Unknown(0)),
        }
    }

    /// The cipher suite's IANA name (`TLS_AES_256_GCM_SHA384`,
    /// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`).
    pub fn cipher_name(&self) -> String {
        match self.cipher.as_str() {
            Some(name) => match name.strip_prefix("TLS13_") {
                Some(rest) => format!("TLS_{rest}"),
                None => name.to_string(),
            },
            None => format!("0x{:04X}", u16::from(self.cipher)),
        }
    }
}

/// A short name for the negotiated protocol version, for logs and Received.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> &'static str {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    }
}

/// For `check-config`: every configured certificate loads and goes with
/// its key. Returns the warnings (names a certificate does not cover).
pub fn check(config: &Config) -> Result<Vec<String>, TlsError> {
    let entries = config.tls.entries();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    Ok(CertificateSet::load(&entries)?.warnings().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, _) = ensure_self_signed(dir.path(), "mx.test").unwrap();
        let before = std::fs::read(&c1).unwrap();
        let (c2, k2) = ensure_self_signed(dir.path(), "mx.test").unwrap();
        assert_eq!(before, std::fs::read(&c2).unwrap());
        assert_eq!(load_certs(&c2).unwrap().len(), 1);
        load_key(&k2).unwrap();
    }
}
