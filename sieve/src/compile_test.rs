//! Validation of tests: the common comparator / match-type / address-part /
//! index tags (RFC 5228 section 2.7, RFC 5231, RFC 5260) and each test's
//! positional arguments, with the `require` each one needs.

use crate::args::{Split, TagArg, Want, positional, single, strings_of};
use crate::compile::Compiler;
use crate::error::{CompileError, Pos};
use crate::parser::{ArgKind, TestNode};
use crate::script::{
    AddressPart, BodyTransform, Comparator, Index, MatchType, Matcher, RelOp, Test, Zone,
};

/// Comparator and match type, no address part, no index.
const MATCH_ONLY: Accept = Accept {
    matcher: true,
    address: false,
    index: false,
};

/// Which optional tag groups a test accepts.
#[derive(Clone, Copy)]
struct Accept {
    matcher: bool,
    address: bool,
    index: bool,
}

impl Compiler {
    fn common_arity(&self, acc: Accept, t: &str) -> Option<TagArg> {
        match t {
            "comparator" | "count" | "value" if acc.matcher => Some(TagArg::Str),
            "is" | "contains" | "matches" | "regex" if acc.matcher => Some(TagArg::None),
            "all" | "localpart" | "domain" | "user" | "detail" if acc.address => Some(TagArg::None),
            "index" if acc.index => Some(TagArg::Number),
            "last" if acc.index => Some(TagArg::None),
            _ => None,
        }
    }

    fn matcher(&self, s: &Split, pos: Pos) -> Result<Matcher, CompileError> {
        let mut kind = None;
        for (t, tpos, arg) in &s.tags {
            let k = match t.as_str() {
                "is" => MatchType::Is,
                "contains" => MatchType::Contains,
                "matches" => MatchType::Matches,
                "regex" => {
                    self.need("regex", *tpos, ":regex")?;
                    MatchType::Regex
                }
                "count" | "value" => {
                    self.need("relational", *tpos, &format!(":{t}"))?;
                    let op = arg.as_ref().map(single).transpose()?.unwrap_or_default();
                    let op = match op.to_ascii_lowercase().as_str() {
                        "gt" => RelOp::Gt,
                        "ge" => RelOp::Ge,
                        "lt" => RelOp::Lt,
                        "le" => RelOp::Le,
                        "eq" => RelOp::Eq,
                        "ne" => RelOp::Ne,
                        _ => {
                            return Err(CompileError::new(
                                *tpos,
                                format!("invalid relational operator \"{op}\""),
                            ));
                        }
                    };
                    if t == "count" {
                        MatchType::Count(op)
                    } else {
                        MatchType::Value(op)
                    }
                }
                _ => continue,
            };
            if kind.is_some() {
                return Err(CompileError::new(*tpos, "more than one match type"));
            }
            kind = Some(k);
        }
        let kind = kind.unwrap_or(MatchType::Is);
        let comparator = match s.get("comparator") {
            None => Comparator::AsciiCasemap,
            Some(a) => match single(a)?.to_ascii_lowercase().as_str() {
                "i;octet" => Comparator::Octet,
                "i;ascii-casemap" => Comparator::AsciiCasemap,
                "i;ascii-numeric" => {
                    self.need(
                        "comparator-i;ascii-numeric",
                        a.pos,
                        "comparator i;ascii-numeric",
                    )?;
                    Comparator::AsciiNumeric
                }
                other => {
                    return Err(CompileError::new(
                        a.pos,
                        format!("unknown comparator \"{other}\""),
                    ));
                }
            },
        };
        if comparator == Comparator::AsciiNumeric
            && matches!(
                kind,
                MatchType::Contains | MatchType::Matches | MatchType::Regex
            )
        {
            return Err(CompileError::new(
                pos,
                "comparator i;ascii-numeric does not support substring matching",
            ));
        }
        Ok(Matcher { comparator, kind })
    }

    fn address_part(&self, s: &Split) -> Result<AddressPart, CompileError> {
        let mut part = None;
        for (t, tpos, _) in &s.tags {
            let p = match t.as_str() {
                "all" => AddressPart::All,
                "localpart" => AddressPart::LocalPart,
                "domain" => AddressPart::Domain,
                "user" | "detail" => {
                    self.need("subaddress", *tpos, &format!(":{t}"))?;
                    if t == "user" {
                        AddressPart::User
                    } else {
                        AddressPart::Detail
                    }
                }
                _ => continue,
            };
            if part.is_some() {
                return Err(CompileError::new(*tpos, "more than one address part"));
            }
            part = Some(p);
        }
        Ok(part.unwrap_or(AddressPart::All))
    }

