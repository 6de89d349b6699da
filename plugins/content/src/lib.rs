//! A content filter at the end of data. The message (up to `max_size`
//! bytes of it) is read through the `message` resource and parsed with
//! mail-parser inside the plugin: the decoded subject and the text of the
//! body parts (HTML turned into text) are matched against substrings and
//! a regular expression (regex-lite), and every part's file name (nested
//! messages included) against the refused extensions. A refused
//! attachment is answered per `attachment_action` (default: reject with
//! 550 5.7.1), a pattern match per `pattern_action` (default: quarantine
//! to Junk); either may be `reject`, `quarantine` or `tag` (only the
//! header). Every message it passes gets a header with the verdict
//! (`X-Content-Filter: clean`). See README.md for the keys.
//!
//! The body is read only when it can matter: with a body rule set, or
//! when the message has parts (multipart or an attached message) that may
//! carry file names. Otherwise the subject and the top-level
//! `Content-Type` and `Content-Disposition` (a single-part message may be
//! a file itself) are all the rules look at, and only they are asked for;
//! when they hold no file name and nothing encoded, the subject is matched
//! as it is, without a parse.

use mail_parser::{HeaderName, Message as Parsed, MessageParser, MimeHeaders};
use std::sync::OnceLock;
use tern_plugin_support as support;
use tern_sdk::{
    Envelope, Filter, FilterAction, FilterVerdict, Message, Reply, Session, config, log,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Reject,
    Quarantine,
    Tag,
}

fn action(key: &str, default: Action) -> Result<Action, String> {
    match config::get(key).as_deref().map(str::trim) {
        None => Ok(default),
        Some("reject") => Ok(Action::Reject),
        Some("quarantine") => Ok(Action::Quarantine),
        Some("tag") => Ok(Action::Tag),
        Some(other) => Err(format!(
            "config {key}: {other:?} is not reject, quarantine or tag"
        )),
    }
}

struct Settings {
    subject_contains: Vec<String>,
    subject_regex: Option<regex_lite::Regex>,
    body_contains: Vec<String>,
    body_regex: Option<regex_lite::Regex>,
    refuse_extensions: Vec<String>,
    pattern_action: Action,
    attachment_action: Action,
    max_size: u64,
    header: String,
}

/// Comma-separated substrings, lower-cased (a comma inside one: use the regex).
fn substrings(key: &str) -> Vec<String> {
    config::get(key)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn regex(key: &str) -> Result<Option<regex_lite::Regex>, String> {
    match config::get(key) {
        None => Ok(None),
        Some(r) => regex_lite::RegexBuilder::new(&r)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map(Some)
            .map_err(|e| format!("config {key}: {e}")),
    }
}

impl Settings {
    fn load() -> Result<Settings, String> {
        Ok(Settings {
            subject_contains: substrings("subject_contains"),
            subject_regex: regex("subject_regex")?,
            body_contains: substrings("body_contains"),
            body_regex: regex("body_regex")?,
            refuse_extensions: support::list(&config::get("refuse_extensions").unwrap_or_default())
                .into_iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            pattern_action: action("pattern_action", Action::Quarantine)?,
            attachment_action: action("attachment_action", Action::Reject)?,
            max_size: support::parse_size(
                &config::get("max_size").unwrap_or_else(|| "5MiB".into()),
            )
            .map_err(|e| format!("config max_size: {e}"))?,
            header: config::get("header").unwrap_or_else(|| "X-Content-Filter".into()),
        })
    }
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(Settings::load)
}

/// Why a message is caught, and by which kind of rule.
struct Finding {
    attachment: bool,
    reason: String,
}

/// Does the text match a substring or the regex? Returns what matched.
fn matches(text: &str, contains: &[String], re: Option<&regex_lite::Regex>) -> Option<String> {
    let lower = text.to_lowercase();
    if let Some(s) = contains.iter().find(|s| lower.contains(s.as_str())) {
        return Some(format!("\"{s}\""));
    }
    re.filter(|r| r.is_match(text))
        .map(|r| format!("/{}/", r.as_str()))
}

/// The file names of every part, nested messages' parts included.
fn file_names<'a>(message: &'a Parsed<'a>, depth: usize, out: &mut Vec<&'a str>) {
    for part in &message.parts {
        if let Some(name) = part.attachment_name() {
            out.push(name);
        }
        if depth < 8
            && let Some(inner) = part.message()
        {
            file_names(inner, depth + 1, out);
        }
    }
}

/// The subject rules over the decoded subject.
fn subject_finding(s: &Settings, subject: &str) -> Option<Finding> {
    matches(subject, &s.subject_contains, s.subject_regex.as_ref()).map(|what| Finding {
        attachment: false,
        reason: format!("subject matches {what}"),
    })
}

/// The rules over a parsed message: attachments' names, the subject, the
/// body's text.
fn inspect(s: &Settings, parsed: &Parsed) -> Option<Finding> {
    if !s.refuse_extensions.is_empty() {
        let mut names = Vec::new();
        file_names(parsed, 0, &mut names);
        for name in names {
            let ext = name
                .trim()
                .trim_end_matches('.')
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase());
            if let Some(ext) = ext.filter(|e| s.refuse_extensions.contains(e)) {
                return Some(Finding {
                    attachment: true,
                    reason: format!("attachment \"{name}\" (.{ext} files are not accepted)"),
                });
            }
        }
    }
    if let Some(found) = subject_finding(s, parsed.subject().unwrap_or("")) {
        return Some(found);
    }
    if !s.body_contains.is_empty() || s.body_regex.is_some() {
        for i in 0..parsed.text_body_count().max(parsed.html_body_count()) {
            let Some(text) = parsed.body_text(i) else {
                continue;
            };
            if let Some(what) = matches(&text, &s.body_contains, s.body_regex.as_ref()) {
                return Some(Finding {
                    attachment: false,
                    reason: format!("body matches {what}"),
                });
            }
        }
    }
    None
}

