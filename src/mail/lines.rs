//! Line handling shared by the inbound and outbound sides: the run of a
//! line's bytes that passes unchanged through the line-end state machines
//! (`smtp/body.rs` repairs bare CR/LF and removes dot-stuffing on the way
//! in; `outbound/dot_stuffing.rs` repairs and stuffs on the way out). Pure.

/// Copies `input` up to its first CR or LF (or all of it) to `out` and
/// says how many bytes that was: the run inside a line that the line-end
/// state machines, inbound (`smtp/body.rs`) and outbound
/// (`outbound::dot_stuffing`),, pass on
/// as it is.
pub fn copy_line_run(input: &[u8], out: &mut Vec<u8>) -> usize {
    let run = memchr::memchr2(b'\r', b'\n', input).unwrap_or(input.len());
    out.extend_from_slice(&input[..run]);
    run
}

/// The text with every line ending CRLF: a bare LF or bare CR (a file
/// written on Unix, say) becomes CRLF, as SMTP's end of data repairs it.
pub fn to_crlf(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32);
    let mut rest = input;
    while !rest.is_empty() {
        let run = copy_line_run(rest, &mut out);
        rest = &rest[run..];
        match rest {
            [b'\r', b'\n', ..] => rest = &rest[2..],
            [_, ..] => rest = &rest[1..],
            [] => break,
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_end_becomes_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd");
        assert_eq!(to_crlf(b"x\n\n"), b"x\r\n\r\n");
        assert_eq!(to_crlf(b""), b"");
    }

    #[test]
    fn copies_up_to_the_first_line_end() {
        let mut out = Vec::new();
        assert_eq!(copy_line_run(b"abc\r\ndef", &mut out), 3);
        assert_eq!(out, b"abc");
        assert_eq!(copy_line_run(b"\nx", &mut out), 0);
        assert_eq!(copy_line_run(b"tail", &mut out), 4);
        assert_eq!(out, b"abctail");
    }
}
