//! `[[plugin]]`: one WebAssembly plugin — its file, its settings, its
//! limits (memory, time per call), what a failed call means, and the
//! directory and network it is granted.

use super::{ByteSize, ConfigDuration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// What happens when a plugin call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    #[default]
    Tempfail,
    Continue,
    Reject,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default = "default_plugin_memory")]
    pub max_memory: ByteSize,
    #[serde(default = "default_plugin_timeout")]
    pub timeout: ConfigDuration,
    #[serde(default)]
    pub on_error: OnError,
    /// A directory the plugin may read and write (storage plugins).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Outgoing TCP the plugin may open (`host:port`; a name resolves
    /// through Tern's resolver); empty: no network.
    #[serde(default)]
    pub connect: Vec<String>,
    /// URL prefixes the plugin may send HTTP requests under (WASI HTTP);
    /// empty: none.
    #[serde(default)]
    pub http: Vec<String>,
    /// Most connections (TCP sockets and HTTP requests) the plugin holds
    /// at once, all its instances together (`hooks/held.rs`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    crate::hooks::held::DEFAULT_MAX_HELD
}

fn default_plugin_memory() -> ByteSize {
    ByteSize(32 * 1024 * 1024)
}

fn default_plugin_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_millis(200))
}
