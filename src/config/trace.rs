//! `[trace]`: how long the decisions about refused attempts, and about
//! messages after they left the store, are kept (`crate::trace`).

use super::{ConfigDuration, ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConfig {
    /// How long a refused attempt's trace is kept, and a message's once the
    /// message has left the store (delivered elsewhere, expunged). While a
    /// message is stored or queued its trace stays with it.
    pub keep: ConfigDuration,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            keep: ConfigDuration(Duration::from_secs(7 * 86400)),
        }
    }
}

impl TraceConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.keep.0 < Duration::from_secs(1) {
            return Err(invalid("trace.keep", "must be at least one second"));
        }
        Ok(())
    }
}