    fn index(&self, s: &Split) -> Result<Option<Index>, CompileError> {
        if let Some(p) = s.tag_pos("index").or(s.tag_pos("last")) {
            self.need("index", p, ":index")?;
        }
        match s.get("index").map(|a| (&a.kind, a.pos)) {
            Some((ArgKind::Number(n), p)) => {
                if *n == 0 {
                    return Err(CompileError::new(p, ":index must be at least 1"));
                }
                Ok(Some(Index {
                    n: *n,
                    last: s.has("last"),
                }))
            }
            _ if s.has("last") => Err(CompileError::new(
                s.tag_pos("last").unwrap_or_default(),
                ":last needs :index",
            )),
            _ => Ok(None),
        }
    }

    pub fn test(&self, node: &TestNode) -> Result<Test, CompileError> {
        let name = node.name.as_str();
        let pos = node.pos;
        let takes_tests = matches!(name, "not" | "allof" | "anyof");
        if !takes_tests && !node.tests.is_empty() {
            return Err(CompileError::new(
                pos,
                format!("'{name}' takes no nested tests"),
            ));
        }
        let full = Accept {
            matcher: true,
            address: true,
            index: true,
        };
        let idx = self.exts.contains("index") || self.exts.contains("date");
        let test = match name {
            "true" | "false" | "not" | "allof" | "anyof" => {
                let s = self.split(name, &node.args, |_| None)?;
                positional(name, pos, &s, &[])?;
                let sub = node
                    .tests
                    .iter()
                    .map(|t| self.test(t))
                    .collect::<Result<Vec<_>, _>>()?;
                match name {
                    "true" => Test::True,
                    "false" => Test::False,
                    "not" => {
                        let mut sub = sub;
                        match (sub.pop(), sub.is_empty()) {
                            (Some(t), true) => Test::Not(Box::new(t)),
                            _ => {
                                return Err(CompileError::new(pos, "'not' takes exactly one test"));
                            }
                        }
                    }
                    _ if sub.is_empty() => {
                        return Err(CompileError::new(
                            pos,
                            format!("'{name}' needs a test list"),
                        ));
                    }
                    "allof" => Test::AllOf(sub),
                    _ => Test::AnyOf(sub),
                }
            }
            "address" => {
                let s = self.split(name, &node.args, |t| {
                    self.common_arity(Accept { index: idx, ..full }, t)
                })?;
                let p = positional(name, pos, &s, &[Want::List, Want::List])?;
                Test::Address {
                    m: self.matcher(&s, pos)?,
                    part: self.address_part(&s)?,
                    index: self.index(&s)?,
                    headers: strings_of(&p[0])?,
                    keys: strings_of(&p[1])?,
                }
            }
            "envelope" => {
                self.need("envelope", pos, "envelope")?;
                let s = self.split(name, &node.args, |t| {
                    self.common_arity(
                        Accept {
                            index: false,
                            ..full
                        },
                        t,
                    )
                })?;
                let p = positional(name, pos, &s, &[Want::List, Want::List])?;
                let fields = strings_of(&p[0])?;
                for f in &fields {
                    if !matches!(f.to_ascii_lowercase().as_str(), "from" | "to")
                        && !f.contains("${")
                    {
                        return Err(CompileError::new(
                            p[0].pos,
                            format!("unknown envelope part \"{f}\""),
                        ));
                    }
                }
                Test::Envelope {
                    m: self.matcher(&s, pos)?,
                    part: self.address_part(&s)?,
                    fields,
                    keys: strings_of(&p[1])?,
                }
            }
            "header" => {
                let s = self.split(name, &node.args, |t| {
                    self.common_arity(
                        Accept {
                            address: false,
                            index: idx,
                            ..full
                        },
                        t,
                    )
                })?;
                let p = positional(name, pos, &s, &[Want::List, Want::List])?;
                Test::Header {
                    m: self.matcher(&s, pos)?,
                    index: self.index(&s)?,
                    headers: strings_of(&p[0])?,
                    keys: strings_of(&p[1])?,
                }
            }
            "exists" => {
                let s = self.split(name, &node.args, |_| None)?;
                let p = positional(name, pos, &s, &[Want::List])?;
                Test::Exists(strings_of(&p[0])?)
            }
            "size" => {
                let s = self.split(name, &node.args, |t| {
                    matches!(t, "over" | "under").then_some(TagArg::None)
                })?;
                let p = positional(name, pos, &s, &[Want::Number])?;
                if s.has("over") == s.has("under") {
                    return Err(CompileError::new(
                        pos,
                        "'size' takes exactly one of :over and :under",
                    ));
                }
                let ArgKind::Number(limit) = p[0].kind else {
                    return Err(CompileError::new(p[0].pos, "expected a number"));
                };
                Test::Size {
                    over: s.has("over"),
                    limit,
                }
            }
            "body" => {
                self.need("body", pos, "body")?;
                let s = self.split(name, &node.args, |t| match t {
                    "raw" | "text" => Some(TagArg::None),
                    "content" => Some(TagArg::List),
                    _ => self.common_arity(MATCH_ONLY, t),
                })?;
                let n = ["raw", "text", "content"]
                    .iter()
                    .filter(|t| s.has(t))
                    .count();
                if n > 1 {
                    return Err(CompileError::new(
                        pos,
                        "'body' takes one of :raw, :content and :text",
                    ));
                }
                let transform = if s.has("raw") {
                    BodyTransform::Raw
                } else if let Some(a) = s.get("content") {
                    BodyTransform::Content(strings_of(a)?)
                } else {
                    BodyTransform::Text
                };
                let p = positional(name, pos, &s, &[Want::List])?;
                Test::Body {
                    m: self.matcher(&s, pos)?,
                    transform,
                    keys: strings_of(&p[0])?,
                }
            }
            "string" => {
                self.need("variables", pos, "string")?;
                let s = self.split(name, &node.args, |t| self.common_arity(MATCH_ONLY, t))?;
                let p = positional(name, pos, &s, &[Want::List, Want::List])?;
                Test::String {
                    m: self.matcher(&s, pos)?,
                    sources: strings_of(&p[0])?,
                    keys: strings_of(&p[1])?,
                }
            }
            "hasflag" => {
                self.need("imap4flags", pos, "hasflag")?;
                let s = self.split(name, &node.args, |t| self.common_arity(MATCH_ONLY, t))?;
                let (variables, keys) = match s.positional.len() {
                    1 => (
                        None,
                        strings_of(&positional(name, pos, &s, &[Want::List])?[0])?,
                    ),
                    _ => {
                        let p = positional(name, pos, &s, &[Want::List, Want::List])?;
                        (
                            Some(
                                strings_of(&p[0])?
                                    .into_iter()
                                    .map(|v| v.to_ascii_lowercase())
                                    .collect(),
                            ),
                            strings_of(&p[1])?,
                        )
                    }
                };
                Test::HasFlag {
                    m: self.matcher(&s, pos)?,
                    variables,
                    keys,
                }
            }
            "date" | "currentdate" => {
                self.need("date", pos, name)?;
                let s = self.split(name, &node.args, |t| match t {
                    "zone" => Some(TagArg::Str),
                    "originalzone" if name == "date" => Some(TagArg::None),
                    _ => self.common_arity(
                        Accept {
                            address: false,
                            index: name == "date",
                            ..full
                        },
                        t,
                    ),
                })?;
                let zone = match (s.get("zone"), s.has("originalzone")) {
                    (Some(_), true) => {
                        return Err(CompileError::new(
                            pos,
                            ":zone and :originalzone exclude each other",
                        ));
                    }
                    (Some(a), false) => {
                        let z = single(a)?;
                        if parse_zone(&z).is_none() {
                            return Err(CompileError::new(
                                a.pos,
                                format!("invalid time zone \"{z}\""),
                            ));
                        }
                        Zone::Fixed(z)
                    }
                    (None, true) => Zone::Original,
                    (None, false) => Zone::Local,
                };
                let m = self.matcher(&s, pos)?;
                if name == "date" {
                    let p = positional(name, pos, &s, &[Want::Str, Want::Str, Want::List])?;
                    let part = self.date_part(&p[1])?;
                    Test::Date {
                        m,
                        zone,
                        index: self.index(&s)?,
                        header: single(&p[0])?,
                        part,
                        keys: strings_of(&p[2])?,
                    }
                } else {
                    let p = positional(name, pos, &s, &[Want::Str, Want::List])?;
                    Test::CurrentDate {
                        m,
                        zone,
                        part: self.date_part(&p[0])?,
                        keys: strings_of(&p[1])?,
                    }
                }
            }
            "mailboxexists" => {
                self.need("mailbox", pos, name)?;
                let s = self.split(name, &node.args, |_| None)?;
                Test::MailboxExists(strings_of(&positional(name, pos, &s, &[Want::List])?[0])?)
            }
            _ => return Err(CompileError::new(pos, format!("unknown test '{name}'"))),
        };
        Ok(test)
    }

    /// An unknown date part makes the test false (Pigeonhole only warns),
    /// not the script invalid.
    fn date_part(&self, a: &crate::parser::Arg) -> Result<String, CompileError> {
        Ok(single(a)?.to_ascii_lowercase())
    }
}

/// Parses `+hhmm`/`-hhmm` into minutes east of UTC.
pub fn parse_zone(z: &str) -> Option<i32> {
    let b = z.as_bytes();
    if b.len() != 5 || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = i32::from(b[1] - b'0') * 10 + i32::from(b[2] - b'0');
    let m = i32::from(b[3] - b'0') * 10 + i32::from(b[4] - b'0');
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}
