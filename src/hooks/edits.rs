//! Header edits a filter plugin asks for, made safe: a field name of
//! printable ASCII without colon or space, a value that stays one header
//! field (CR and LF only as folding, at most 998 bytes). What a plugin
//! returns never adds a line or ends the header section.

use super::bindings::wit;
use super::dispatch::FilterOutcome;

/// Longest header field value a filter may add.
const MAX_HEADER_VALUE: usize = 998;

/// A value as one header line: CR and LF only as folding, printable otherwise.
pub(super) fn clean_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if matches!(chars.peek(), Some(' ') | Some('\t')) {
                    out.push_str("\r\n");
                } else {
                    out.push(' ');
                }
            }
            c if c.is_control() && c != '\t' => out.push(' '),
            c => out.push(c),
        }
        if out.len() >= MAX_HEADER_VALUE {
            break;
        }
    }
    // Cut at the length limit right after a fold, the value would end in
    // CRLF, and the field's own CRLF would make a blank line: the end of
    // the header section (found by the plugin_reply fuzz target). No
    // trailing fold or white space, then.
    let kept = out.trim_end().len();
    out.truncate(kept);
    out
}

/// A field name: printable ASCII without colon or space (RFC 5322 ftext).
fn name_ok(n: &str) -> bool {
    !n.is_empty() && n.len() <= 76 && n.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// The header lines a list of edits adds (for the fuzz targets).
pub(crate) fn header_lines_of(edits: &[wit::HeaderEdit]) -> Vec<u8> {
    let mut out = FilterOutcome::default();
    apply_edits("fuzz", edits, &mut out);
    out.add_headers
}

pub(super) fn apply_edits(plugin: &str, edits: &[wit::HeaderEdit], out: &mut FilterOutcome) {
    for e in edits {
        match e {
            wit::HeaderEdit::Add(h) if name_ok(&h.name) => {
                out.add_headers.extend_from_slice(
                    format!("{}: {}\r\n", h.name, clean_value(&h.value)).as_bytes(),
                );
            }
            wit::HeaderEdit::Remove(name) if name_ok(name) => out.remove_headers.push(name.clone()),
            other => {
                tracing::warn!(plugin, edit = ?other, "header edit with an invalid field name ignored")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_cannot_inject_lines() {
        assert_eq!(clean_value("a\r\nBcc: x"), "a Bcc: x");
        assert_eq!(clean_value("a\r\n b"), "a\r\n b");
        assert_eq!(clean_value("a\nb\rc\0d"), "a b c d");
        // A fold at the length limit must not end the value in CRLF.
        let long = format!("{}\r\n x", "v".repeat(MAX_HEADER_VALUE - 2));
        assert!(!clean_value(&long).ends_with('\n'));
        assert_eq!(clean_value("a\r\n \r\n "), "a");
        assert!(name_ok("X-Tern"));
        assert!(!name_ok("X Tern") && !name_ok("X:") && !name_ok(""));
    }
}
