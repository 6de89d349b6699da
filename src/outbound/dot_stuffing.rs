//! The outbound half of line-end hygiene and dot-stuffing: a message body
//! as stored, turned into DATA for the next hop (bare CR or LF become CRLF,
//! a leading dot is doubled, the end is `CRLF . CRLF`). Bytes in, bytes out;
//! it never touches the socket (`client.rs` sends what it produces).

use crate::mail::lines::copy_line_run;

/// Dot-stuffing and line-end repair, fed in pieces.
#[derive(Debug)]
pub struct BodyEncoder {
    line_start: bool,
    cr: bool,
}

impl Default for BodyEncoder {
    fn default() -> Self {
        BodyEncoder {
            line_start: true,
            cr: false,
        }
    }
}

impl BodyEncoder {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            // Inside a line with nothing pending, every byte up to the next
            // CR or LF goes out as it is: copy the run in one go.
            if !self.cr && !self.line_start {
                i += copy_line_run(&input[i..], out);
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            if self.cr {
                self.cr = false;
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => self.cr = true,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                }
                _ => {
                    if self.line_start && b == b'.' {
                        out.push(b'.');
                    }
                    self.line_start = false;
                    out.push(b);
                }
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
        }
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(input: &[u8]) -> Vec<u8> {
        let mut e = BodyEncoder::default();
        let mut out = Vec::new();
        for b in input {
            e.feed(std::slice::from_ref(b), &mut out);
        }
        e.finish(&mut out);
        // Fed whole, the runs between line ends are copied at once: same bytes.
        let mut whole = BodyEncoder::default();
        let mut at_once = Vec::new();
        whole.feed(input, &mut at_once);
        whole.finish(&mut at_once);
        assert_eq!(at_once, out);
        out
    }

    #[test]
    fn stuffs_and_never_sends_bare_line_ends() {
        assert_eq!(encode(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(
            encode(b"a\n.\nMAIL\r.\r"),
            b"a\r\n..\r\nMAIL\r\n..\r\n.\r\n"
        );
        assert_eq!(encode(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(encode(b""), b".\r\n");
    }
}
