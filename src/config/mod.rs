//! The configuration: the TOML schema of DESIGN.md, its built-in defaults, and
//! validation with errors that name the key (and line) at fault. Unknown keys
//! are an error. Relative paths are resolved against the config file's folder.

mod auth;
mod dmarc;
mod limits;
mod listen;
mod plugin;
mod relay;
mod sieve;
mod store;
mod tls;
mod trace;
mod units;
mod users;

pub use auth::{AuthConfig, AuthOverride, DkimAlgorithm, DkimKeyConfig, DmarcAction, SpfAction};
pub use dmarc::DmarcConfig;
pub use limits::{LimitsConfig, LogFormat, MetricsConfig};
pub use listen::{Listen, Protocol, default_listeners};
pub use plugin::{OnError, PluginConfig};
pub use relay::{RelayConfig, SmarthostTls};
pub use sieve::SieveConfig;
pub use store::{StoreBackend, StoreConfig, StoreSslMode};
pub use tls::{CertificateEntry, CertificateSetting, TlsConfig};
pub use trace::TraceConfig;
pub use units::{ByteSize, ConfigDuration};
pub use users::{UsersConfig, parse_quota};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config: {key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    pub nameservers: Option<Vec<SocketAddr>>,
    /// How long one query waits for an answer (tried twice).
    pub timeout: ConfigDuration,
    /// DNSSEC for DANE (RFC 7672): "off", or "validate" (Tern checks the
    /// signatures itself, from `trust_anchor`).
    pub dnssec: DnssecMode,
    /// DNSKEY records (zone-file syntax) trusted as anchors; default the
    /// root zone's KSKs compiled into hickory.
    pub trust_anchor: Option<std::path::PathBuf>,
}

/// `dns.dnssec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnssecMode {
    /// No DNSSEC: DANE never applies.
    #[default]
    Off,
    /// Validate answers from `trust_anchor` up (hickory's own validation).
    Validate,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: None,
            timeout: ConfigDuration(Duration::from_secs(5)),
            dnssec: DnssecMode::Off,
            trust_anchor: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub retry_intervals: Vec<ConfigDuration>,
    pub max_lifetime: ConfigDuration,
    pub delay_warning_after: ConfigDuration,
    pub max_concurrent_deliveries: usize,
    /// Connections at once to one destination (domain or smarthost).
    pub max_per_destination: usize,
    /// The longest wait for any one reply of a next hop (and for the
    /// connection); absent: RFC 5321's per-step times (2 to 10 minutes).
    pub reply_timeout: Option<ConfigDuration>,
    /// With a shared store (PostgreSQL, several nodes): how long a node's
    /// claim on a delivery lasts unless renewed (it is renewed every third
    /// of this while the delivery runs); a dead node's deliveries are taken
    /// over when it lapses. Nodes also look for such work this often.
    pub lease: ConfigDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        let m = |s: u64| ConfigDuration(Duration::from_secs(s * 60));
        QueueConfig {
            retry_intervals: vec![m(1), m(5), m(15), m(30), m(60), m(120), m(240)],
            max_lifetime: ConfigDuration(Duration::from_secs(5 * 86400)),
            delay_warning_after: ConfigDuration(Duration::from_secs(4 * 3600)),
            max_concurrent_deliveries: 64,
            max_per_destination: 20,
            reply_timeout: None,
            lease: ConfigDuration(Duration::from_secs(60)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    pub sender_domain_must_resolve: bool,
    pub recipient_domain_must_resolve: bool,
    pub local_sender_needs_auth: bool,
    pub sender_must_match_login: bool,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            sender_domain_must_resolve: false,
            recipient_domain_must_resolve: false,
            local_sender_needs_auth: true,
            sender_must_match_login: true,
        }
    }
}

