//! The message as Sieve tests see it, over `mail-parser`: header values
//! unfolded and RFC 2047-decoded, addresses of address headers, header dates,
//! the raw and decoded bodies of MIME parts (RFC 5173) and the size.

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, DateTime, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

/// A parsed message.
pub struct MessageView<'a> {
    raw: &'a [u8],
    msg: Option<Message<'a>>,
}

/// One address of an address header, split for the address parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub local: String,
    pub domain: String,
}

impl Addr {
    /// Splits `a` at its last `@` (no `@`: all local part).
    pub fn split(a: &str) -> Addr {
        let a = unbracket(a);
        match a.rsplit_once('@') {
            Some((l, d)) => Addr {
                local: l.to_string(),
                domain: d.to_string(),
            },
            None => Addr {
                local: a.to_string(),
                domain: String::new(),
            },
        }
    }
}

/// `a` trimmed, without the angle brackets of `<local@domain>`.
pub(crate) fn unbracket(a: &str) -> &str {
    let a = a.trim();
    a.strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(a)
}

impl<'a> MessageView<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        MessageView {
            raw,
            msg: MessageParser::default().parse(raw),
        }
    }

    pub fn size(&self) -> u64 {
        self.raw.len() as u64
    }

    /// Raw values (after the colon, with the line end) of the top-level
    /// header fields called `name`, in order.
    pub fn raw_values(&self, name: &str) -> Vec<&'a [u8]> {
        let Some(msg) = &self.msg else {
            return Vec::new();
        };
        msg.root_part()
            .headers()
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .filter_map(|h| self.raw.get(h.offset_start as usize..h.offset_end as usize))
            .collect()
    }

    pub fn exists(&self, name: &str) -> bool {
        !self.raw_values(name).is_empty()
    }

    /// Unfolded, decoded values of the header fields called `name`.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.raw_values(name)
            .into_iter()
            .map(decode_unstructured)
            .collect()
    }

    /// The addresses of each header field called `name` (one list per field).
    pub fn addresses(&self, name: &str) -> Vec<Vec<Addr>> {
        self.raw_values(name)
            .into_iter()
            .map(|raw| {
                let bytes = with_line_end(raw);
                let mut out = Vec::new();
                match MessageStream::new(&bytes).parse_address() {
                    HeaderValue::Address(Address::List(list)) => {
                        out.extend(
                            list.iter()
                                .filter_map(|a| a.address.as_deref())
                                .map(Addr::split),
                        );
                    }
                    HeaderValue::Address(Address::Group(groups)) => {
                        for g in &groups {
                            out.extend(
                                g.addresses
                                    .iter()
                                    .filter_map(|a| a.address.as_deref())
                                    .map(Addr::split),
                            );
                        }
                    }
                    _ => {}
                }
                out
            })
            .collect()
    }

    /// The parsed dates of the header fields called `name` (None when unparsable).
    pub fn dates(&self, name: &str) -> Vec<Option<DateTime>> {
        self.raw_values(name)
            .into_iter()
            .map(|raw| {
                let bytes = with_line_end(raw);
                match MessageStream::new(&bytes).parse_date() {
                    HeaderValue::DateTime(d) if d.is_valid() => Some(d),
                    _ => None,
                }
            })
            .collect()
    }

    /// The body after the top-level header, undecoded (`body :raw`).
    pub fn raw_body(&self) -> String {
        let start = self
            .msg
            .as_ref()
            .map(|m| m.root_part().offset_body as usize)
            .unwrap_or(0);
        String::from_utf8_lossy(self.raw.get(start..).unwrap_or_default()).into_owned()
    }

    /// Decoded contents of the leaf parts whose content type matches one of
    /// `types` ("" all, "text" any text/*, "text/plain" exactly).
    pub fn body_parts(&self, types: &[String]) -> Vec<String> {
        self.parts(types, false)
    }

    /// `body :text`: the text parts, HTML converted to plain text.
    pub fn text_parts(&self) -> Vec<String> {
        self.parts(&["text".to_string()], true)
    }

    fn parts(&self, types: &[String], html_as_text: bool) -> Vec<String> {
        let Some(msg) = &self.msg else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for part in &msg.parts {
            let (ty, sub) = match part.content_type() {
                Some(ct) => (
                    ct.c_type.to_ascii_lowercase(),
                    ct.c_subtype
                        .as_deref()
                        .unwrap_or_default()
                        .to_ascii_lowercase(),
                ),
                None => ("text".to_string(), "plain".to_string()),
            };
            let wanted = types.iter().any(|t| {
                let t = t.to_ascii_lowercase();
                match t.split_once('/') {
                    _ if t.is_empty() => true,
                    Some((a, b)) => a == ty && b == sub,
                    None => t == ty,
                }
            });
            if !wanted {
                continue;
            }
            match &part.body {
                PartType::Html(t) if html_as_text => {
                    out.push(mail_parser::decoders::html::html_to_text(t))
                }
                PartType::Text(t) | PartType::Html(t) => out.push(t.to_string()),
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    out.push(String::from_utf8_lossy(b).into_owned())
                }
                PartType::Multipart(_) => {
                    // RFC 5173 section 5.2: a multipart type matches its prologue and epilogue.
                    let boundary = part
                        .content_type()
                        .and_then(|ct| ct.attribute("boundary"))
                        .unwrap_or_default();
                    let body = self
                        .raw
                        .get(part.offset_body as usize..part.offset_end as usize)
                        .unwrap_or_default();
                    out.extend(prologue_epilogue(&String::from_utf8_lossy(body), boundary));
                }
                PartType::Message(_) => {}
            }
        }
        out
    }
}

/// The text before the first and after the closing boundary line.
fn prologue_epilogue(body: &str, boundary: &str) -> Vec<String> {
    if boundary.is_empty() {
        return Vec::new();
    }
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut prologue = String::new();
    let mut epilogue = String::new();
    let mut state = 0; // 0 prologue, 1 parts, 2 epilogue
    for line in body.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        match state {
            0 if bare.trim_end() == open || bare.trim_end() == close => {
                state = if bare.trim_end() == close { 2 } else { 1 }
            }
            0 => prologue.push_str(line),
            1 if bare.trim_end() == close => state = 2,
            1 => {}
            _ => epilogue.push_str(line),
        }
    }
    [prologue, epilogue]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
}

fn with_line_end(raw: &[u8]) -> Vec<u8> {
    let mut v = raw.to_vec();
    if !v.ends_with(b"\n") {
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Unfolds and decodes (RFC 2047) one raw header value.
pub fn decode_unstructured(raw: &[u8]) -> String {
    let bytes = with_line_end(raw);
    match MessageStream::new(&bytes).parse_unstructured() {
        HeaderValue::Text(t) => t.trim().to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_unfolded_and_decoded() {
        let raw = b"From: \"A\" <a+x@Example.org>, b@c.d\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n  au lait\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\nhi\r\n";
        let m = MessageView::new(raw);
        assert_eq!(m.header_values("subject"), vec!["café au lait".to_string()]);
        let a = m.addresses("from");
        assert_eq!(
            a[0][0],
            Addr {
                local: "a+x".into(),
                domain: "Example.org".into()
            }
        );
        assert_eq!(a[0].len(), 2);
        assert!(m.dates("date")[0].is_some());
        assert_eq!(m.raw_body(), "hi\r\n");
        assert_eq!(m.body_parts(&["text".into()]), vec!["hi\r\n".to_string()]);
    }
}
