//! What SORT and THREAD compare about a message (RFC 5256 section 2):
//! the base subject (section 2.1's extraction: encoded words decoded by
//! mail-parser, whitespace collapsed, `(fwd)` trailers, `Re:`/`Fw:`
//! leaders, `[blob]` prefixes and `[fwd: ...]` wrappers removed), the sent
//! date (internal date when there is none), the first address's mailbox
//! and display name (RFC 5957), and the Message-ID / References a thread
//! is built from. Read from the header block only.

use super::render;
use crate::store::MessageMeta;

/// One message's sort and thread facts.
#[derive(Clone)]
pub struct Facts {
    /// Position in the selected view.
    pub pos: usize,
    pub arrival: i64,
    /// The sent date in UTC seconds (the internal date without one).
    pub date: i64,
    pub size: u64,
    /// The base subject, upper-cased for comparison (i;ascii-casemap
    /// compares upper case: `[` sorts after letters, RFC 4790 9.2).
    pub subject: String,
    /// The subject was a reply or forward (a leader or trailer removed).
    pub reply: bool,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    pub message_id: Option<String>,
    /// References, else the first In-Reply-To id.
    pub references: Vec<String>,
    /// `date` is the Date header's (else the internal date).
    pub dated: bool,
}

impl Facts {
    /// These facts (of the same body) for the copy `meta` at `pos`.
    pub fn for_copy(&self, pos: usize, meta: &MessageMeta) -> Facts {
        let mut f = self.clone();
        f.pos = pos;
        f.arrival = meta.internal_date;
        f.size = meta.size;
        if !f.dated {
            f.date = meta.internal_date;
        }
        f
    }

    /// The facts of the message at `pos`, from its header block `bytes`
    /// (empty when it could not be read: sorted by the index alone).
    pub fn of(pos: usize, meta: &MessageMeta, bytes: &[u8]) -> Facts {
        let mut f = Facts {
            pos,
            arrival: meta.internal_date,
            date: meta.internal_date,
            size: meta.size,
            subject: String::new(),
            reply: false,
            from: String::new(),
            to: String::new(),
            cc: String::new(),
            display_from: String::new(),
            display_to: String::new(),
            message_id: None,
            references: Vec::new(),
            dated: false,
        };
        let block = render::header_block(bytes);
        let Some(msg) = mail_parser::MessageParser::default().parse_headers(block) else {
            return f;
        };
        if let Some(d) = msg.date() {
            f.date = d.to_timestamp();
            f.dated = true;
        }
        let (subject, reply) = base_subject(msg.subject().unwrap_or(""));
        f.subject = subject.to_uppercase();
        f.reply = reply;
        // The first address of a field; a group (RFC 5322 group syntax)
        // counts by its name, as its IMAP ENVELOPE entry starts with it.
        let first = |a: Option<&mail_parser::Address<'_>>| -> (String, String) {
            match a {
                Some(mail_parser::Address::Group(groups)) => {
                    let name = groups
                        .first()
                        .and_then(|g| g.name.as_deref())
                        .unwrap_or("")
                        .to_uppercase();
                    (name.clone(), name)
                }
                Some(list) => {
                    let Some(addr) = list.first() else {
                        return (String::new(), String::new());
                    };
                    let spec = addr.address.as_deref().unwrap_or("");
                    let mailbox = spec.rsplit_once('@').map_or(spec, |(local, _)| local);
                    let display = match addr.name.as_deref().map(str::trim) {
                        Some(name) if !name.is_empty() => name,
                        _ => spec,
                    };
                    (mailbox.to_uppercase(), display.to_uppercase())
                }
                None => (String::new(), String::new()),
            }
        };
        (f.from, f.display_from) = first(msg.from());
        (f.to, f.display_to) = first(msg.to());
        f.cc = first(msg.cc()).0;
        f.message_id = msg.message_id().map(str::to_string);
        f.references = msg
            .references()
            .as_text_list()
            .map(|l| l.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        if f.references.is_empty() {
            f.references = msg
                .in_reply_to()
                .as_text_list()
                .and_then(|l| l.first())
                .map(|r| vec![r.to_string()])
                .unwrap_or_default();
        }
        f.references.retain(|r| Some(r) != f.message_id.as_ref());
        f
    }
}

/// A `[...]` blob and the whitespace after it: its length in `s`.
fn blob(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find(['[', ']'])?;
    if !rest[close..].starts_with(']') {
        return None;
    }
    let after = &rest[close + 1..];
    Some(s.len() - after.trim_start_matches([' ', '\t']).len())
}

/// `re` / `fw` / `fwd`, whitespace, an optional blob and `:`: its length.
fn refwd(s: &str) -> Option<usize> {
    let lower = s.get(..3).unwrap_or(s).to_ascii_lowercase();
    let word = ["fwd", "fw", "re"]
        .into_iter()
        .find(|w| lower.starts_with(w))?
        .len();
    let mut i = word + (s[word..].len() - s[word..].trim_start_matches([' ', '\t']).len());
    if let Some(n) = blob(&s[i..]) {
        i += n;
    }
    s[i..].starts_with(':').then_some(i + 1)
}

/// RFC 5256 section 2.1: the base subject of a (decoded) subject, and
/// whether anything marking a reply or forward was removed.
pub fn base_subject(subject: &str) -> (String, bool) {
    // (1) Whitespace runs become one space.
    let mut s = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        // (2) Trailing "(fwd)" and whitespace.
        loop {
            let t = s.trim_end();
            let lower = t.to_ascii_lowercase();
            if lower.ends_with("(fwd)") {
                s = t[..t.len() - 5].to_string();
                reply = true;
            } else {
                s = t.to_string();
                break;
            }
        }
        // (3)-(5) Leaders and blobs, until nothing changes.
        loop {
            let before = s.len();
            // (3) subj-leader: whitespace, or blobs then re/fw/fwd ":".
            loop {
                if s.starts_with([' ', '\t']) {
                    s = s.trim_start().to_string();
                    continue;
                }
                let mut i = 0;
                while let Some(n) = blob(&s[i..]) {
                    i += n;
                }
                match refwd(&s[i..]) {
                    Some(n) => {
                        s = s[i + n..].to_string();
                        reply = true;
                    }
                    None => break,
                }
            }
            // (4) A leading blob, if something remains after it.
            if let Some(n) = blob(&s)
                && !s[n..].trim().is_empty()
            {
                s = s[n..].to_string();
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: ...]" wrappers.
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (s.trim().to_string(), reply);
    }
}

#[cfg(test)]
mod tests {
    use super::base_subject;

    #[test]
    fn base_subjects() {
        assert_eq!(base_subject("Hello"), ("Hello".into(), false));
        assert_eq!(base_subject("Re: Hello"), ("Hello".into(), true));
        assert_eq!(base_subject("RE:  re: Fwd: Hello"), ("Hello".into(), true));
        assert_eq!(base_subject("Re[2]: Hello (fwd)"), ("Hello".into(), true));
        assert_eq!(
            base_subject("[list] Re: [other] Hello\tworld"),
            ("Hello world".into(), true)
        );
        assert_eq!(base_subject("[fwd: Re: Hello]"), ("Hello".into(), true));
        assert_eq!(base_subject("[only blob]"), ("[only blob]".into(), false));
        assert_eq!(
            base_subject("Rex: not a reply"),
            ("Rex: not a reply".into(), false)
        );
        assert_eq!(base_subject(""), ("".into(), false));
    }
}