/// The whole configuration, as written in the file (with defaults filled in).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub hostname: String,
    /// This node's name among the nodes sharing one store (Received
    /// headers, logs, metrics, queue listings and leases); default: the
    /// machine's host name. Must be unique within a cluster.
    pub node_id: String,
    pub data_dir: PathBuf,
    pub local_domains: Vec<String>,
    pub aliases: BTreeMap<String, Vec<String>>,
    pub listen: Vec<Listen>,
    pub tls: TlsConfig,
    pub relay: RelayConfig,
    pub dns: DnsConfig,
    pub queue: QueueConfig,
    pub limits: LimitsConfig,
    pub checks: ChecksConfig,
    pub auth: AuthConfig,
    pub dkim: Vec<DkimKeyConfig>,
    pub plugin: Vec<PluginConfig>,
    /// Log lines as text (default) or one JSON object per line.
    pub log_format: LogFormat,
    pub metrics: MetricsConfig,
    /// DMARC aggregate reports.
    pub dmarc: DmarcConfig,
    /// The engine holding Tern's state (absent: sled in `data_dir`).
    pub store: StoreConfig,
    /// The account `tern serve` runs as once its listeners are bound when
    /// started as root (absent: stays root, with a warning; "root": stays
    /// root, no warning).
    pub user: Option<String>,
    /// Its group (absent: the user's primary group).
    pub group: Option<String>,
    /// Limits on users' Sieve scripts.
    pub sieve: SieveConfig,
    /// What applies to every local account (the default quota).
    pub users: UsersConfig,
    /// How long decision traces are kept (`tern trace`).
    pub trace: TraceConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            node_id: String::new(),
            data_dir: PathBuf::from("data"),
            local_domains: vec!["localhost".into()],
            aliases: BTreeMap::new(),
            listen: Vec::new(),
            tls: TlsConfig::default(),
            relay: RelayConfig::default(),
            dns: DnsConfig::default(),
            queue: QueueConfig::default(),
            limits: LimitsConfig::default(),
            checks: ChecksConfig::default(),
            auth: AuthConfig::default(),
            dkim: Vec::new(),
            plugin: Vec::new(),
            log_format: LogFormat::Text,
            metrics: MetricsConfig::default(),
            dmarc: DmarcConfig::default(),
            store: StoreConfig::default(),
            user: None,
            group: None,
            sieve: SieveConfig::default(),
            users: UsersConfig::default(),
            trace: TraceConfig::default(),
        }
    }
}

/// The machine's host name (gethostname), the default `node_id`.
fn machine_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = String::from_utf8_lossy(&buf[..end])
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The default config file, used when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/tern.toml";

