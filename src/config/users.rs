//! `[users]`: what applies to every local account unless the account says
//! otherwise; for now the storage quota (`default_quota`), which `tern
//! user quota` overrides per user.

use super::{ByteSize, ConfigError, invalid};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsersConfig {
    /// Bytes of mail a user may keep (absent or "none": no limit).
    #[serde(deserialize_with = "quota_setting")]
    pub default_quota: Option<ByteSize>,
}

impl UsersConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.default_quota.is_some_and(|q| q.0 == 0) {
            return Err(invalid(
                "users.default_quota",
                "must be at least 1 byte (\"none\" for no quota)",
            ));
        }
        Ok(())
    }
}

/// A quota as written: a size, or "none" for no limit.
pub fn parse_quota(text: &str) -> Result<Option<ByteSize>, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    ByteSize::parse(text).map(Some)
}

fn quota_setting<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ByteSize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(u64),
        Text(String),
    }
    match Written::deserialize(d)? {
        Written::Number(n) => Ok(Some(ByteSize(n))),
        Written::Text(t) => parse_quota(&t).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UsersConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn quota_is_a_size_or_none() {
        assert_eq!(parse("").unwrap().default_quota, None);
        assert_eq!(
            parse("default_quota = \"2GiB\"").unwrap().default_quota,
            Some(ByteSize(2 << 30))
        );
        assert_eq!(
            parse("default_quota = 1000").unwrap().default_quota,
            Some(ByteSize(1000))
        );
        assert_eq!(
            parse("default_quota = \"none\"").unwrap().default_quota,
            None
        );
        assert!(parse("default_quota = \"2 parsecs\"").is_err());
        assert!(parse("default_quota = 0").unwrap().validate().is_err());
        assert!(parse("default_quota = \"1B\"").unwrap().validate().is_ok());
        assert!(parse("quota = 1").is_err());
    }
}
