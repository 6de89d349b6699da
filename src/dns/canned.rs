//! Canned DNS answers read from a file (`tern plugin test --dns FILE`): one
//! record a line in zone-file form, `name. [TTL] [IN] TYPE value`, for the
//! types the plugin `dns` import asks about (A, AAAA, MX, TXT). A name the
//! file does not give answers "no such records" (as NXDOMAIN), and so does
//! a type it does not give for a name that is there (NODATA); nothing is
//! ever asked of the network. Parsing only: the answers are served by
//! `Dns` (see `Dns::canned`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A line of the file that is not a record this reader takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} ({text:?}): {why}")]
pub struct CannedError {
    /// Counted from 1.
    pub line: usize,
    pub text: String,
    pub why: String,
}

/// Every record of the file, by lower-case name without the final dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Canned {
    names: HashMap<String, Records>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Records {
    a: Vec<Ipv4Addr>,
    aaaa: Vec<Ipv6Addr>,
    mx: Vec<(u16, String)>,
    txt: Vec<String>,
}

/// The record types a line may give.
const TYPES: &str = "A, AAAA, MX or TXT";

impl Canned {
    /// Reads the file's text: blank lines and comments (from `;` or `#`
    /// outside quotes to the end of the line) are skipped; any other line
    /// must be a record, else the error names it.
    pub fn parse(text: &str) -> Result<Canned, CannedError> {
        let mut canned = Canned::default();
        for (i, line) in text.lines().enumerate() {
            let fail = |why: String| CannedError {
                line: i + 1,
                text: line.trim().to_string(),
                why,
            };
            let words = words(line).map_err(|why| fail(why.to_string()))?;
            if words.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                return Err(fail(
                    "starts with a space: a record starts with its name".into(),
                ));
            }
            canned.add(&words).map_err(fail)?;
        }
        Ok(canned)
    }

    fn add(&mut self, words: &[Word]) -> Result<(), String> {
        let name = key(&words[0].text);
        if name.is_empty() || words[0].quoted {
            return Err("no name".into());
        }
        // The TTL and the class are optional, in either order.
        let mut rest = &words[1..];
        while let Some(w) = rest.first()
            && !w.quoted
            && (w.text.eq_ignore_ascii_case("IN") || w.text.bytes().all(|b| b.is_ascii_digit()))
        {
            rest = &rest[1..];
        }
        let Some((rtype, value)) = rest.split_first() else {
            return Err(format!("no record type (want {TYPES})"));
        };
        let records = self.names.entry(name).or_default();
        let one = |what: &str| -> Result<&str, String> {
            match value {
                [v] if !v.quoted => Ok(v.text.as_str()),
                _ => Err(format!("{} wants one {what}", rtype.text)),
            }
        };
        match rtype.text.to_ascii_uppercase().as_str() {
            "A" => {
                let v = one("IPv4 address")?;
                let ip = v
                    .parse()
                    .map_err(|_| format!("{v:?} is not an IPv4 address"))?;
                records.a.push(ip);
            }
            "AAAA" => {
                let v = one("IPv6 address")?;
                let ip = v
                    .parse()
                    .map_err(|_| format!("{v:?} is not an IPv6 address"))?;
                records.aaaa.push(ip);
            }
            "MX" => {
                let [preference, exchange] = value else {
                    return Err("MX wants a preference and a host (10 mx.example.)".into());
                };
                let preference = preference
                    .text
                    .parse()
                    .map_err(|_| format!("MX preference {:?} is not 0-65535", preference.text))?;
                let exchange = exchange.text.trim_end_matches('.').to_ascii_lowercase();
                records.mx.push((preference, exchange));
            }
            "TXT" => {
                if value.is_empty() {
                    return Err("TXT wants a value (\"v=spf1 -all\")".into());
                }
                // The record's strings joined, as the resolver gives them.
                records
                    .txt
                    .push(value.iter().map(|w| w.text.as_str()).collect());
            }
            other => {
                return Err(format!(
                    "record type {other:?} is not one this file takes (want {TYPES})"
                ));
            }
        }
        Ok(())
    }

    fn records(&self, name: &str) -> Option<&Records> {
        self.names.get(&key(name))
    }

    /// The A (`v4`) or AAAA records of `name`; empty: none.
    pub fn addresses(&self, name: &str, v4: bool) -> Vec<IpAddr> {
        let Some(r) = self.records(name) else {
            return Vec::new();
        };
        if v4 {
            r.a.iter().copied().map(IpAddr::V4).collect()
        } else {
            r.aaaa.iter().copied().map(IpAddr::V6).collect()
        }
    }

    /// The MX records of `name` as (preference, exchange without the dot).
    pub fn mx(&self, name: &str) -> Vec<(u16, String)> {
        self.records(name).map(|r| r.mx.clone()).unwrap_or_default()
    }

    /// The TXT records of `name`, each one's strings joined.
    pub fn txt(&self, name: &str) -> Vec<String> {
        self.records(name)
            .map(|r| r.txt.clone())
            .unwrap_or_default()
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A word of a line: bare, or a quoted string (TXT) with `\"` and `\\`.
#[derive(Debug)]
struct Word {
    text: String,
    quoted: bool,
}

/// The words of a line, up to a comment.
fn words(line: &str) -> Result<Vec<Word>, &'static str> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == ';' || c == '#' {
            break;
        } else if c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => return Err("a quoted string is not closed"),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped) => text.push(escaped),
                        None => return Err("a quoted string is not closed"),
                    },
                    Some(other) => text.push(other),
                }
            }
            out.push(Word { text, quoted: true });
        } else {
            let mut text = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' || c == ';' {
                    break;
                }
                text.push(c);
                chars.next();
            }
            out.push(Word {
                text,
                quoted: false,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_each_type_with_or_without_ttl_and_class() {
        let c = Canned::parse(
            "; a DNS list\n\
             2.0.0.127.zen.test. 300 IN A 127.0.0.2\n\
             2.0.0.127.zen.test.  TXT \"listed \\\"here\\\"\" \" see x\" ; why\n\
             \n\
             Example.Test. IN 60 MX 10 MX.example.test.\n\
             example.test MX 20 mx2.example.test\n\
             v6.test. AAAA 2001:db8::1   # comment\n",
        )
        .unwrap();
        assert_eq!(
            c.addresses("2.0.0.127.ZEN.test", true),
            vec!["127.0.0.2".parse::<IpAddr>().unwrap()]
        );
        assert!(c.addresses("2.0.0.127.zen.test.", false).is_empty());
        assert_eq!(c.txt("2.0.0.127.zen.test"), vec!["listed \"here\" see x"]);
        assert_eq!(
            c.mx("example.test."),
            vec![
                (10, "mx.example.test".to_string()),
                (20, "mx2.example.test".to_string())
            ]
        );
        assert_eq!(
            c.addresses("v6.test", false),
            vec!["2001:db8::1".parse::<IpAddr>().unwrap()]
        );
        assert!(c.addresses("absent.test", true).is_empty());
    }

    #[test]
    fn a_bad_line_is_named() {
        for (text, line, why) in [
            (
                "ok.test. A 192.0.2.1\nbad.test. A 300.1.1.1\n",
                2,
                "not an IPv4",
            ),
            ("x.test. 300\n", 1, "no record type"),
            ("x.test. PTR y.test.\n", 1, "not one this file takes"),
            ("x.test. MX mx.test.\n", 1, "preference and a host"),
            ("x.test. TXT \"open\n", 1, "not closed"),
            ("\n  x.test. A 192.0.2.1\n", 2, "starts with a space"),
            ("x.test. AAAA 192.0.2.1\n", 1, "not an IPv6"),
        ] {
            let e = Canned::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(why), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line} (")), "{e}");
        }
    }
}
