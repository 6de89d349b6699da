//! `[sieve]`: limits on users' Sieve scripts, enforced wherever a script is
//! saved (ManageSieve's PUTSCRIPT and HAVESPACE, `tern sieve put`).

use super::{ByteSize, ConfigError, invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SieveConfig {
    /// Largest script a user may save, in bytes.
    pub max_script_size: ByteSize,
    /// Most scripts one user may keep (active or not).
    pub max_scripts: usize,
    /// Most `redirect` actions one run of a script may take; announced by
    /// ManageSieve as MAXREDIRECTS.
    pub max_redirects: usize,
}

impl Default for SieveConfig {
    fn default() -> Self {
        SieveConfig {
            max_script_size: ByteSize(64 * 1024),
            max_scripts: 16,
            max_redirects: 4,
        }
    }
}

impl SieveConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_script_size.0 == 0 {
            return Err(invalid("sieve.max_script_size", "must be at least 1 byte"));
        }
        if self.max_script_size.0 > 16 * 1024 * 1024 {
            return Err(invalid("sieve.max_script_size", "must be at most 16MiB"));
        }
        if self.max_scripts == 0 {
            return Err(invalid("sieve.max_scripts", "must be at least 1"));
        }
        Ok(())
    }
}
