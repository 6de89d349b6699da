//! The filter rules and the vacation reply of web mail, and the one Sieve
//! script they are written out as. A rule is a header condition (From, To,
//! Subject or any named header; "contains" or "is") and an action (move to
//! a folder, add a flag, forward, discard), optionally "stop here". The
//! vacation section (on/off, first and last day, subject, text, days) goes
//! first, so a rule that stops or discards does not keep an absent user
//! from answering.
//!
//! The script carries its own source: a comment line holding the rules and
//! the vacation as JSON (`# tern-webmail-v1 {…}`), the way Roundcube's
//! managesieve plugin keeps `# rule:[…]` comments. [`read`] takes a script
//! back only if writing out what that line says gives the very same text,
//! so a script changed by hand or uploaded with a Sieve client is never
//! mistaken for the page's and never rewritten without the user agreeing.
//! Every script written here compiles with tern-sieve and means the same
//! to Pigeonhole (`rules_tests.rs` runs both).

use crate::address::Address;
use crate::store::check_folder_name;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The comment that starts the line holding the page's data.
const MARK: &str = "# tern-webmail-v1 ";
/// Longest rule name, match value, keyword or vacation subject, in bytes.
const MAX_FIELD: usize = 500;
/// Longest vacation text, in bytes.
const MAX_TEXT: usize = 20_000;
/// Most rules one script holds.
pub const MAX_RULES: usize = 200;

/// What a rule compares the header with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Contains,
    Is,
}

/// What a rule does with a matching message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "lowercase")]
pub enum Act {
    /// File into the folder (created if missing) instead of the inbox.
    Move {
        folder: String,
    },
    /// Add an IMAP flag or keyword (`\Flagged`, `$label1`, …).
    Flag {
        flag: String,
    },
    /// Redirect to an address; `keep` leaves a copy as well.
    Forward {
        to: String,
        keep: bool,
    },
    Discard,
}

/// One filter rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// The header's name, lower case (`from`, `to`, `subject`, …).
    pub header: String,
    pub op: Op,
    pub value: String,
    #[serde(flatten)]
    pub act: Act,
    /// No rule after this one runs for a matching message.
    #[serde(default)]
    pub stop: bool,
}

/// The vacation reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vacation {
    pub on: bool,
    /// First and last day (`YYYY-MM-DD`, in UTC: the zone the sieve
    /// plugin's `currentdate` uses), if bounded.
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    pub subject: String,
    pub text: String,
    /// Days before the same sender is answered again.
    pub days: u32,
}

impl Default for Vacation {
    fn default() -> Self {
        Vacation {
            on: false,
            start: None,
            end: None,
            subject: String::new(),
            text: String::new(),
            days: 7,
        }
    }
}

/// Everything the Filters and Vacation pages keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebScript {
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub vacation: Option<Vacation>,
}

/// Why a rule or a vacation setting was refused, in words for the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn bad(s: impl Into<String>) -> Invalid {
    Invalid(s.into())
}

fn short(what: &str, s: &str) -> Result<(), Invalid> {
    if s.len() > MAX_FIELD {
        return Err(bad(format!("the {what} is longer than {MAX_FIELD} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(format!("the {what} has control characters")));
    }
    Ok(())
}

/// A header field name (RFC 5322 section 2.2: printable ASCII but colon).
pub fn check_header_name(h: &str) -> Result<String, Invalid> {
    let h = h.trim();
    if h.is_empty() || h.len() > 76 || !h.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(bad(format!("{h:?} is not a header name")));
    }
    Ok(h.to_ascii_lowercase())
}

/// An IMAP flag or keyword (RFC 3501 atom characters, `\` only first).
pub fn check_flag(f: &str) -> Result<String, Invalid> {
    let f = f.trim();
    let body = f.strip_prefix('\\').unwrap_or(f);
    let ok = !body.is_empty()
        && body.len() <= 64
        && body
            .bytes()
            .all(|b| (33..=126).contains(&b) && !b"(){%*\"\\]".contains(&b));
    if !ok {
        return Err(bad(format!("{f:?} is not an IMAP flag or keyword")));
    }
    Ok(f.to_string())
}

fn check_date(what: &str, d: &Option<String>) -> Result<Option<NaiveDate>, Invalid> {
    match d.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| bad(format!("the {what} {s:?} is not a date (YYYY-MM-DD)"))),
    }
}

