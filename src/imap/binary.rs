//! BINARY (RFC 3516, part of IMAP4rev2): the content of a body part with
//! its Content-Transfer-Encoding undone (base64 and quoted-printable are
//! decoded, 7bit/8bit/binary are as stored; anything else is
//! `UNKNOWN-CTE`), and, for APPEND with a literal8, binary parts stored
//! base64-encoded so that BODY[] never has to carry NUL.

use super::render;
use base64::Engine;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{MimeHeaders, PartType};
use std::num::NonZeroU32;

/// A part whose Content-Transfer-Encoding this server does not know.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownCte;

/// The bytes of BINARY[section]: the whole message as stored for `[]`, a
/// part's decoded content, a multipart's raw body; empty for parts that do
/// not exist.
pub fn section(bytes: &[u8], section: &[NonZeroU32]) -> Result<Vec<u8>, UnknownCte> {
    if section.is_empty() {
        return Ok(bytes.to_vec());
    }
    let Some(msg) = render::parse(bytes) else {
        return Ok(Vec::new());
    };
    let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
    let Some(located) = render::locate(&msg, &path) else {
        return Ok(Vec::new());
    };
    let part = located.part;
    let body = render::slice(located.raw, part.offset_body, part.offset_end);
    if matches!(part.body, PartType::Multipart(_)) {
        return Ok(body.to_vec());
    }
    decode(body, part.content_transfer_encoding())
}

fn decode(body: &[u8], encoding: Option<&str>) -> Result<Vec<u8>, UnknownCte> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("7bit" | "8bit" | "binary" | "") => Ok(body.to_vec()),
        // Damaged encodings decode as far as they go rather than failing
        // the whole FETCH.
        Some("base64") => Ok(base64_decode(body).unwrap_or_else(|| {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .collect();
            base64_decode(&clean).unwrap_or_default()
        })),
        Some("quoted-printable") => {
            Ok(quoted_printable_decode(body).unwrap_or_else(|| body.to_vec()))
        }
        Some(_) => Err(UnknownCte),
    }
}

/// A message with each top-level leaf part that holds NUL or is declared
/// `binary` re-encoded as base64; `None` when nothing needed it.
pub fn encode_binary_parts(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.contains(&0) && !contains_ignore_case(bytes, b"binary") {
        return None;
    }
    let msg = render::parse(bytes)?;
    let mut out = Vec::with_capacity(bytes.len() * 4 / 3 + 256);
    let mut at = 0usize;
    for part in &msg.parts {
        if matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
            continue;
        }
        let (head_start, body_start, end) = (
            part.offset_header as usize,
            part.offset_body as usize,
            (part.offset_end as usize).min(bytes.len()),
        );
        if head_start < at || body_start > end {
            continue;
        }
        let body = &bytes[body_start..end];
        let declared_binary = part
            .content_transfer_encoding()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("binary"));
        if !declared_binary && !body.contains(&0) {
            continue;
        }
        out.extend_from_slice(&bytes[at..head_start]);
        let header = &bytes[head_start..body_start];
        for (name, field) in render::header_fields(header) {
            if !name.eq_ignore_ascii_case(b"Content-Transfer-Encoding") {
                out.extend_from_slice(field);
            }
        }
        out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(body);
        for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
        }
        at = end;
    }
    if at == 0 {
        return None;
    }
    out.extend_from_slice(&bytes[at..]);
    Some(out)
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Subject: t\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n/w==\r\n--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--b--\r\n";

    fn n(v: &[u32]) -> Vec<NonZeroU32> {
        v.iter().filter_map(|&x| NonZeroU32::new(x)).collect()
    }

    #[test]
    fn parts_are_decoded() {
        assert_eq!(section(MSG, &n(&[1])).unwrap(), "café au lait".as_bytes());
        assert_eq!(section(MSG, &n(&[2])).unwrap(), vec![0, 1, 2, 0xff]);
        assert_eq!(section(MSG, &n(&[3])), Err(UnknownCte));
        assert_eq!(section(MSG, &[]).unwrap(), MSG);
        assert!(section(MSG, &n(&[9])).unwrap().is_empty());
    }

    #[test]
    fn binary_parts_become_base64() {
        let raw = b"Subject: b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\xe4\r\n";
        let stored = encode_binary_parts(raw).unwrap();
        assert!(!stored.contains(&0));
        let text = String::from_utf8(stored.clone()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\n"),
            "{text}"
        );
        assert!(!text.contains("binary"), "{text}");
        assert_eq!(section(&stored, &n(&[1])).unwrap(), b"\0\xe4\r\n");
        assert!(encode_binary_parts(MSG).is_none());
    }
}