impl Config {
    /// Loads `path`, or the default file if it exists, or the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::from_file(p),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                Config::from_file(Path::new(DEFAULT_CONFIG_PATH))
            }
            None => {
                let mut c = Config::default();
                c.finish(Path::new("."))?;
                Ok(c)
            }
        }
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Config::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text; relative paths are taken against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: describe_toml_error(text, &e),
        })?;
        c.finish(base)?;
        Ok(c)
    }

    /// Fills defaults that depend on other keys, resolves paths, validates.
    fn finish(&mut self, base: &Path) -> Result<(), ConfigError> {
        if self.listen.is_empty() {
            self.listen = default_listeners();
        }
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data_dir);
        self.tls.resolve_paths(base);
        self.store.resolve_paths(base);
        for p in [&mut self.relay.smarthost_ca, &mut self.relay.tls_ca]
            .into_iter()
            .flatten()
        {
            resolve(p);
        }
        for k in &mut self.dkim {
            resolve(&mut k.private_key);
            k.domain = k.domain.trim().to_ascii_lowercase();
        }
        self.auth.forwarders = std::mem::take(&mut self.auth.forwarders)
            .into_iter()
            .map(|(k, v)| (k.trim().trim_end_matches('.').to_ascii_lowercase(), v))
            .collect();
        for p in &mut self.plugin {
            resolve(&mut p.path);
            if let Some(d) = p.directory.as_mut() {
                resolve(d);
            }
        }
        self.hostname = self.hostname.trim().to_string();
        self.node_id = self.node_id.trim().to_string();
        if self.node_id.is_empty() {
            self.node_id = machine_hostname().unwrap_or_else(|| self.hostname.clone());
        }
        self.local_domains = self
            .local_domains
            .iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .collect();
        self.aliases = std::mem::take(&mut self.aliases)
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.into_iter().map(|t| t.to_ascii_lowercase()).collect(),
                )
            })
            .collect();
        self.validate()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.hostname.is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(invalid("hostname", "must be a host name without spaces"));
        }
        if self.node_id.len() > 64
            || !self
                .node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "node_id",
                "must be up to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if self
            .local_domains
            .iter()
            .any(|d| d.is_empty() || d.contains('@'))
        {
            return Err(invalid("local_domains", "each entry must be a domain name"));
        }
        for (from, to) in &self.aliases {
            if !from.contains('@') {
                return Err(invalid(
                    &format!("aliases.\"{from}\""),
                    "an alias must be a full address (local@domain)",
                ));
            }
            if to.is_empty() || to.iter().any(|t| !t.contains('@')) {
                return Err(invalid(
                    &format!("aliases.\"{from}\""),
                    "targets must be a non-empty list of full addresses",
                ));
            }
        }
        listen::validate(&self.listen, &self.relay)?;
        self.tls.validate()?;
        if self.queue.retry_intervals.is_empty() {
            return Err(invalid(
                "queue.retry_intervals",
                "needs at least one interval",
            ));
        }
        if self.queue.max_concurrent_deliveries == 0 {
            return Err(invalid(
                "queue.max_concurrent_deliveries",
                "must be at least 1",
            ));
        }
        if self.queue.lease.0 < Duration::from_secs(3) {
            return Err(invalid("queue.lease", "must be at least 3s"));
        }
        self.limits.validate()?;
        self.relay.validate()?;
        auth::validate(&self.auth, &self.dkim)?;
        self.dmarc.validate()?;
        self.trace.validate()?;
        self.store.validate()?;
        for (key, value) in [("user", &self.user), ("group", &self.group)] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.contains(['\0', ':', '/']))
            {
                return Err(invalid(key, "must be an account name"));
            }
        }
        if self.group.is_some() && self.user.is_none() {
            return Err(invalid("group", "needs user (the account to run as)"));
        }
        self.sieve.validate()?;
        self.users.validate()?;
        let mut names = std::collections::HashSet::new();
        for p in &self.plugin {
            if !names.insert(p.name.as_str()) {
                return Err(invalid(
                    "plugin",
                    format!("two plugins are named {:?}", p.name),
                ));
            }
            let most = crate::hooks::held::MAX_HELD_LIMIT;
            if !(1..=most).contains(&p.max_connections) {
                return Err(invalid(
                    "plugin.max_connections",
                    format!(
                        "plugin {:?}: max_connections = {} is out of range (1 to {most})",
                        p.name, p.max_connections
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Is `domain` one of ours (case-insensitive)?
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.local_domains.contains(&d)
    }

    /// Is this client address in `relay.trusted_networks`?
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        in_networks(&self.relay.trusted_networks, ip)
    }
}

/// Is `ip` in one of `networks`? An IPv4-mapped IPv6 address (a dual-stack
/// listener's view of an IPv4 client) counts as its IPv4 address.
pub fn in_networks(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    networks.iter().any(|n| n.contains(&ip))
}

/// toml's message, with the line number spelled out and, when the error
/// is in a value, the key it belongs to.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().to_string();
    let Some(span) = e.span() else {
        return msg;
    };
    let at = span.start.min(text.len());
    let line = text[..at].matches('\n').count() + 1;
    match key_of_value_at(text, at) {
        Some(key) => format!("line {line}: {key}: {msg}"),
        None => format!("line {line}: {msg}"),
    }
}

/// The key of a `key = value` line when `at` lies in its value.
fn key_of_value_at(text: &str, at: usize) -> Option<&str> {
    let line_start = text.get(..at)?.rfind('\n').map_or(0, |p| p + 1);
    let (key, _) = text[line_start..at].split_once('=')?;
    let key = key.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"');
    (!key.is_empty() && key.chars().all(bare)).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_every_listener() {
        let c = Config::from_toml("", Path::new("/etc/tern")).unwrap();
        assert_eq!(c.listen.len(), 9);
        assert_eq!(c.hostname, "localhost");
        assert_eq!(c.data_dir, PathBuf::from("/etc/tern/data"));
        assert!(c.is_local_domain("LOCALHOST"));
    }

    /// The error loading `text` gives, as the user reads it.
    fn error_of(text: &str) -> String {
        Config::from_toml(text, Path::new("."))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = error_of("hostname = \"a.test\"\n\n[limits]\nmax_mesage_size = 5\n");
        assert!(err.contains("max_mesage_size"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn a_bad_value_is_named_by_its_key_and_line() {
        let err = error_of(
            "[limits]\nmax_message_size = \"10MiB\"\ncommand_timeout = \"5 fortnights\"\n",
        );
        assert!(err.contains("line 3: command_timeout: duration"), "{err}");
        // An error that is not in a value names no key.
        let err = error_of("[limits\n");
        assert!(err.contains("line 1: "), "{err}");
        assert!(!err.contains("limits:"), "{err}");
    }

    #[test]
    fn parses_the_design_example() {
        let text = r#"
hostname = "mx.example.test"
data_dir = "data"
local_domains = ["example.test"]
[aliases]
"postmaster@example.test" = ["alice@example.test"]
[[listen]]
protocol = "smtp"
address = "127.0.0.1:2525"
[tls]
allow_plaintext_auth = false
[relay]
trusted_networks = ["127.0.0.0/8"]
smarthost = "127.0.0.1:24025"
mx_port = 25
[dns]
nameservers = ["127.0.0.1:5353"]
[queue]
retry_intervals = ["1m", "5m"]
max_lifetime = "5d"
delay_warning_after = "4h"
max_concurrent_deliveries = 64
[limits]
max_message_size = "25MiB"
max_recipients = 100
max_connections = 1000
command_timeout = "5m"
[checks]
sender_domain_must_resolve = true
[[plugin]]
name = "no-nobody"
path = "plugins/no_nobody.wasm"
config = { domain = "example.test" }
max_memory = "32MiB"
timeout = "200ms"
on_error = "tempfail"
"#;
        let c = Config::from_toml(text, Path::new("/srv")).unwrap();
        assert_eq!(c.listen.len(), 1);
        assert!(c.is_trusted("127.0.0.9".parse().unwrap()));
        assert!(!c.is_trusted("10.0.0.1".parse().unwrap()));
        assert_eq!(c.limits.max_message_size.0, 25 * 1024 * 1024);
        assert_eq!(
            c.plugin[0].path,
            PathBuf::from("/srv/plugins/no_nobody.wasm")
        );
        assert!(c.checks.sender_domain_must_resolve);
    }
}