impl Rule {
    /// Checks a rule as a form gave it, and returns it tidied (trimmed,
    /// header lower case, a name if it had none).
    pub fn checked(mut self) -> Result<Rule, Invalid> {
        self.header = check_header_name(&self.header)?;
        self.value = self.value.trim().to_string();
        if self.value.is_empty() {
            return Err(bad("say what the header should contain"));
        }
        short("value", &self.value)?;
        self.act = match self.act {
            Act::Move { folder } if folder.trim().is_empty() => {
                return Err(bad("name the folder to move to"));
            }
            Act::Move { folder } => Act::Move {
                folder: check_folder_name(folder.trim()).map_err(Invalid)?,
            },
            Act::Flag { flag } => Act::Flag {
                flag: check_flag(&flag)?,
            },
            Act::Forward { to, keep } => {
                let to = to.trim().to_string();
                Address::parse(&to, true).map_err(|e| bad(format!("{to:?}: {e}")))?;
                Act::Forward { to, keep }
            }
            Act::Discard => Act::Discard,
        };
        self.name = self.name.trim().to_string();
        if self.name.is_empty() {
            self.name = format!("{} {} {}", self.header, self.op.word(), self.value);
        }
        short("name", &self.name)?;
        Ok(self)
    }
}

impl Op {
    pub fn word(self) -> &'static str {
        match self {
            Op::Contains => "contains",
            Op::Is => "is",
        }
    }
}

impl Vacation {
    /// Checks the settings as the form gave them, tidied.
    pub fn checked(mut self) -> Result<Vacation, Invalid> {
        let start = check_date("first day", &self.start)?;
        let end = check_date("last day", &self.end)?;
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            return Err(bad("the last day is before the first"));
        }
        self.start = start.map(|d| d.to_string());
        self.end = end.map(|d| d.to_string());
        self.subject = self.subject.trim().to_string();
        short("subject", &self.subject)?;
        self.text = self.text.replace("\r\n", "\n").trim_end().to_string();
        if self.text.len() > MAX_TEXT {
            return Err(bad(format!("the text is longer than {MAX_TEXT} bytes")));
        }
        if self
            .text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(bad("the text has control characters"));
        }
        if self.on && self.text.trim().is_empty() {
            return Err(bad("write the text of the reply"));
        }
        if !(1..=365).contains(&self.days) {
            return Err(bad("answer the same sender again after 1 to 365 days"));
        }
        Ok(self)
    }
}

/// A Sieve quoted string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A comment line's text: no line breaks can end it early.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn is_address_header(h: &str) -> bool {
    matches!(
        h,
        "from" | "to" | "cc" | "bcc" | "sender" | "reply-to" | "resent-from" | "resent-to"
    )
}

impl Rule {
    fn test(&self) -> String {
        match self.op {
            Op::Contains => format!(
                "header :contains {} {}",
                quoted(&self.header),
                quoted(&self.value)
            ),
            // "is" on an address header means the address, not the display name.
            Op::Is if is_address_header(&self.header) => format!(
                "address :is {} {}",
                quoted(&self.header),
                quoted(&self.value)
            ),
            Op::Is => format!(
                "header :is {} {}",
                quoted(&self.header),
                quoted(&self.value)
            ),
        }
    }

    fn action(&self) -> String {
        match &self.act {
            Act::Move { folder } => format!("fileinto :create {};", quoted(folder)),
            Act::Flag { flag } => format!("addflag {};", quoted(flag)),
            Act::Forward { to, keep: true } => format!("redirect :copy {};", quoted(to)),
            Act::Forward { to, keep: false } => format!("redirect {};", quoted(to)),
            Act::Discard => "discard;".into(),
        }
    }

