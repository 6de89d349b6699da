//! Decoding message content as it arrives, without ever holding a whole
//! message: `DataDecoder` finds the one true end of DATA (`<CRLF>.<CRLF>`),
//! removes dot-stuffing, and turns every bare CR or bare LF into CRLF so that
//! no smuggled line end can start a second transaction, here or at the next
//! hop; `ChunkDecoder` does the line-end part for BDAT. `MessageSink` counts
//! size, notes 8-bit bytes, keeps the header section (`HeaderCollector`) and
//! streams the rest to the store.

use super::mime::MimeCounter;
use crate::mail::lines::copy_line_run;
use crate::mail::reply::Reply;
use crate::store::{BlobWriter, StoreError};

/// The DATA state machine.
#[derive(Debug)]
pub struct DataDecoder {
    line_start: bool,
    dot: bool,
    cr: bool,
    dot_cr: bool,
}

impl Default for DataDecoder {
    fn default() -> Self {
        DataDecoder {
            line_start: true,
            dot: false,
            cr: false,
            dot_cr: false,
        }
    }
}

impl DataDecoder {
    /// Decodes `input` into `out`. Returns `Some(n)` when the end of data was
    /// found after `n` bytes of `input` (the rest belongs to the next command).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            // Inside a line with nothing pending, every byte up to the next
            // CR or LF passes as it is: copy the run in one go.
            if !self.cr && !self.line_start && !self.dot {
                i += copy_line_run(&input[i..], out);
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            if self.cr {
                self.cr = false;
                let dot_cr = std::mem::take(&mut self.dot_cr);
                if b == b'\n' {
                    if dot_cr {
                        return Some(i);
                    }
                    out.extend_from_slice(b"\r\n");
                    self.line_start = true;
                    continue;
                }
                // A bare CR: content, written as a line end; not a line start.
                if dot_cr {
                    out.push(b'.');
                }
                out.extend_from_slice(b"\r\n");
            }
            if self.line_start {
                self.line_start = false;
                if b == b'.' {
                    self.dot = true;
                    continue;
                }
            }
            if self.dot {
                self.dot = false;
                match b {
                    b'\r' => {
                        self.cr = true;
                        self.dot_cr = true;
                        continue;
                    }
                    b'\n' => {
                        out.extend_from_slice(b".\r\n");
                        continue;
                    }
                    // Otherwise the leading dot was stuffing: drop it.
                    _ => {}
                }
            }
            match b {
                b'\r' => self.cr = true,
                b'\n' => out.extend_from_slice(b"\r\n"),
                _ => out.push(b),
            }
        }
        None
    }
}

/// Line-end normalisation for BDAT chunks (no dot handling).
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    cr: bool,
}

impl ChunkDecoder {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.cr {
                self.cr = false;
                out.extend_from_slice(b"\r\n");
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => self.cr = true,
                b'\n' => out.extend_from_slice(b"\r\n"),
                _ => out.push(b),
            }
        }
    }

    /// Called after the LAST chunk: a trailing CR becomes a line end.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The most header bytes kept for the checks at end of data.
const MAX_HEADER_SECTION: usize = 1024 * 1024;

/// The header section of a message as it streams past: kept up to and
/// including the blank line (or `MAX_HEADER_SECTION` bytes), whatever the
/// sizes of the pieces it arrives in.
#[derive(Debug, Default)]
pub struct HeaderCollector {
    header: Vec<u8>,
    done: bool,
    /// The section was longer than `MAX_HEADER_SECTION` and was cut.
    cut: bool,
}

