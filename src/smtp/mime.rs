//! Counting MIME parts while a message streams in, without parsing it:
//! every `boundary=` parameter seen on a line is remembered, and a line
//! that is `--` plus a remembered boundary (not the closing `--b--`) starts
//! a part. This is the figure `limits.max_mime_parts` bounds, so that no
//! filter, mail-auth check or IMAP BODYSTRUCTURE is ever asked to walk a
//! message of a million parts. It over-counts rather than under-counts
//! (a boundary quoted in a text part counts too), which is the safe side.

/// Lines longer than this are not looked at (no boundary line is; RFC 2046
/// limits a boundary to 70 characters).
const MAX_LINE: usize = 1000;
/// Distinct boundaries remembered; more nested multiparts than this is
/// itself abuse, and further ones are not counted.
const MAX_BOUNDARIES: usize = 64;

#[derive(Debug, Default)]
pub struct MimeCounter {
    line: Vec<u8>,
    line_too_long: bool,
    boundaries: Vec<Vec<u8>>,
    parts: usize,
}

impl MimeCounter {
    /// Feeds decoded message bytes (CRLF line ends).
    pub fn push(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(p) = memchr::memchr(b'\n', rest) {
            if self.line.is_empty() && !self.line_too_long {
                // A whole line in this chunk: looked at in place, not copied.
                let line = &rest[..p];
                if line.len() <= MAX_LINE {
                    self.look_at(line);
                }
            } else {
                self.add(&rest[..p]);
                self.end_line();
            }
            rest = &rest[p + 1..];
        }
        self.add(rest);
    }

    /// Parts started so far.
    pub fn parts(&self) -> usize {
        self.parts
    }

    fn add(&mut self, bytes: &[u8]) {
        if self.line_too_long {
            return;
        }
        if self.line.len() + bytes.len() > MAX_LINE {
            self.line_too_long = true;
            self.line.clear();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn end_line(&mut self) {
        let mut line = std::mem::take(&mut self.line);
        if !std::mem::take(&mut self.line_too_long) {
            self.look_at(&line);
        }
        line.clear();
        self.line = line;
    }

    /// One whole line, its LF taken off (a CR before it is taken off here).
    fn look_at(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"--") {
            // `--b` starts a part; the closing `--b--` does not match.
            let rest = trim_end(rest);
            if self.boundaries.iter().any(|b| b == rest) {
                self.parts += 1;
            }
            return;
        }
        if let Some(b) = boundary_parameter(line)
            && self.boundaries.len() < MAX_BOUNDARIES
            && !self.boundaries.contains(&b)
        {
            self.boundaries.push(b);
        }
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(0, |p| p + 1);
    &b[..end]
}

/// The value of a `boundary=` parameter on this line, if any.
fn boundary_parameter(line: &[u8]) -> Option<Vec<u8>> {
    const NAME: &[u8] = b"boundary";
    let at = memchr::memchr_iter(b'=', line)
        .find(|&eq| eq >= NAME.len() && line[eq - NAME.len()..eq].eq_ignore_ascii_case(NAME))?;
    let value = &line[at + 1..];
    let value = if let Some(quoted) = value.strip_prefix(b"\"") {
        &quoted[..quoted.iter().position(|&c| c == b'"')?]
    } else {
        let end = value
            .iter()
            .position(|&c| c == b';' || c == b' ' || c == b'\t')
            .unwrap_or(value.len());
        &value[..end]
    };
    (!value.is_empty() && value.len() <= 200).then(|| value.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(message: &[u8], split: usize) -> usize {
        let mut c = MimeCounter::default();
        for piece in message.chunks(split) {
            c.push(piece);
        }
        c.parts()
    }

    #[test]
    fn counts_parts_of_nested_multiparts_however_split() {
        let m = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
preamble\r\n--outer\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--outer\r\nContent-Type: multipart/alternative;\r\n boundary=inner\r\n\r\n\
--inner\r\n\r\na\r\n--inner\r\n\r\nb\r\n--inner--\r\n--outer--\r\n";
        for split in [1, 3, 7, m.len()] {
            assert_eq!(count(m, split), 4, "split {split}");
        }
    }

    #[test]
    fn a_boundary_on_an_overlong_line_is_not_learned_however_split() {
        let mut m = b"X-Pad: ".to_vec();
        m.extend(std::iter::repeat_n(b'a', MAX_LINE));
        m.extend_from_slice(b" boundary=b\r\n\r\n--b\r\n");
        for split in [1, 3, 7, m.len()] {
            assert_eq!(count(&m, split), 0, "split {split}");
        }
        let short = b"Content-Type: multipart/mixed; BOUNDARY=b\r\n\r\n--b\r\n--b--\r\n";
        for split in [1, 3, 7, short.len()] {
            assert_eq!(count(short, split), 1, "split {split}");
        }
    }

    #[test]
    fn unknown_boundaries_and_plain_text_count_nothing() {
        assert_eq!(count(b"Subject: x\r\n\r\n--not\r\n--not\r\n", 5), 0);
    }
}