    fn requires(&self, r: &mut BTreeSet<&'static str>) {
        match &self.act {
            Act::Move { .. } => r.extend(["fileinto", "mailbox"]),
            Act::Flag { .. } => {
                r.insert("imap4flags");
            }
            Act::Forward { keep: true, .. } => {
                r.insert("copy");
            }
            Act::Forward { keep: false, .. } | Act::Discard => {}
        }
    }
}

impl Vacation {
    fn active(&self) -> bool {
        self.on
    }

    fn requires(&self, r: &mut BTreeSet<&'static str>) {
        if self.active() {
            r.insert("vacation");
            if self.start.is_some() || self.end.is_some() {
                r.extend(["date", "relational"]);
            }
        }
    }

    fn code(&self, out: &mut String) {
        if !self.active() {
            return;
        }
        let mut reply = format!("vacation :days {}", self.days);
        if !self.subject.is_empty() {
            reply.push_str(&format!(" :subject {}", quoted(&self.subject)));
        }
        reply.push_str(&format!(" {};\n", quoted(&self.text)));
        let tests: Vec<String> = [("ge", &self.start), ("le", &self.end)]
            .into_iter()
            .filter_map(|(rel, d)| {
                d.as_ref()
                    .map(|d| format!("currentdate :value {} \"date\" {}", quoted(rel), quoted(d)))
            })
            .collect();
        out.push_str("# Vacation\n");
        match tests.as_slice() {
            [] => out.push_str(&reply),
            [one] => out.push_str(&format!("if {one} {{\n    {reply}}}\n")),
            many => out.push_str(&format!(
                "if allof ({}) {{\n    {reply}}}\n",
                many.join(",\n          ")
            )),
        }
        out.push('\n');
    }
}

impl WebScript {
    /// The Sieve script for these rules and this vacation reply.
    pub fn to_sieve(&self) -> String {
        let data = serde_json::to_string(self).unwrap_or_default();
        let mut out = String::from(
            "# Written by Tern web mail (the Filters and Vacation pages).\n\
             # Changed by hand, it becomes a script of your own, which the pages\n\
             # will not rewrite without asking.\n",
        );
        out.push_str(MARK);
        out.push_str(&data);
        out.push('\n');
        let mut req = BTreeSet::new();
        if let Some(v) = &self.vacation {
            v.requires(&mut req);
        }
        for r in &self.rules {
            r.requires(&mut req);
        }
        if !req.is_empty() {
            let names: Vec<String> = req.iter().map(|r| quoted(r)).collect();
            out.push_str(&format!("require [{}];\n", names.join(", ")));
        }
        out.push('\n');
        if let Some(v) = &self.vacation {
            v.code(&mut out);
        }
        for r in &self.rules {
            out.push_str(&format!("# rule:[{}]\n", comment(&r.name)));
            out.push_str(&format!("if {} {{\n    {}\n", r.test(), r.action()));
            if r.stop {
                out.push_str("    stop;\n");
            }
            out.push_str("}\n");
        }
        out
    }
}

/// What the user's active script is to the pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// No active script: the pages start from nothing.
    None,
    /// Written by the pages, unchanged since.
    Ours(WebScript),
    /// Someone else's script (a Sieve client's, or edited by hand).
    Foreign,
}

/// Reads an active script back into rules and vacation, if the pages
/// wrote it and it was not changed since.
pub fn read(text: &[u8]) -> Read {
    let Ok(text) = std::str::from_utf8(text) else {
        return Read::Foreign;
    };
    let data = text
        .lines()
        .take(8)
        .find_map(|l| l.strip_prefix(MARK))
        .and_then(|json| serde_json::from_str::<WebScript>(json).ok());
    match data {
        Some(w) if w.to_sieve() == text => Read::Ours(w),
        _ => Read::Foreign,
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