impl HeaderCollector {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.done {
            return;
        }
        let start = self.header.len().saturating_sub(3);
        self.header.extend_from_slice(bytes);
        // A message that starts with its blank line has an empty header
        // section, however the first bytes were split.
        if self.header.starts_with(b"\r\n") {
            self.header.truncate(2);
            self.done = true;
        } else if let Some(p) = find(&self.header[start..], b"\r\n\r\n") {
            self.header.truncate(start + p + 4);
            self.done = true;
        }
        if self.header.len() > MAX_HEADER_SECTION {
            self.header.truncate(MAX_HEADER_SECTION);
            self.done = true;
            self.cut = true;
        }
    }

    /// The header section seen (up to and including the blank line).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Is the header section longer than `max` bytes (so far)?
    pub fn longer_than(&self, max: usize) -> bool {
        self.cut || self.header.len() > max
    }

    /// Has the header section a field of this name?
    pub fn has_header(&self, name: &str) -> bool {
        header_lines(&self.header).any(|l| {
            l.len() > name.len()
                && l[name.len()] == b':'
                && l[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        })
    }
}

/// The limits a message is held to while it arrives.
#[derive(Debug, Clone, Copy)]
pub struct SinkLimits {
    /// `limits.max_message_size`.
    pub max_size: u64,
    /// `limits.max_header_size`.
    pub max_header: usize,
    /// `limits.max_mime_parts`.
    pub max_parts: usize,
}

/// Where decoded content goes.
pub struct MessageSink {
    writer: Option<BlobWriter>,
    size: u64,
    limits: SinkLimits,
    header: HeaderCollector,
    mime: MimeCounter,
    pub eight_bit: bool,
    error: Option<SinkError>,
}

impl MessageSink {
    pub fn new(writer: BlobWriter, limits: SinkLimits) -> MessageSink {
        MessageSink {
            writer: Some(writer),
            size: 0,
            limits,
            header: HeaderCollector::default(),
            mime: MimeCounter::default(),
            eight_bit: false,
            error: None,
        }
    }

    pub async fn push(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if !self.eight_bit && !bytes.is_ascii() {
            self.eight_bit = true;
        }
        self.header.push(bytes);
        if self.error.is_none() {
            self.mime.push(bytes);
            if self.size > self.limits.max_size {
                self.error = Some(SinkError::TooBig);
            } else if self.header.longer_than(self.limits.max_header) {
                self.error = Some(SinkError::HeaderTooBig);
            } else if self.mime.parts() > self.limits.max_parts {
                self.error = Some(SinkError::TooManyParts);
            }
        }
        if self.error.is_some() {
            self.writer = None; // dropping it removes what it wrote
            return;
        }
        if let Some(w) = self.writer.as_mut()
            && let Err(e) = w.write(bytes).await
        {
            self.error = Some(SinkError::Store(e));
            self.writer = None;
        }
    }

    /// Stops keeping the message (the disk is nearly full): what was written
    /// is removed, the rest is read and dropped, and the end of data gets
    /// 452 4.3.1.
    pub fn abandon_for_space(&mut self) {
        if self.error.is_none() {
            self.error = Some(SinkError::NoSpace);
        }
        self.writer = None;
    }

    /// Why the message cannot be kept, if it cannot.
    pub fn failure(&self) -> Option<&SinkError> {
        self.error.as_ref()
    }

    pub fn too_big(&self) -> bool {
        self.size > self.limits.max_size
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The header section seen (up to and including the blank line).
    pub fn header(&self) -> &[u8] {
        self.header.header()
    }

    /// Has the header section a field of this name?
    pub fn has_header(&self, name: &str) -> bool {
        self.header.has_header(name)
    }

    /// The writer, while there is one (not too big, no store error).
    pub fn writer_mut(&mut self) -> Option<&mut BlobWriter> {
        self.writer.as_mut()
    }

    /// The message as received — writer, header section, size, 8-bit or
    /// not — or why there is none to keep.
    pub fn finish(self) -> Result<Received, SinkError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let writer = self.writer.ok_or(SinkError::TooBig)?;
        Ok(Received {
            writer,
            header: self.header.header,
            size: self.size,
            eight_bit: self.eight_bit,
        })
    }
}

