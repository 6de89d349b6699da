//! `[store]`: which engine holds Tern's state. Absent, or `backend =
//! "sled"`: the embedded store in `data_dir`, as every release before it.
//! `backend = "postgres"`: an existing PostgreSQL database reached by `url`
//! (several `host:port` pairs allowed; the writable primary is used), with
//! the password in the URL or in `password_file`, never both.

use super::{ConfigDuration, ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `store.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// sled in `data_dir/store` (the default).
    #[default]
    Sled,
    /// PostgreSQL at `url`.
    Postgres,
}

/// `store.sslmode`, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreSslMode {
    /// No TLS (a database on loopback or a private network).
    Disable,
    /// TLS required, the certificate not checked.
    #[default]
    Require,
    /// TLS required, the certificate verified (`ca_file` or the system's
    /// roots) for the host name in the URL.
    VerifyFull,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// `postgresql://user[:password]@host[:port][,host2[:port2]…]/db`.
    pub url: Option<String>,
    /// A file holding the database password alone.
    pub password_file: Option<PathBuf>,
    /// Database connections this node keeps.
    pub pool_size: usize,
    pub sslmode: StoreSslMode,
    /// The CA that signed the database's certificate (`verify-full`).
    pub ca_file: Option<PathBuf>,
    /// Longest one statement may run before the database cancels it, so a
    /// stuck database cannot hold a session for ever.
    pub statement_timeout: ConfigDuration,
    /// Longest a new database connection may take.
    pub connect_timeout: ConfigDuration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Sled,
            url: None,
            password_file: None,
            pool_size: 16,
            sslmode: StoreSslMode::Require,
            ca_file: None,
            statement_timeout: ConfigDuration(Duration::from_secs(20)),
            connect_timeout: ConfigDuration(Duration::from_secs(10)),
        }
    }
}

impl StoreConfig {
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.password_file, &mut self.ca_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.backend {
            StoreBackend::Sled => {
                if self.url.is_some() {
                    return Err(invalid(
                        "store.url",
                        "is for backend = \"postgres\"; sled keeps its files in data_dir",
                    ));
                }
            }
            StoreBackend::Postgres => {
                let Some(url) = self.url.as_deref() else {
                    return Err(invalid(
                        "store.url",
                        "backend = \"postgres\" needs url = \"postgresql://user@host:port/db\"",
                    ));
                };
                if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
                    return Err(invalid(
                        "store.url",
                        "must start with postgresql:// (user@host:port/database)",
                    ));
                }
                if self.password_file.is_some() && url_has_password(url) {
                    return Err(invalid(
                        "store.password_file",
                        "the url holds a password too; keep one of them",
                    ));
                }
            }
        }
        if self.pool_size == 0 {
            return Err(invalid("store.pool_size", "must be at least 1"));
        }
        if self.statement_timeout.0 < Duration::from_millis(100) {
            return Err(invalid("store.statement_timeout", "must be at least 100ms"));
        }
        Ok(())
    }
}

/// Does the URL's user part carry a password (`user:password@`)?
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn error_of(text: &str) -> String {
        Config::from_toml(text, Path::new("/etc/tern"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn absent_means_sled_and_the_design_example_parses() {
        let c = Config::from_toml("", Path::new("/etc/tern")).unwrap();
        assert_eq!(c.store.backend, StoreBackend::Sled);
        let c = Config::from_toml(
            "[store]\nbackend = \"postgres\"\nurl = \"postgresql://tern@127.0.0.1:5432/tern\"\n\
             password_file = \"pgpass\"\npool_size = 16\nsslmode = \"disable\"\n\
             ca_file = \"db-ca.pem\"\n",
            Path::new("/etc/tern"),
        )
        .unwrap();
        assert_eq!(c.store.backend, StoreBackend::Postgres);
        assert_eq!(c.store.sslmode, StoreSslMode::Disable);
        assert_eq!(
            c.store.password_file.as_deref(),
            Some(Path::new("/etc/tern/pgpass"))
        );
        assert_eq!(
            c.store.ca_file.as_deref(),
            Some(Path::new("/etc/tern/db-ca.pem"))
        );
        let c = Config::from_toml(
            "[store]\nbackend = \"postgres\"\nurl = \"postgresql://a@h1:5432,h2:5433/t\"\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.store.sslmode, StoreSslMode::Require, "the default");
        assert_eq!(c.store.pool_size, 16);
    }

    #[test]
    fn mistakes_are_named() {
        let err = error_of("[store]\nbackend = \"postgres\"\n");
        assert!(err.contains("store.url"), "{err}");
        let err = error_of("[store]\nurl = \"postgresql://h/db\"\n");
        assert!(err.contains("store.url") && err.contains("sled"), "{err}");
        let err = error_of(
            "[store]\nbackend = \"postgres\"\nurl = \"postgresql://u:secret@h/db\"\npassword_file = \"pw\"\n",
        );
        assert!(
            err.contains("password_file") && !err.contains("secret"),
            "{err}"
        );
        let err = error_of("[store]\nbackend = \"mysql\"\n");
        assert!(err.contains("backend"), "{err}");
        let err = error_of("[store]\nbackend = \"postgres\"\nurl = \"mysql://h/db\"\n");
        assert!(err.contains("postgresql://"), "{err}");
        assert!(!url_has_password("postgresql://u@h:5432/db"));
        assert!(url_has_password("postgresql://u:p@h/db"));
        assert!(!url_has_password("postgresql://h/db?password=x"));
    }
}
