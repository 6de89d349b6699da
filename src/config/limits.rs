//! The `[limits]` and `[metrics]` sections and `log_format`: how much any
//! one client, session or user may take, and what the server reports about
//! itself. Compatible additions to DESIGN.md's config: every new key has a
//! default, so old files keep working.

use super::{ByteSize, ConfigDuration, ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_message_size: ByteSize,
    pub max_recipients: usize,
    pub max_connections: usize,
    pub command_timeout: ConfigDuration,
    /// Protocol errors in one session before it is closed with 421.
    pub max_errors: u32,
    /// Connections open at once from one client address (every listener
    /// together); more get the protocol's "too busy" answer (SMTP 421 4.7.0).
    /// Clients in `relay.trusted_networks` are exempt.
    pub max_connections_per_client: usize,
    /// Commands in one SMTP or POP3 session; then 421 4.7.0 / -ERR and close.
    pub max_commands_per_session: u32,
    /// Failed logins from one address (within 15 minutes of the last one)
    /// after which its logins are refused without checking the password.
    pub max_auth_failures: u32,
    /// Wait after a failed login; doubles with each recent failure from the
    /// same address, up to 64 times this.
    pub auth_failure_delay: ConfigDuration,
    /// Accounts whose last successful password check is remembered (as a
    /// keyed digest, never the password), so logging in again skips the
    /// argon2 check while the stored hash is unchanged; 0 (the default,
    /// as Dovecot's): off. Counted in accounts.
    pub auth_cache_size: usize,
    /// How long a remembered check stays valid (Dovecot's `auth_cache_ttl`).
    pub auth_cache_ttl: ConfigDuration,
    /// Sessions logged in at once as one user (SMTP AUTH, POP3, IMAP).
    pub max_sessions_per_user: usize,
    /// MIME parts in one message (counted as it arrives); more → 554 5.6.0.
    /// Bounds what filters, mail-auth and IMAP are ever asked to parse.
    pub max_mime_parts: usize,
    /// Size of a message's header section; bigger → 552 5.3.4. Bounds the
    /// header list a filter plugin gets.
    pub max_header_size: ByteSize,
    /// Free disk space below which new mail is refused with 452 4.3.1 (at
    /// MAIL, counting the declared SIZE; and during DATA when it falls
    /// below half of this). Mail already accepted is never at risk.
    pub min_free_space: ByteSize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_size: ByteSize(25 * 1024 * 1024),
            max_recipients: 100,
            max_connections: 1000,
            command_timeout: ConfigDuration(Duration::from_secs(300)),
            max_errors: 10,
            max_connections_per_client: 50,
            max_commands_per_session: 10_000,
            max_auth_failures: 10,
            auth_failure_delay: ConfigDuration(Duration::from_millis(500)),
            auth_cache_size: 0,
            auth_cache_ttl: ConfigDuration(Duration::from_secs(3600)),
            max_sessions_per_user: 20,
            max_mime_parts: 1000,
            max_header_size: ByteSize(256 * 1024),
            min_free_space: ByteSize(64 * 1024 * 1024),
        }
    }
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = [
            ("limits.max_recipients", self.max_recipients),
            ("limits.max_connections", self.max_connections),
            (
                "limits.max_connections_per_client",
                self.max_connections_per_client,
            ),
            (
                "limits.max_commands_per_session",
                self.max_commands_per_session as usize,
            ),
            ("limits.max_auth_failures", self.max_auth_failures as usize),
            ("limits.max_sessions_per_user", self.max_sessions_per_user),
            ("limits.max_mime_parts", self.max_mime_parts),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.max_header_size.0 < 1024 {
            return Err(invalid("limits.max_header_size", "must be at least 1KiB"));
        }
        Ok(())
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics` is served over plain HTTP; absent: off.
    pub address: Option<SocketAddr>,
}

/// `log_format` (top level, next to `hostname`: logging is the process's,
/// not one listener's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
