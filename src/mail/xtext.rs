//! RFC 3461 xtext, the encoding of ENVID and ORCPT: decoded when a client
//! gives them (`smtp/command.rs`), encoded again when the next hop gets
//! them (`outbound/client.rs`). Pure functions.

/// Decodes RFC 3461 xtext (`+XX` hex escapes).
pub fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if (33..=126).contains(&c) && c != b'=' => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes text as xtext.
pub fn xtext_encode(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if (33..=126).contains(&c) && c != b'+' && c != b'=' {
                (c as char).to_string()
            } else {
                format!("+{c:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(xtext_encode("a+b=c"), "a+2Bb+3Dc");
        assert_eq!(xtext_decode("a+2Bb+3Dc").as_deref(), Some("a+b=c"));
        assert_eq!(xtext_decode("a=b"), None);
        assert_eq!(xtext_decode("+4"), None);
    }
}
