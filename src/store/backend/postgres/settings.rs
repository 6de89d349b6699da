//! How to reach the database: the `[store]` keys for PostgreSQL turned into
//! a tokio-postgres client configuration and a TLS connector. The password
//! comes from the URL or from `password_file` (not both), and appears in no
//! message: errors name the hosts only.

use super::super::BackendError;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// `[store] sslmode`, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS (a database on loopback or a private network).
    Disable,
    /// TLS required, the certificate not checked (libpq's `require`).
    #[default]
    Require,
    /// TLS required, the certificate verified against `ca_file` (or the
    /// system's roots) and the host name.
    VerifyFull,
}

#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `postgresql://user[:password]@host[:port][,host2[:port2]…]/db[?…]`
    pub url: String,
    pub password_file: Option<PathBuf>,
    /// Connections per node.
    pub pool_size: usize,
    pub sslmode: SslMode,
    pub ca_file: Option<PathBuf>,
    /// Longest any statement may run before the database cancels it.
    pub statement_timeout: Duration,
    /// Longest a new connection may take.
    pub connect_timeout: Duration,
    /// Longest a caller waits for a free pooled connection.
    pub wait_timeout: Duration,
}

impl PostgresSettings {
    /// Defaults for everything but the URL (as DESIGN.md gives them).
    pub fn new(url: impl Into<String>) -> PostgresSettings {
        PostgresSettings {
            url: url.into(),
            password_file: None,
            pool_size: 16,
            sslmode: SslMode::Require,
            ca_file: None,
            statement_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(10),
        }
    }

    /// Settings from a libpq-style URL alone (`tern store migrate`): its
    /// `sslmode` (disable | require | verify-full) and `sslrootcert` (the CA
    /// file) parameters are taken out and become the settings' own.
    pub fn from_url(url: &str) -> Result<PostgresSettings, BackendError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut settings = PostgresSettings::new(base);
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", mode)) => {
                    settings.sslmode = match mode {
                        "disable" => SslMode::Disable,
                        "require" => SslMode::Require,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(BackendError::Open(format!(
                                "sslmode={other}: use disable, require or verify-full"
                            )));
                        }
                    }
                }
                Some(("sslrootcert", file)) => settings.ca_file = Some(PathBuf::from(file)),
                _ => rest.push(pair),
            }
        }
        if !rest.is_empty() {
            settings.url = format!("{base}?{}", rest.join("&"));
        }
        Ok(settings)
    }

    pub(super) fn client_config(&self) -> Result<tokio_postgres::Config, BackendError> {
        let mut config = tokio_postgres::Config::from_str(&self.url).map_err(|e| {
            // tokio-postgres's parse errors quote no part of the URL.
            BackendError::Open(format!("[store] url is not a PostgreSQL URL: {e}"))
        })?;
        if let Some(file) = &self.password_file {
            if config.get_password().is_some() {
                return Err(BackendError::Open(
                    "[store] has a password both in url and in password_file; keep one".into(),
                ));
            }
            let text = std::fs::read_to_string(file).map_err(|e| {
                BackendError::Open(format!("[store] password_file {}: {e}", file.display()))
            })?;
            config.password(text.trim_end_matches(['\r', '\n']));
        }
        if config.get_hosts().is_empty() {
            return Err(BackendError::Open("[store] url names no host".into()));
        }
        if config.get_hosts().len() > 1
            && config.get_target_session_attrs() == tokio_postgres::config::TargetSessionAttrs::Any
        {
            // Several hosts: the writable primary, whichever it is now.
            config.target_session_attrs(tokio_postgres::config::TargetSessionAttrs::ReadWrite);
        }
        config.connect_timeout(self.connect_timeout);
        config.options(format!(
            "-c statement_timeout={} -c synchronous_commit=on",
            self.statement_timeout.as_millis()
        ));
        config.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        if config.get_application_name().is_none() {
            config.application_name("tern");
        }
        Ok(config)
    }

    /// The URL's `host:port` list for messages, without reading the
    /// password file (never the user or password).
    pub fn hosts_for_messages(&self) -> String {
        match tokio_postgres::Config::from_str(&self.url) {
            Ok(config) => self.describe_hosts(&config),
            Err(_) => "the configured database (its url does not parse)".into(),
        }
    }

    /// `host:port,host:port` for messages (never the user or password).
    pub(super) fn describe_hosts(&self, config: &tokio_postgres::Config) -> String {
        let ports = config.get_ports();
        config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let name = match host {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                };
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                format!("{name}:{port}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The TLS connector (unused when `sslmode = "disable"`).
    pub(super) fn tls(&self) -> Result<MakeRustlsConnect, BackendError> {
        let config = match self.sslmode {
            SslMode::Disable | SslMode::Require => {
                crate::tls::client::opportunistic_tls_config()
                    .map_err(|e| BackendError::Open(format!("[store] TLS: {e}")))?
            }
            SslMode::VerifyFull => crate::tls::client::verified_tls_config(self.ca_file.as_deref())
                .map_err(|e| BackendError::Open(format!("[store] TLS: {e}")))?,
        };
        // tokio-postgres-rustls takes the configuration by value.
        let config = (*config).clone();
        Ok(MakeRustlsConnect::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_come_out_of_the_url() {
        let s = PostgresSettings::from_url(
            "postgresql://tern@db1:5432,db2:5433/tern?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(s.sslmode, SslMode::VerifyFull);
        assert_eq!(
            s.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(
            s.url,
            "postgresql://tern@db1:5432,db2:5433/tern?application_name=x"
        );
        let config = s.client_config().unwrap();
        assert_eq!(s.describe_hosts(&config), "db1:5432,db2:5433");
        assert_eq!(
            config.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite,
            "several hosts: the writable one"
        );
        assert!(PostgresSettings::from_url("postgresql://h/db?sslmode=prefer").is_err());
    }

    #[test]
    fn a_password_in_both_places_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut s = PostgresSettings::new("postgresql://tern:inurl@db/tern");
        s.password_file = Some(file.clone());
        let err = s.client_config().unwrap_err().to_string();
        assert!(
            err.contains("password_file") && !err.contains("inurl"),
            "{err}"
        );
        let mut s = PostgresSettings::new("postgresql://tern@db/tern");
        s.password_file = Some(file);
        let config = s.client_config().unwrap();
        assert_eq!(
            config.get_password(),
            Some(&b"from-file"[..]),
            "file read, newline dropped"
        );
    }
}
