//! Human-friendly units in the config file: durations (`"90s"`, `"5m"`,
//! `"4h"`, `"5d"`, `"200ms"`) and sizes (`1048576`, `"25MiB"`, `"10MB"`).

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::time::Duration;

/// A duration written as a number with a unit suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    pub fn parse(text: &str) -> Result<ConfigDuration, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration {text:?} needs a unit (ms, s, m, h, d)"))?;
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("duration {text:?} must start with a whole number"))?;
        let ms_per_unit: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => {
                return Err(format!(
                    "duration {text:?} has unknown unit {other:?} (use ms, s, m, h, d)"
                ));
            }
        };
        n.checked_mul(ms_per_unit)
            .filter(|&ms| ms <= MAX_DURATION_DAYS * 86_400_000)
            .map(|ms| ConfigDuration(Duration::from_millis(ms)))
            .ok_or_else(|| format!("duration {text:?} is too long (at most {MAX_DURATION_DAYS}d)"))
    }
}

/// The longest duration the config accepts, about a century: longer is a
/// typo, and a deadline that far out must not overflow a clock.
const MAX_DURATION_DAYS: u64 = 36_500;

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(86_400_000) && ms > 0 {
            write!(f, "{}d", ms / 86_400_000)
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ConfigDuration::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A size in bytes, written as a number or a string with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("size {text:?} must start with a whole number"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "KiB" => 1024,
            "MB" => 1000 * 1000,
            "MiB" => 1024 * 1024,
            "GB" => 1000 * 1000 * 1000,
            "GiB" => 1024 * 1024 * 1024,
            other => {
                return Err(format!(
                    "size {text:?} has unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size {text:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// For people: "12.3 MiB", "2 GiB", "512 B" (one decimal below 10).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 || value >= 10.0 || value.fract() == 0.0 {
            write!(f, "{} {}", value.round(), UNITS[unit])
        } else {
            write!(f, "{:.1} {}", value, UNITS[unit])
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes or a string like \"25MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_for_people() {
        assert_eq!(ByteSize(512).to_string(), "512 B");
        assert_eq!(ByteSize(2 << 30).to_string(), "2 GiB");
        assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");
        assert_eq!(ByteSize(12 * 1024 * 1024 + 300_000).to_string(), "12 MiB");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(
            ConfigDuration::parse("90s").unwrap().0,
            Duration::from_secs(90)
        );
        assert_eq!(
            ConfigDuration::parse("5m").unwrap().0,
            Duration::from_secs(300)
        );
        assert_eq!(
            ConfigDuration::parse("4h").unwrap().0,
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(
            ConfigDuration::parse("5d").unwrap().0,
            Duration::from_secs(5 * 86400)
        );
        assert_eq!(
            ConfigDuration::parse("200ms").unwrap().0,
            Duration::from_millis(200)
        );
        assert!(ConfigDuration::parse("5").is_err());
        assert!(ConfigDuration::parse("5w").is_err());
        assert!(ConfigDuration::parse("m").is_err());
    }

    #[test]
    fn refuses_durations_too_long_for_a_clock() {
        // Found by fuzzing: the hours overflowed a u64 of seconds.
        let e = ConfigDuration::parse("3333333300000000515h").unwrap_err();
        assert!(e.contains("too long"), "{e}");
        assert!(ConfigDuration::parse("18446744073709551615ms").is_err());
        assert!(ConfigDuration::parse("36501d").is_err());
        assert_eq!(
            ConfigDuration::parse("36500d").unwrap().0,
            Duration::from_secs(36_500 * 86_400)
        );
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(ByteSize::parse("25MiB").unwrap().0, 25 * 1024 * 1024);
        assert_eq!(ByteSize::parse("1000").unwrap().0, 1000);
        assert_eq!(ByteSize::parse("10MB").unwrap().0, 10_000_000);
        assert!(ByteSize::parse("10XB").is_err());
    }
}
