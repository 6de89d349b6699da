//! `[dmarc]`: DMARC aggregate reports (RFC 7489 section 7.2) about the mail
//! Tern received, sent to the `rua` addresses of the domains that ask.

use super::{ConfigDuration, ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DmarcConfig {
    /// Record every DMARC evaluation and send aggregate reports.
    pub reports: bool,
    /// The reports' sender (RFC5322.From and envelope); its domain should
    /// have a `[[dkim]]` key, which signs them. Default: `noreply-dmarc@`
    /// the first local domain.
    pub report_from: Option<String>,
    /// `org_name` in the reports. Default: the host name.
    pub org_name: Option<String>,
    /// Length of one report window (RFC 7489's default `ri` is a day).
    pub interval: ConfigDuration,
    /// Most evaluation records kept (distinct rows; repeats only count up).
    /// Past it new rows are dropped, and the log says so.
    pub max_records: usize,
}

impl Default for DmarcConfig {
    fn default() -> Self {
        DmarcConfig {
            reports: false,
            report_from: None,
            org_name: None,
            interval: ConfigDuration(Duration::from_secs(86400)),
            max_records: 100_000,
        }
    }
}

impl DmarcConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(from) = &self.report_from
            && (!from.contains('@') || from.contains(char::is_whitespace))
        {
            return Err(invalid(
                "dmarc.report_from",
                "must be an address (local@domain)",
            ));
        }
        if self.interval.0 < Duration::from_secs(1) {
            return Err(invalid("dmarc.interval", "must be at least one second"));
        }
        Ok(())
    }
}
