//! Test evaluation for the interpreter: each test of RFC 5228 and the
//! extensions turned into the values it examines (headers, addresses,
//! envelope parts, body parts, flags, date parts), then matched with
//! [`crate::matching`], setting the match variables on success.

use crate::action::split_flags;
use crate::compile_test::parse_zone;
use crate::date::Instant;
use crate::error::RuntimeError;
use crate::interp::{Frame, Run};
use crate::matching::{compile_regex, match_count, match_value, regex_match};
use crate::message::Addr;
use crate::script::{AddressPart, BodyTransform, Index, MatchType, Matcher, Test, Zone};

impl Run<'_> {
    pub(crate) fn test(&mut self, t: &Test, f: &mut Frame) -> Result<bool, RuntimeError> {
        self.step()?;
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t, f)?,
            Test::AllOf(ts) => {
                for t in ts {
                    if !self.test(t, f)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(ts) => {
                for t in ts {
                    if self.test(t, f)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => f.expand_all(names).iter().all(|n| self.msg.exists(n)),
            Test::Size { over, limit } => {
                if *over {
                    self.msg.size() > *limit
                } else {
                    self.msg.size() < *limit
                }
            }
            Test::Header {
                m,
                index,
                headers,
                keys,
            } => {
                let mut values = Vec::new();
                for h in f.expand_all(headers) {
                    values.extend(pick(self.msg.header_values(&h), *index));
                }
                self.matches(*m, &values, keys, f)
            }
            Test::Address {
                m,
                part,
                index,
                headers,
                keys,
            } => {
                let mut values = Vec::new();
                for h in f.expand_all(headers) {
                    for addrs in pick(self.msg.addresses(&h), *index) {
                        values.extend(addrs.iter().filter_map(|a| address_part(a, *part)));
                    }
                }
                self.matches(*m, &values, keys, f)
            }
            Test::Envelope {
                m,
                part,
                fields,
                keys,
            } => {
                let mut values = Vec::new();
                for field in f.expand_all(fields) {
                    let a = match field.to_ascii_lowercase().as_str() {
                        "from" => &self.ctx.envelope.from,
                        "to" => &self.ctx.envelope.to,
                        _ => continue,
                    };
                    if a.is_empty() || a == "<>" {
                        values.push(String::new());
                    } else if let Some(v) = address_part(&Addr::split(a), *part) {
                        values.push(v);
                    }
                }
                self.matches(*m, &values, keys, f)
            }
            Test::Body { m, transform, keys } => {
                let values = match transform {
                    BodyTransform::Raw => vec![self.msg.raw_body()],
                    BodyTransform::Text => self.msg.text_parts(),
                    BodyTransform::Content(types) => self.msg.body_parts(&f.expand_all(types)),
                };
                self.matches(*m, &values, keys, f)
            }
            Test::String { m, sources, keys } => {
                let mut values = f.expand_all(sources);
                if matches!(m.kind, MatchType::Count(_)) {
                    values.retain(|v| !v.is_empty());
                }
                self.matches(*m, &values, keys, f)
            }
            Test::HasFlag { m, variables, keys } => {
                let values = match variables {
                    Some(vs) => split_flags(
                        vs.iter()
                            .map(|v| f.vars.expand(&format!("${{{v}}}")))
                            .collect::<Vec<_>>()
                            .iter()
                            .map(String::as_str),
                    ),
                    None => self.flags.clone(),
                };
                self.matches(*m, &values, keys, f)
            }
            Test::Date {
                m,
                zone,
                index,
                header,
                part,
                keys,
            } => {
                let part = f.expand(part);
                let dates = pick(self.msg.dates(&f.expand(header)), *index);
                let values: Vec<String> = dates
                    .into_iter()
                    .flatten()
                    .filter_map(|d| Instant::from_header(&d))
                    .filter_map(|i| self.zoned(i, zone).part(&part))
                    .collect();
                self.matches(*m, &values, keys, f)
            }
            Test::CurrentDate {
                m,
                zone,
                part,
                keys,
            } => {
                let now = Instant {
                    utc: self.ctx.now,
                    offset: self.ctx.zone,
                };
                let values: Vec<String> = self
                    .zoned(now, zone)
                    .part(&f.expand(part))
                    .into_iter()
                    .collect();
                self.matches(*m, &values, keys, f)
            }
            Test::MailboxExists(names) => f
                .expand_all(names)
                .iter()
                .all(|n| self.env.mailbox_exists(n)),
        })
    }

    fn zoned(&self, i: Instant, zone: &Zone) -> Instant {
        match zone {
            Zone::Original => i,
            Zone::Local => i.in_zone(self.ctx.zone),
            Zone::Fixed(z) => i.in_zone(parse_zone(z).unwrap_or(0)),
        }
    }

    /// Matches any of `values` against any of `keys`, setting match variables.
    fn matches(&mut self, m: Matcher, values: &[String], keys: &[String], f: &mut Frame) -> bool {
        let keys = f.expand_all(keys);
        if matches!(m.kind, MatchType::Count(_)) {
            return match_count(m, values.len(), &keys);
        }
        // Each :regex key is compiled once for all values.
        let regexes: Vec<Option<regex::Regex>> = match m.kind {
            MatchType::Regex => keys.iter().map(|k| compile_regex(m, k)).collect(),
            _ => Vec::new(),
        };
        for v in values {
            for (i, k) in keys.iter().enumerate() {
                let mut caps = None;
                let hit = match regexes.get(i) {
                    Some(re) => re.as_ref().is_some_and(|re| regex_match(re, v, &mut caps)),
                    None => match_value(m, v, k, &mut caps),
                };
                if hit {
                    if let (Some(c), true) = (caps, f.variables) {
                        f.vars.set_matched(c);
                    }
                    return true;
                }
            }
        }
        false
    }
}

/// Applies `:index` (1-based, `:last` counting from the end).
fn pick<T>(mut v: Vec<T>, index: Option<Index>) -> Vec<T> {
    let Some(ix) = index else { return v };
    let n = usize::try_from(ix.n).unwrap_or(usize::MAX);
    if n == 0 || n > v.len() {
        return Vec::new();
    }
    let at = if ix.last { v.len() - n } else { n - 1 };
    vec![v.swap_remove(at)]
}

fn address_part(a: &Addr, part: AddressPart) -> Option<String> {
    Some(match part {
        AddressPart::All => {
            if a.domain.is_empty() {
                a.local.clone()
            } else {
                format!("{}@{}", a.local, a.domain)
            }
        }
        AddressPart::LocalPart => a.local.clone(),
        AddressPart::Domain => a.domain.clone(),
        AddressPart::User => a
            .local
            .split_once('+')
            .map(|(u, _)| u)
            .unwrap_or(&a.local)
            .to_string(),
        AddressPart::Detail => a.local.split_once('+')?.1.to_string(),
    })
}