/// The parser: the fields the rules read (subject, MIME structure), the
/// others skipped.
fn parser() -> MessageParser {
    MessageParser::new()
        .with_mime_headers()
        .header_text(HeaderName::Subject)
        .default_header_ignore()
}

/// Can the body matter: a body rule, or parts below the top level (by the
/// message's `Content-Type` values, `types`)?
fn body_matters(s: &Settings, types: &[String]) -> bool {
    if !s.body_contains.is_empty() || s.body_regex.is_some() {
        return true;
    }
    types.iter().any(|t| {
        let t = t.trim_start().to_ascii_lowercase();
        t.starts_with("multipart/") || t.starts_with("message/")
    })
}

/// The fields the rules read when the body does not matter.
struct RuleFields {
    subjects: Vec<String>,
    types: Vec<String>,
    dispositions: Vec<String>,
}

impl RuleFields {
    /// The fields as a header section of their own, for mail-parser.
    fn section(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fields = [
            ("Subject", &self.subjects),
            ("Content-Type", &self.types),
            ("Content-Disposition", &self.dispositions),
        ];
        for (name, values) in fields {
            for value in values {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The subject as mail-parser would give it, when there is nothing to
    /// decode: no file name can be in the fields (no `Content-Disposition`,
    /// no `name` parameter in the `Content-Type`) and the last subject is
    /// one line of printable ASCII without encoded words. Then the subject
    /// is that value with its blanks trimmed (mail-parser's unstructured
    /// value), and the rules need no parse. None: parse.
    fn plain_subject(&self) -> Option<&str> {
        if !self.dispositions.is_empty()
            || self.types.iter().any(|t| {
                t.as_bytes()
                    .windows(4)
                    .any(|w| w.eq_ignore_ascii_case(b"name"))
            })
        {
            return None;
        }
        let Some(subject) = self.subjects.last() else {
            return Some("");
        };
        let printable = subject
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if !printable || subject.contains("=?") {
            return None;
        }
        Some(subject.trim_matches([' ', '\t']))
    }
}

/// Up to `max` bytes of the message.
fn read(message: &Message, max: u64) -> Vec<u8> {
    let want = message.size().min(max);
    let mut bytes = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    while (bytes.len() as u64) < want {
        let len = u32::try_from((want - bytes.len() as u64).min(256 * 1024)).unwrap_or(256 * 1024);
        let piece = message.read(bytes.len() as u64, len);
        if piece.is_empty() {
            break;
        }
        bytes.extend_from_slice(&piece);
    }
    bytes
}

struct Content;

#[tern_sdk::hooks]
impl Filter for Content {
    fn on_data(_session: Session, _envelope: Envelope, message: &Message) -> FilterVerdict {
        let s = match settings() {
            Ok(s) => s,
            Err(e) => {
                log::error(&format!("content filter is off: {e}"));
                return FilterVerdict::pass();
            }
        };
        let size = message.size();
        let types = message.header("content-type");
        let unchecked =
            || FilterVerdict::pass().add_header(&s.header, "unchecked (not a MIME message)");
        // What the rules found, and how much of a message larger than
        // `max_size` they saw.
        let (found, seen) = if body_matters(s, &types) {
            let bytes = read(message, s.max_size);
            let Some(parsed) = parser().parse(&bytes[..]) else {
                return unchecked();
            };
            let seen = Some(bytes.len()).filter(|n| (*n as u64) < size);
            (inspect(s, &parsed), seen)
        } else {
            let fields = RuleFields {
                subjects: message.header("subject"),
                types,
                dispositions: message.header("content-disposition"),
            };
            match fields.plain_subject() {
                Some(subject) => (subject_finding(s, subject), None),
                None => {
                    let section = fields.section();
                    let Some(parsed) = parser().parse(&section[..]) else {
                        return unchecked();
                    };
                    (inspect(s, &parsed), None)
                }
            }
        };
        let Some(found) = found else {
            let verdict = match seen {
                Some(n) => format!("clean (first {n} of {size} bytes checked)"),
                None => "clean".to_string(),
            };
            return FilterVerdict::pass().add_header(&s.header, &verdict);
        };
        let act = if found.attachment {
            s.attachment_action
        } else {
            s.pattern_action
        };
        log::info(&format!(
            "{}: {}",
            found.reason,
            match act {
                Action::Reject => "refused",
                Action::Quarantine => "quarantined",
                Action::Tag => "tagged",
            }
        ));
        match act {
            Action::Reject => FilterVerdict {
                action: FilterAction::Reject(Reply::new(
                    550,
                    "5.7.1",
                    &format!("Message refused: {}", found.reason),
                )),
                edits: Vec::new(),
            },
            Action::Quarantine => FilterVerdict {
                action: FilterAction::Quarantine(found.reason.clone()),
                edits: Vec::new(),
            }
            .add_header(&s.header, &format!("quarantined: {}", found.reason)),
            Action::Tag => {
                FilterVerdict::pass().add_header(&s.header, &format!("suspect: {}", found.reason))
            }
        }
    }
}

tern_sdk::export!(Content: Filter);
