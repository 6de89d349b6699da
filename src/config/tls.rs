//! The `[tls]` section: the server's certificates. One certificate is given
//! as `certificate` + `private_key` (DESIGN.md's form, still the usual one);
//! a server answering for several domains lists `[[tls.certificate]]`
//! entries with the `names` each one serves, chosen by the client's SNI.
//! Without either, a self-signed certificate for `hostname` is generated.

use super::{ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// A path (the one certificate, with `private_key`) or a list of
    /// `[[tls.certificate]]` entries.
    pub certificate: Option<CertificateSetting>,
    /// The key of the single `certificate` path.
    pub private_key: Option<PathBuf>,
    pub allow_plaintext_auth: bool,
}

/// `certificate = "cert.pem"` or `[[tls.certificate]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a file name, or [[tls.certificate]] tables with certificate, private_key and names"
)]
pub enum CertificateSetting {
    Path(PathBuf),
    List(Vec<CertificateEntry>),
}

/// One `[[tls.certificate]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateEntry {
    /// Host names this certificate answers for (`mail.example.test`,
    /// `*.example.test`). An entry without names is the default, served
    /// when the client names no host or one no entry lists; without such an
    /// entry the first one is the default.
    #[serde(default)]
    pub names: Vec<String>,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

impl TlsConfig {
    /// The configured certificates, the default first; empty when none is
    /// configured (then a generated one serves).
    pub fn entries(&self) -> Vec<CertificateEntry> {
        match &self.certificate {
            None => Vec::new(),
            Some(CertificateSetting::Path(p)) => match &self.private_key {
                Some(k) => vec![CertificateEntry {
                    names: Vec::new(),
                    certificate: p.clone(),
                    private_key: k.clone(),
                }],
                None => Vec::new(),
            },
            Some(CertificateSetting::List(list)) => {
                let mut list = list.clone();
                if let Some(i) = list.iter().position(|e| e.names.is_empty()) {
                    let default = list.remove(i);
                    list.insert(0, default);
                }
                list
            }
        }
    }

    /// Resolves paths against the config's folder; names to lower case.
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match self.certificate.as_mut() {
            Some(CertificateSetting::Path(p)) => resolve(p),
            Some(CertificateSetting::List(list)) => {
                for e in list {
                    resolve(&mut e.certificate);
                    resolve(&mut e.private_key);
                    for name in &mut e.names {
                        *name = name.trim().trim_end_matches('.').to_ascii_lowercase();
                    }
                }
            }
            None => {}
        }
        if let Some(p) = self.private_key.as_mut() {
            resolve(p);
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match &self.certificate {
            Some(CertificateSetting::Path(_)) | None => {
                if self.certificate.is_some() != self.private_key.is_some() {
                    return Err(invalid("tls", "certificate and private_key go together"));
                }
            }
            Some(CertificateSetting::List(list)) => {
                if self.private_key.is_some() {
                    return Err(invalid(
                        "tls.private_key",
                        "with [[tls.certificate]] entries, each entry has its own private_key",
                    ));
                }
                let mut defaults = 0;
                let mut seen = std::collections::HashSet::new();
                for (i, e) in list.iter().enumerate() {
                    let key = format!("tls.certificate[{i}].names");
                    if e.names.is_empty() {
                        defaults += 1;
                    }
                    for name in &e.names {
                        check_name(name).map_err(|m| invalid(&key, m))?;
                        if !seen.insert(name.clone()) {
                            return Err(invalid(&key, format!("{name} is listed twice")));
                        }
                    }
                }
                if defaults > 1 {
                    return Err(invalid(
                        "tls.certificate",
                        "only one entry may go without names (it is the default)",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A name as SNI matches it (already lower case, without the final dot):
/// `*.` only as the whole first label.
fn check_name(name: &str) -> Result<(), String> {
    let rest = name.strip_prefix("*.").unwrap_or(name);
    let ok = !rest.is_empty()
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a host name (a wildcard is `*.` then a domain)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(text: &str) -> Result<Config, String> {
        Config::from_toml(text, Path::new("/srv")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_single_form_is_the_default_entry() {
        let c = load("[tls]\ncertificate = \"c.pem\"\nprivate_key = \"k.pem\"\n").unwrap();
        let e = c.tls.entries();
        assert_eq!(e.len(), 1);
        assert!(e[0].names.is_empty());
        assert_eq!(e[0].certificate, PathBuf::from("/srv/c.pem"));
        assert_eq!(e[0].private_key, PathBuf::from("/srv/k.pem"));
    }

    #[test]
    fn entries_put_the_nameless_one_first_and_normalize_names() {
        let c = load(
            "[[tls.certificate]]\nnames = [\"Mail.A.test.\", \"*.b.test\"]\ncertificate = \"a.pem\"\nprivate_key = \"a.key\"\n\
             [[tls.certificate]]\ncertificate = \"d.pem\"\nprivate_key = \"d.key\"\n",
        )
        .unwrap();
        let e = c.tls.entries();
        assert_eq!(e[0].certificate, PathBuf::from("/srv/d.pem"));
        assert_eq!(e[1].names, ["mail.a.test", "*.b.test"]);
    }

    #[test]
    fn bad_forms_are_refused_with_the_key() {
        for (text, want) in [
            ("[tls]\ncertificate = \"c.pem\"\n", "go together"),
            (
                "[tls]\nprivate_key = \"k.pem\"\n[[tls.certificate]]\ncertificate = \"a\"\nprivate_key = \"b\"\n",
                "tls.private_key",
            ),
            (
                "[[tls.certificate]]\nnames = [\"a.*.test\"]\ncertificate = \"a\"\nprivate_key = \"b\"\n",
                "tls.certificate[0].names",
            ),
            (
                "[[tls.certificate]]\ncertificate = \"a\"\nprivate_key = \"b\"\n[[tls.certificate]]\ncertificate = \"c\"\nprivate_key = \"d\"\n",
                "only one entry",
            ),
            (
                "[[tls.certificate]]\nnames = [\"x.test\"]\ncertificate = \"a\"\nprivate_key = \"b\"\n[[tls.certificate]]\nnames = [\"X.test\"]\ncertificate = \"c\"\nprivate_key = \"d\"\n",
                "listed twice",
            ),
        ] {
            let err = load(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
