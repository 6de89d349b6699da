//! Date parts for the `date` and `currentdate` tests (RFC 5260 section 4):
//! civil-calendar arithmetic on (UTC seconds, zone offset) pairs, no
//! dependence on the host's time zone database.

use mail_parser::DateTime;

/// The date-part names RFC 5260 defines.
pub const PARTS: &[&str] = &[
    "year", "month", "day", "date", "julian", "hour", "minute", "second", "time", "iso8601",
    "std11", "zone", "weekday",
];

/// An instant and the zone (minutes east of UTC) it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    pub utc: i64,
    pub offset: i32,
}

impl Instant {
    /// From a header date; `None` when it names no real date.
    pub fn from_header(d: &DateTime) -> Option<Instant> {
        if !(1..=12).contains(&d.month)
            || d.day == 0
            || d.day > 31
            || d.hour > 23
            || d.minute > 59
            || d.second > 60
        {
            return None;
        }
        let off = (i32::from(d.tz_hour) * 60 + i32::from(d.tz_minute))
            * if d.tz_before_gmt { -1 } else { 1 };
        let days = days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day));
        let local = days * 86400
            + i64::from(d.hour) * 3600
            + i64::from(d.minute) * 60
            + i64::from(d.second);
        Some(Instant {
            utc: local - i64::from(off) * 60,
            offset: off,
        })
    }

    /// The same instant shown in another zone.
    pub fn in_zone(self, offset: i32) -> Instant {
        Instant {
            utc: self.utc,
            offset,
        }
    }

    /// The value of `part` (lower-case name), or `None` for unknown parts.
    pub fn part(self, part: &str) -> Option<String> {
        let local = self.utc + i64::from(self.offset) * 60;
        let days = local.div_euclid(86400);
        let secs = local.rem_euclid(86400);
        let (y, mo, d) = civil_from_days(days);
        let (h, mi, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
        let sign = if self.offset < 0 { '-' } else { '+' };
        let (zh, zm) = (self.offset.abs() / 60, self.offset.abs() % 60);
        let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        Some(match part {
            "year" => format!("{y:04}"),
            "month" => format!("{mo:02}"),
            "day" => format!("{d:02}"),
            "date" => format!("{y:04}-{mo:02}-{d:02}"),
            "julian" => (days + 40587).to_string(),
            "hour" => format!("{h:02}"),
            "minute" => format!("{mi:02}"),
            "second" => format!("{s:02}"),
            "time" => format!("{h:02}:{mi:02}:{s:02}"),
            "iso8601" => {
                let z = if self.offset == 0 {
                    "Z".to_string()
                } else {
                    format!("{sign}{zh:02}:{zm:02}")
                };
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{z}")
            }
            "std11" => {
                const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
                const MN: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                let wd = WD.get(weekday as usize).copied().unwrap_or("Sun");
                let mn = MN
                    .get((mo as usize).saturating_sub(1))
                    .copied()
                    .unwrap_or("Jan");
                format!("{wd}, {d:02} {mn} {y:04} {h:02}:{mi:02}:{s:02} {sign}{zh:02}{zm:02}")
            }
            "zone" => format!("{sign}{zh:02}{zm:02}"),
            "weekday" => weekday.to_string(),
            _ => return None,
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        // 2026-12-04T22:24:08Z, a Friday, MJD 61378.
        let days = days_from_civil(2026, 12, 4);
        let t = Instant {
            utc: days * 86400 + 22 * 3600 + 24 * 60 + 8,
            offset: 0,
        };
        assert_eq!(t.part("julian").as_deref(), Some("61378"));
        assert_eq!(
            t.part("std11").as_deref(),
            Some("Fri, 04 Dec 2026 22:24:08 +0000")
        );
        assert_eq!(t.part("iso8601").as_deref(), Some("2026-12-04T22:24:08Z"));
        assert_eq!(
            t.in_zone(90).part("iso8601").as_deref(),
            Some("2026-12-04T23:54:08+01:30")
        );
        assert_eq!(t.in_zone(-600).part("weekday").as_deref(), Some("5"));
        assert_eq!(civil_from_days(days), (2026, 12, 4));
    }
}