/// A message that arrived whole and within the limits.
pub struct Received {
    pub writer: BlobWriter,
    /// The header section (up to and including the blank line).
    pub header: Vec<u8>,
    /// Bytes received.
    pub size: u64,
    /// Some byte was not ASCII.
    pub eight_bit: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("message too big")]
    TooBig,
    #[error("header section too big")]
    HeaderTooBig,
    #[error("too many MIME parts")]
    TooManyParts,
    #[error("not enough free disk space")]
    NoSpace,
    #[error(transparent)]
    Store(StoreError),
}

impl SinkError {
    /// The reply at end of data.
    pub fn reply(&self) -> Reply {
        match self {
            SinkError::TooBig => Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ),
            SinkError::HeaderTooBig => {
                Reply::new(552, "5.3.4", "Message header section is too big")
            }
            SinkError::TooManyParts => Reply::new(554, "5.6.0", "Message has too many MIME parts"),
            SinkError::NoSpace => {
                Reply::new(452, "4.3.1", "Insufficient system storage, try again later")
            }
            SinkError::Store(_) => Reply::new(
                451,
                "4.3.0",
                "Error: local storage problem, try again later",
            ),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header_lines(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    header
        .split(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b" ") && !l.starts_with(b"\t"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> (Vec<u8>, Option<usize>) {
        let mut d = DataDecoder::default();
        let mut out = Vec::new();
        let end = d.feed(input, &mut out);
        (out, end)
    }

    fn decode_bytewise(input: &[u8]) -> (Vec<u8>, Option<usize>) {
        let mut d = DataDecoder::default();
        let mut out = Vec::new();
        for (i, b) in input.iter().enumerate() {
            if d.feed(std::slice::from_ref(b), &mut out).is_some() {
                return (out, Some(i + 1));
            }
        }
        (out, None)
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let input = b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n";
        let (out, end) = decode_all(input);
        assert_eq!(out, b"Subject: x\r\n\r\nhello\r\n");
        assert_eq!(end, Some(input.len() - 6));
        assert_eq!(decode_bytewise(input), (out, end));
    }

    #[test]
    fn empty_message_and_unstuffing() {
        assert_eq!(decode_all(b".\r\n"), (Vec::new(), Some(3)));
        let (out, end) = decode_all(b"..leading\r\n...\r\n.\r\n");
        assert_eq!(out, b".leading\r\n..\r\n");
        assert_eq!(end, Some(19));
    }

    #[test]
    fn smuggling_forms_never_end_data() {
        for form in [
            &b"\n.\n"[..],
            b"\r\n.\n",
            b"\n.\r\n",
            b"\r.\r",
            b"\r.\r\n",
            b"\n.\r",
        ] {
            let mut input = b"a".to_vec();
            input.extend_from_slice(form);
            input.extend_from_slice(b"MAIL FROM:<evil@x.test>\r\n");
            let (out, end) = decode_all(&input);
            assert_eq!(end, None, "form {form:?} ended data");
            assert!(
                !out.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
                "bare LF kept for {form:?}"
            );
            assert!(
                !out.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n'),
                "bare CR kept for {form:?}"
            );
            assert_eq!(decode_bytewise(&input), (out, end));
        }
    }

    #[test]
    fn runs_copied_whole_decode_as_byte_by_byte() {
        let input = b"Subject: a\r\n\r\nplain line\r\n.stuffed\r\nbare\nlf and\rcr\r\n\
            ..\r\n.x\n.\rlong line without end of line then the end\r\n.\r\nafter";
        let (out, end) = decode_all(input);
        assert_eq!(end, Some(input.len() - 5));
        assert_eq!(decode_bytewise(input), (out.clone(), end));
        assert!(out.starts_with(
            b"Subject: a\r\n\r\nplain line\r\nstuffed\r\nbare\r\nlf and\r\ncr\r\n.\r\n"
        ));
    }

    #[test]
    fn chunks_normalise_line_ends_across_boundaries() {
        let mut d = ChunkDecoder::default();
        let mut out = Vec::new();
        d.feed(b"a\r", &mut out);
        d.feed(b"\nb\nc\r", &mut out);
        d.feed(b"d\r", &mut out);
        d.finish(&mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\nd\r\n");
    }
}
