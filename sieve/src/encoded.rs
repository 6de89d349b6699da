//! Compile-time string processing: `${hex:..}`/`${unicode:..}` decoding
//! (RFC 5228 section 2.4.2.4, the encoded-character extension) and the
//! refusal of variable namespaces this implementation lacks (RFC 5229).

use crate::variables::is_identifier;

/// Rejects `${a.b}` references: no variable namespaces are supported here
/// (RFC 5229 section 3), and Pigeonhole refuses unknown ones too.
pub(crate) fn check_namespaces(s: &str) -> Result<(), String> {
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        if let Some(name) = after.find('}').map(|end| &after[..end])
            && name.contains('.')
            && name.split('.').all(is_identifier)
        {
            let ns = name.split('.').next().unwrap_or_default();
            return Err(format!("variable in unknown namespace '{ns}'"));
        }
        rest = after;
    }
    Ok(())
}

/// Replaces `${hex:..}` and `${unicode:..}` sequences; malformed ones stay,
/// but a code point outside Unicode is an error (RFC 5228 section 2.4.2.4).
pub fn decode_encoded(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match decode_one(after)? {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &after[used..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn decode_one(after: &str) -> Result<Option<(String, usize)>, String> {
    let Some(colon) = after.find(':') else {
        return Ok(None);
    };
    let kind = after[..colon].to_ascii_lowercase();
    if kind != "hex" && kind != "unicode" {
        return Ok(None);
    }
    let Some(close) = after.find('}') else {
        return Ok(None);
    };
    if close < colon {
        return Ok(None);
    }
    let inner = &after[colon + 1..close];
    if inner.trim().is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    let mut text = String::new();
    for word in inner
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        if !word.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        if kind == "hex" {
            // hex-pair = 1*2HEXDIG
            match u8::from_str_radix(word, 16) {
                Ok(b) if word.len() <= 2 => bytes.push(b),
                _ => return Ok(None),
            }
        } else {
            let trimmed = word.trim_start_matches('0');
            let cp = if trimmed.len() > 8 {
                u32::MAX
            } else {
                u32::from_str_radix(if trimmed.is_empty() { "0" } else { trimmed }, 16)
                    .unwrap_or(u32::MAX)
            };
            match char::from_u32(cp) {
                Some(c) => text.push(c),
                None => {
                    return Err(format!(
                        "invalid unicode character U+{trimmed} in encoded character"
                    ));
                }
            }
        }
    }
    if kind == "hex" {
        match String::from_utf8(bytes) {
            Ok(t) => text = t,
            Err(_) => return Ok(None),
        }
    }
    Ok(Some((text, close + 1)))
}
