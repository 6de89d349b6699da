//! What FETCH returns about one message, computed from its stored bytes
//! with mail-parser: ENVELOPE (from the header block alone), BODY and
//! BODYSTRUCTURE, and the byte ranges of BODY[section]<partial> (HEADER,
//! HEADER.FIELDS (.NOT), TEXT, MIME and part numbers, nested messages
//! included). It renders into a buffer and never touches the socket.

use super::wire::{nstring, string};
use mail_parser::{
    Address, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

/// The header block of a message, with the blank line that ends it.
pub fn header_block(bytes: &[u8]) -> &[u8] {
    match find(bytes, b"\r\n\r\n") {
        Some(p) => &bytes[..p + 4],
        None => match find(bytes, b"\n\n") {
            Some(p) => &bytes[..p + 2],
            None => bytes,
        },
    }
}

/// Whether `bytes` hold the whole header block yet.
pub fn has_header_end(bytes: &[u8]) -> bool {
    find(bytes, b"\r\n\r\n").is_some() || find(bytes, b"\n\n").is_some()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The header fields of a block, each with its folded lines and CRLF.
pub fn header_fields(block: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out: Vec<(&[u8], &[u8])> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < block.len() {
        let end = block[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(block.len());
        let line = &block[i..end];
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation && i > start {
            push_field(&mut out, &block[start..i]);
            start = i;
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        i = end;
    }
    if i > start {
        push_field(&mut out, &block[start..i.min(block.len())]);
    }
    out
}

fn push_field<'a>(out: &mut Vec<(&'a [u8], &'a [u8])>, field: &'a [u8]) {
    if let Some(colon) = field.iter().position(|&b| b == b':') {
        out.push((field[..colon].trim_ascii(), field));
    }
}

/// HEADER.FIELDS and HEADER.FIELDS.NOT: the chosen fields, then a blank line.
pub fn select_fields(block: &[u8], names: &[Vec<u8>], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, field) in header_fields(block) {
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if listed != not {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A header's unfolded raw value (for ENVELOPE and SEARCH).
pub fn raw_header(block: &[u8], name: &str) -> Option<String> {
    header_fields(block)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(n, f)| {
            let value = &f[n.len()..];
            let value = value.strip_prefix(b":").unwrap_or(value);
            let text = String::from_utf8_lossy(value);
            text.split(['\r', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
}

/// ENVELOPE from a header block.
pub fn envelope(out: &mut Vec<u8>, block: &[u8]) {
    let parsed = MessageParser::default().parse_headers(block);
    let raw = |name: &str| raw_header(block, name);
    out.push(b'(');
    nstring(out, raw("Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Subject").as_deref().map(str::as_bytes));
    let addr = |h: HeaderName<'static>| {
        parsed
            .as_ref()
            .and_then(|m| m.header(h))
            .and_then(|v| v.as_address())
    };
    let from = addr(HeaderName::From);
    for (h, fallback) in [
        (HeaderName::From, None),
        (HeaderName::Sender, from),
        (HeaderName::ReplyTo, from),
        (HeaderName::To, None),
        (HeaderName::Cc, None),
        (HeaderName::Bcc, None),
    ] {
        out.push(b' ');
        addresses(out, addr(h).or(fallback));
    }
    out.push(b' ');
    nstring(out, raw("In-Reply-To").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Message-ID").as_deref().map(str::as_bytes));
    out.push(b')');
}

fn addresses(out: &mut Vec<u8>, list: Option<&Address<'_>>) {
    let one = |out: &mut Vec<u8>, name: Option<&str>, address: Option<&str>| {
        // An obsolete source route (`<@relay:user@host>`) is the adl field.
        let (route, address) = match address {
            Some(a) if a.starts_with('@') => match a.split_once(':') {
                Some((r, rest)) => (Some(r), Some(rest)),
                None => (None, Some(a)),
            },
            other => (None, other),
        };
        let (local, host) = match address.and_then(|a| a.rsplit_once('@')) {
            Some((l, h)) => (Some(l), Some(h)),
            None => (address, None),
        };
        out.push(b'(');
        nstring(out, name.map(encode_word).as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, route.map(str::as_bytes));
        out.push(b' ');
        nstring(out, local.map(str::as_bytes));
        out.push(b' ');
        nstring(out, host.map(str::as_bytes));
        out.push(b')');
    };
    let mut body = Vec::new();
    match list {
        Some(Address::List(addrs)) => {
            for a in addrs {
                one(&mut body, a.name.as_deref(), a.address.as_deref());
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                if let Some(name) = &g.name {
                    body.extend_from_slice(b"(NIL NIL ");
                    string(&mut body, name.as_bytes());
                    body.extend_from_slice(b" NIL)");
                }
                // A comment inside a group (`group: (foo) ;`) is no member.
                for a in g.addresses.iter().filter(|a| a.address.is_some()) {
                    one(&mut body, a.name.as_deref(), a.address.as_deref());
                }
                if g.name.is_some() {
                    body.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
        None => {}
    }
    if body.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        out.extend_from_slice(&body);
        out.push(b')');
    }
}

/// Names outside ASCII go back into an RFC 2047 encoded word.
fn encode_word(name: &str) -> String {
    if name.is_ascii() {
        return name.to_string();
    }
    use base64::Engine;
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(name)
    )
}

/// Parses a whole message (BODYSTRUCTURE, sections, SEARCH TEXT).
pub fn parse(bytes: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(bytes)
}

/// BODY (`extended` false) or BODYSTRUCTURE.
pub fn body_structure(out: &mut Vec<u8>, msg: &Message<'_>, extended: bool) {
    part_structure(out, msg, msg.raw_message(), 0, extended);
}

/// The bytes a nested message's offsets point into: mail-parser keeps the
/// outer message's offsets for an embedded message (its root part then
/// does not start at 0) and its own for a decoded one.
fn nested_raw<'m>(outer: &'m [u8], nested: &'m Message<'m>) -> &'m [u8] {
    match nested.parts.first() {
        Some(root) if root.offset_header != 0 => outer,
        _ => nested.raw_message(),
    }
}

fn part_structure(out: &mut Vec<u8>, msg: &Message<'_>, raw: &[u8], id: usize, extended: bool) {
    let Some(part) = msg.parts.get(id) else {
        out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
        return;
    };
    out.push(b'(');
    if let PartType::Multipart(children) = &part.body {
        for &c in children {
            part_structure(out, msg, raw, c as usize, extended);
        }
        out.push(b' ');
        let subtype = part
            .content_type()
            .and_then(|c| c.subtype())
            .unwrap_or("mixed");
        string(out, subtype.to_ascii_uppercase().as_bytes());
        if extended {
            out.push(b' ');
            params(out, part);
            out.push(b' ');
            disposition(out, part);
            out.extend_from_slice(b" NIL NIL");
        }
        out.push(b')');
        return;
    }
    let (ctype, subtype) = match part.content_type() {
        Some(c) => (
            c.ctype().to_ascii_uppercase(),
            c.subtype().unwrap_or("plain").to_ascii_uppercase(),
        ),
        None => ("TEXT".to_string(), "PLAIN".to_string()),
    };
    string(out, ctype.as_bytes());
    out.push(b' ');
    string(out, subtype.as_bytes());
    out.push(b' ');
    params(out, part);
    out.push(b' ');
    nstring(
        out,
        part.content_id()
            .map(|s| format!("<{}>", s.trim_matches(['<', '>'])))
            .as_deref()
            .map(str::as_bytes),
    );
    out.push(b' ');
    nstring(out, part.content_description().map(str::as_bytes));
    out.push(b' ');
    let encoding = part
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .to_ascii_uppercase();
    string(out, encoding.as_bytes());
    let body = raw
        .get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default();
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let PartType::Message(nested) = &part.body {
        if ctype == "MESSAGE" {
            out.push(b' ');
            let inner = nested_raw(raw, nested);
            let block = nested
                .parts
                .first()
                .map(|r| slice(inner, r.offset_header, r.offset_body))
                .unwrap_or_default();
            envelope(out, block);
            out.push(b' ');
            part_structure(out, nested, inner, 0, extended);
            out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
        }
    } else if ctype == "TEXT" {
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    }
    if extended {
        out.extend_from_slice(b" NIL ");
        disposition(out, part);
        out.extend_from_slice(b" NIL NIL");
    }
    out.push(b')');
}

fn lines(body: &[u8]) -> usize {
    let n = body.iter().filter(|&&b| b == b'\n').count();
    if body.last().is_some_and(|&b| b != b'\n') {
        n + 1
    } else {
        n
    }
}

fn params(out: &mut Vec<u8>, part: &MessagePart<'_>) {
    let attrs = part
        .content_type()
        .and_then(|c| c.attributes())
        .unwrap_or_default();
    let is_text = part
        .content_type()
        .is_none_or(|c| c.ctype().eq_ignore_ascii_case("text"));
    if attrs.is_empty() {
        if is_text && part.content_type().is_none() {
            out.extend_from_slice(b"(\"CHARSET\" \"US-ASCII\")");
        } else {
            out.extend_from_slice(b"NIL");
        }
        return;
    }
    out.push(b'(');
    for (i, a) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, a.name.to_ascii_uppercase().as_bytes());
        out.push(b' ');
        string(out, a.value.as_bytes());
    }
    out.push(b')');
}

fn disposition(out: &mut Vec<u8>, part: &MessagePart<'_>) {
    let Some(d) = part.content_disposition() else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    string(out, d.ctype().to_ascii_uppercase().as_bytes());
    out.push(b' ');
    match d.attributes() {
        Some(attrs) if !attrs.is_empty() => {
            out.push(b'(');
            for (i, a) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, a.name.to_ascii_uppercase().as_bytes());
                out.push(b' ');
                string(out, a.value.as_bytes());
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b')');
}

/// Where a part lives: the message whose raw bytes hold it, and the part.
pub struct Located<'m> {
    pub raw: &'m [u8],
    pub part: &'m MessagePart<'m>,
}

/// Finds part `path` (1-based numbers, RFC 3501 6.4.5).
pub fn locate<'m>(msg: &'m Message<'m>, path: &[u32]) -> Option<Located<'m>> {
    let mut current: &Message<'_> = msg;
    let mut raw = msg.raw_message();
    let mut part = current.parts.first()?;
    for (depth, &n) in path.iter().enumerate() {
        if let (true, PartType::Message(nested)) = (depth > 0, &part.body) {
            raw = nested_raw(raw, nested);
            current = nested;
            part = current.parts.first()?;
        }
        part = match &part.body {
            PartType::Multipart(children) => current
                .parts
                .get(*children.get(n.checked_sub(1)? as usize)? as usize)?,
            _ if n == 1 => part,
            _ => return None,
        };
    }
    Some(Located { raw, part })
}

/// The message inside a message/rfc822 part, or the part itself for the top level.
pub fn inner_message<'m>(located: &Located<'m>) -> Option<(&'m [u8], &'m MessagePart<'m>)> {
    match &located.part.body {
        PartType::Message(nested) => Some((nested_raw(located.raw, nested), nested.parts.first()?)),
        _ => None,
    }
}

/// Bytes between two offsets, clamped.
pub fn slice(raw: &[u8], start: u32, end: u32) -> &[u8] {
    let end = (end as usize).min(raw.len());
    let start = (start as usize).min(end);
    &raw[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Lisa <lisa@outside.test>\r\nTo: bob@example.test, \"Carol C\" <carol@example.test>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n Continued\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@x>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n";

    #[test]
    fn envelope_has_raw_subject_and_parsed_addresses() {
        let mut out = Vec::new();
        envelope(&mut out, header_block(MSG));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("(\"Mon, 23 Nov 2026 10:00:00 +0000\" \"=?utf-8?q?caf=C3=A9?= Continued\" ((\"Lisa\" NIL \"lisa\" \"outside.test\"))"), "{text}");
        assert!(
            text.contains(
                "((NIL NIL \"bob\" \"example.test\")(\"Carol C\" NIL \"carol\" \"example.test\"))"
            ),
            "{text}"
        );
        assert!(text.ends_with("NIL \"<m1@x>\")"), "{text}");
    }

    #[test]
    fn parts_and_structure() {
        let msg = parse(MSG).unwrap();
        let one = locate(&msg, &[1]).unwrap();
        assert_eq!(
            slice(one.raw, one.part.offset_body, one.part.offset_end),
            b"hello"
        );
        let inner = locate(&msg, &[2, 1]).unwrap();
        assert_eq!(
            slice(inner.raw, inner.part.offset_body, inner.part.offset_end),
            b"inner body"
        );
        let mut out = Vec::new();
        body_structure(&mut out, &msg, false);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 5 1)(\"MESSAGE\" \"RFC822\""
            ),
            "{text}"
        );
        assert!(text.ends_with(" \"MIXED\")"), "{text}");
    }

    #[test]
    fn header_fields_select_and_skip() {
        let block = header_block(MSG);
        let picked = select_fields(block, &[b"subject".to_vec()], false);
        assert_eq!(
            picked,
            b"Subject: =?utf-8?q?caf=C3=A9?=\r\n Continued\r\n\r\n"
        );
        let rest = select_fields(
            block,
            &[b"subject".to_vec(), b"content-type".to_vec()],
            true,
        );
        assert!(!rest.windows(8).any(|w| w == b"Subject:"));
        assert!(rest.starts_with(b"From: Lisa"));
    }
}
