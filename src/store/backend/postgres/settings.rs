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
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(10),
        }
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
                let any = crate::outbound::tls::opportunistic_tls_config()
                    .map_err(|e| BackendError::Open(format!("[store] TLS: {e}")))?;
                (*any).clone()
            }
            SslMode::VerifyFull => {
                let mut roots = rustls::RootCertStore::empty();
                match &self.ca_file {
                    Some(file) => {
                        let pem = std::fs::read(file).map_err(|e| {
                            BackendError::Open(format!("[store] ca_file {}: {e}", file.display()))
                        })?;
                        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                            let cert = cert.map_err(|e| {
                                BackendError::Open(format!(
                                    "[store] ca_file {}: {e}",
                                    file.display()
                                ))
                            })?;
                            roots.add(cert).map_err(|e| {
                                BackendError::Open(format!(
                                    "[store] ca_file {}: {e}",
                                    file.display()
                                ))
                            })?;
                        }
                    }
                    None => {
                        let found = rustls_native_certs::load_native_certs();
                        for cert in found.certs {
                            // A system certificate rustls cannot use is skipped.
                            let _ = roots.add(cert);
                        }
                    }
                }
                if roots.is_empty() {
                    return Err(BackendError::Open(
                        "[store] sslmode = \"verify-full\" but no CA certificate was found".into(),
                    ));
                }
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| BackendError::Open(format!("[store] TLS: {e}")))?
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }
}
