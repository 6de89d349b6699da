//! The certificates the server presents: a set (a default and the ones
//! chosen by SNI, wildcards included) loaded from the config, and the
//! rustls resolver that holds the current set behind an `ArcSwap`, so a
//! reload swaps it in one store. A handshake picks its certificate when it
//! starts; sessions already encrypted keep the connection they have.

use super::{TlsError, load_certs, load_key, provider};
use crate::config::CertificateEntry;
use arc_swap::ArcSwap;
use rustls::client::verify_server_name;
use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// One loaded set of certificates.
pub struct CertificateSet {
    default: Arc<CertifiedKey>,
    /// Exact names (lower case, without the final dot).
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.test` stored as `example.test`: one label in front of it.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// Names an entry lists that its certificate is not valid for.
    warnings: Vec<String>,
}

impl CertificateSet {
    /// Loads every entry (the default first, as `TlsConfig::entries` gives
    /// them); the first that fails to load fails the whole set.
    pub fn load(entries: &[CertificateEntry]) -> Result<CertificateSet, TlsError> {
        let mut loaded = entries.iter().map(|e| {
            let key = certified_key(&e.certificate, &e.private_key)?;
            Ok::<_, TlsError>((e, key))
        });
        let Some(first) = loaded.next() else {
            return Err(TlsError::NoCertificate);
        };
        let (first_entry, default) = first?;
        let mut set = CertificateSet {
            default: default.clone(),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            warnings: Vec::new(),
        };
        set.add(first_entry, &default);
        for result in loaded {
            let (entry, key) = result?;
            set.add(entry, &key);
        }
        Ok(set)
    }

    /// What an operator should hear about: names a certificate does not
    /// cover (clients that verify will refuse it for them).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn add(&mut self, entry: &CertificateEntry, key: &Arc<CertifiedKey>) {
        for name in uncovered(&entry.names, key) {
            self.warnings.push(format!(
                "{} is not valid for {name}",
                entry.certificate.display()
            ));
        }
        for name in &entry.names {
            match name.strip_prefix("*.") {
                Some(parent) => self.wildcard.insert(parent.to_string(), key.clone()),
                None => self.exact.insert(name.clone(), key.clone()),
            };
        }
    }

    /// The certificate for the name the client sent (exact name first,
    /// then a wildcard one label up), else the default.
    pub fn choose(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
            .clone()
    }

    /// How many distinct certificates the set holds (for the log).
    pub fn count(&self) -> usize {
        let mut seen: Vec<*const CertifiedKey> = vec![Arc::as_ptr(&self.default)];
        for k in self.exact.values().chain(self.wildcard.values()) {
            if !seen.contains(&Arc::as_ptr(k)) {
                seen.push(Arc::as_ptr(k));
            }
        }
        seen.len()
    }
}

/// A certificate chain and its key, checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_certs(cert)?;
    let key_der = load_key(key)?;
    CertifiedKey::from_der(chain, key_der, &provider())
        .map(Arc::new)
        .map_err(|e| TlsError::Pem {
            path: key.to_path_buf(),
            message: format!("does not go with {}: {e}", cert.display()),
        })
}

/// The names among `names` that the end-entity certificate of `key` is
/// not valid for (a wildcard name is tried with a label in its place).
fn uncovered(names: &[String], key: &CertifiedKey) -> Vec<String> {
    let Some(Ok(cert)) = key.cert.first().map(ParsedCertificate::try_from) else {
        return names.to_vec();
    };
    names
        .iter()
        .filter(|name| {
            let probe = match name.strip_prefix("*.") {
                Some(parent) => format!("any-label.{parent}"),
                None => name.to_string(),
            };
            ServerName::try_from(probe).map_or(true, |sn| verify_server_name(&cert, &sn).is_err())
        })
        .cloned()
        .collect()
}

/// The resolver every listener's `ServerConfig` uses.
pub struct Certificates {
    current: ArcSwap<CertificateSet>,
}

impl Certificates {
    pub fn new(set: CertificateSet) -> Certificates {
        Certificates {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// New handshakes use `set` from now on.
    pub fn replace(&self, set: CertificateSet) {
        self.current.store(Arc::new(set));
    }
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Certificates({})", self.current.load().count())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().choose(client_hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(dir: &Path, tag: &str, names: &[&str]) -> CertificateEntry {
        let subject = names.first().copied().unwrap_or("default.test").to_string();
        let c = rcgen::generate_simple_self_signed(vec![subject]).unwrap();
        let certificate = dir.join(format!("{tag}.pem"));
        let private_key = dir.join(format!("{tag}.key"));
        std::fs::write(&certificate, c.cert.pem()).unwrap();
        std::fs::write(&private_key, c.signing_key.serialize_pem()).unwrap();
        CertificateEntry {
            names: names.iter().map(|n| n.to_string()).collect(),
            certificate,
            private_key,
        }
    }

    fn leaf(k: &Arc<CertifiedKey>) -> Vec<u8> {
        k.cert[0].to_vec()
    }

    #[test]
    fn chooses_exact_then_wildcard_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let d = entry(dir.path(), "d", &[]);
        let a = entry(dir.path(), "a", &["mail.a.test"]);
        let w = entry(dir.path(), "w", &["*.b.test"]);
        let set = CertificateSet::load(&[d, a, w]).unwrap();
        assert_eq!(set.count(), 3);
        let default = leaf(&set.choose(None));
        let a = leaf(&set.choose(Some("MAIL.a.test.")));
        let w = leaf(&set.choose(Some("mx.b.test")));
        assert!(default != a && a != w && w != default);
        assert_eq!(leaf(&set.choose(Some("b.test"))), default);
        assert_eq!(leaf(&set.choose(Some("x.mx.b.test"))), default);
        assert_eq!(leaf(&set.choose(Some("other.test"))), default);
        assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    }

    #[test]
    fn names_the_certificate_does_not_cover_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = entry(dir.path(), "a", &["mail.a.test"]);
        a.names.push("mail.c.test".into());
        let mut w = entry(dir.path(), "w", &["mx.b.test"]);
        w.names = vec!["*.b.test".into()];
        let set = CertificateSet::load(&[a, w]).unwrap();
        let warnings = set.warnings().join("\n");
        assert_eq!(set.warnings().len(), 2, "{warnings}");
        assert!(
            warnings.contains("a.pem is not valid for mail.c.test"),
            "{warnings}"
        );
        assert!(
            warnings.contains("w.pem is not valid for *.b.test"),
            "{warnings}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = entry(dir.path(), "a", &[]);
        let b = entry(dir.path(), "b", &[]);
        a.private_key = b.private_key;
        let err = CertificateSet::load(&[a]).err().unwrap().to_string();
        assert!(err.contains("does not go with"), "{err}");
        let missing = CertificateEntry {
            names: vec![],
            certificate: PathBuf::from("/nonexistent/c.pem"),
            private_key: PathBuf::from("/nonexistent/k.pem"),
        };
        assert!(CertificateSet::load(&[missing]).is_err());
    }
}
