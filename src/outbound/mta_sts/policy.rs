//! The MTA-STS policy file (RFC 8461 section 3.2): `key: value` lines
//! (CRLF or LF), `version: STSv1`, `mode`, `max_age` (at most a year) and
//! one `mx` line per allowed host pattern; unknown keys are ignored. Also
//! the MX-pattern match of section 4.1: exact, or `*.` standing for
//! exactly one leftmost label.

/// RFC 8461 caps `max_age` at 31557600 seconds (about a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Host patterns, lower case, without trailing dots.
    pub mx: Vec<String>,
    /// Seconds the policy may be cached.
    pub max_age: u64,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(format!("line without a colon: {line:?}"));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "version" if version.is_none() => version = Some(value.to_string()),
                "mode" if mode.is_none() => {
                    mode = Some(match value {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        other => return Err(format!("unknown mode {other:?}")),
                    })
                }
                "max_age" if max_age.is_none() => {
                    let age: u64 = value
                        .parse()
                        .ok()
                        .filter(|_| !value.is_empty() && value.len() <= 10)
                        .ok_or_else(|| format!("bad max_age {value:?}"))?;
                    max_age = Some(age.min(MAX_AGE_LIMIT));
                }
                "mx" => {
                    let pattern = value.trim_end_matches('.').to_ascii_lowercase();
                    let body = pattern.strip_prefix("*.").unwrap_or(&pattern);
                    if body.is_empty()
                        || body.contains('*')
                        || !body
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    {
                        return Err(format!("bad mx pattern {value:?}"));
                    }
                    mx.push(pattern);
                }
                _ => {} // unknown keys (and repeats) are ignored
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err("missing or unknown version (want STSv1)".into());
        }
        let mode = mode.ok_or("no mode")?;
        let max_age = max_age.ok_or("no max_age")?;
        if mode != Mode::None && mx.is_empty() {
            return Err(format!("mode {} without any mx", mode.name()));
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Does the MX host `host` match one of the policy's patterns?
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => *pattern == host,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_example() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604800);
        assert!(p.matches("mail.example.com"));
        assert!(p.matches("MAIL.Example.com."));
        assert!(p.matches("mx1.example.net"));
        assert!(!p.matches("example.net"));
        assert!(!p.matches("a.mx1.example.net"));
        assert!(!p.matches("evil-mail.example.com"));
    }

    #[test]
    fn refuses_what_rfc_8461_refuses() {
        for bad in [
            "mode: enforce\nmx: a.test\nmax_age: 60\n",
            "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 60\n",
            "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 60\n",
            "version: STSv1\nmode: enforce\nmax_age: 60\n",
            "version: STSv1\nmode: enforce\nmx: a.test\n",
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n",
            "version: STSv1\nmode: enforce\nmx: a.*.test\nmax_age: 60\n",
            "<html>not a policy</html>",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        let none =
            Policy::parse("version: STSv1\nmode: none\nmax_age: 86400\nextension: x\n").unwrap();
        assert_eq!(none.mode, Mode::None);
        let long = Policy::parse("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 99999999\n")
            .unwrap();
        assert_eq!(long.max_age, MAX_AGE_LIMIT);
    }
}
