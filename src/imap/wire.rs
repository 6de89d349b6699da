//! The IMAP wire: framing client messages (lines and literals) with
//! imap-codec's `Fragmentizer` on top of the connection's read buffer, with
//! every literal bounded by `limits.max_message_size`, and the helpers that
//! render strings, lists and numbers in responses. It never interprets a
//! command: `session.rs` decodes the framed message with the codec.

use crate::net::Connection;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::core::LiteralMode;
use std::io;
use std::time::Duration;

/// What reading one client message produced.
pub enum Framed {
    /// A complete message is in the fragmentizer.
    Complete,
    /// The client closed the connection.
    Eof,
    /// No message arrived within the time allowed.
    TimedOut,
}

/// Frames client messages, bounding literals.
pub struct Reader {
    pub frag: Fragmentizer,
    /// Largest literal accepted.
    pub max_literal: u32,
}

impl Reader {
    pub fn new(max_literal: u64) -> Reader {
        let max_literal = u32::try_from(max_literal).unwrap_or(u32::MAX - 65536);
        Reader {
            frag: Fragmentizer::new(max_literal.saturating_add(64 * 1024)),
            max_literal,
        }
    }

    /// Forgets everything read so far (after STARTTLS: nothing the client
    /// pipelined before the handshake may be executed).
    pub fn reset(&mut self) {
        self.frag = Fragmentizer::new(self.max_literal.saturating_add(64 * 1024));
    }

    /// Reads until one complete message (command, AUTHENTICATE response or
    /// IDLE's DONE) is framed. Synchronising literals get a continuation
    /// request, or a tagged NO when they are too big (the message is then
    /// skipped: the client will not send the literal).
    pub async fn read(&mut self, conn: &mut Connection, timeout: Duration) -> io::Result<Framed> {
        loop {
            match self.frag.progress() {
                None => {
                    if conn.buffered().is_empty() {
                        conn.flush().await?;
                        match tokio::time::timeout(timeout, conn.fill()).await {
                            Err(_) => return Ok(Framed::TimedOut),
                            Ok(Ok(0)) => return Ok(Framed::Eof),
                            Ok(r) => r?,
                        };
                    }
                    let n = conn.buffered().len();
                    self.frag.enqueue_bytes(conn.buffered());
                    conn.consume(n);
                }
                Some(FragmentInfo::Line {
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                }) => {
                    if length > self.max_literal {
                        if mode == LiteralMode::Sync {
                            let tag = self
                                .frag
                                .decode_tag()
                                .map(|t| t.inner().to_string())
                                .unwrap_or_else(|| "*".into());
                            conn.write_all(
                                format!(
                                    "{tag} NO [TOOBIG] literal too big (limit {} bytes)\r\n",
                                    self.max_literal
                                )
                                .as_bytes(),
                            )
                            .await?;
                            self.frag.skip_message();
                        } else {
                            // The bytes will come anyway: read and drop them.
                            self.frag.poison_message();
                        }
                        continue;
                    }
                    if mode == LiteralMode::Sync {
                        conn.write_all(b"+ Ready for literal data\r\n").await?;
                    }
                }
                Some(_) => {
                    if self.frag.is_message_complete() {
                        return Ok(Framed::Complete);
                    }
                }
            }
        }
    }
}

/// Appends `s` as an IMAP string: quoted when it is short and safe, else a
/// literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let safe = s.len() < 200 && s.iter().all(|b| (0x20..0x7f).contains(b));
    if safe {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// An nstring: NIL or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name as an astring (always quoted, so names with spaces work).
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    string(out, name.as_bytes());
}

/// A UTF-8 string as IMAP4rev2 allows it (RFC 9051 9: quoted strings may
/// hold UTF-8): quoted unless it holds CR, LF or NUL or is long.
pub fn utf8_string(out: &mut Vec<u8>, s: &str) {
    if s.len() < 1000 && !s.contains(['\r', '\n', '\0']) {
        out.push(b'"');
        for &b in s.as_bytes() {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        string(out, s.as_bytes());
    }
}

/// A sequence set in its shortest form ("1:3,5").
pub fn sequence_set(numbers: &[u32]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_or_literal() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\" \\c");
        assert_eq!(out, b"\"a \\\"b\\\" \\\\c\"");
        out.clear();
        string(&mut out, "é".as_bytes());
        assert_eq!(out, b"{2}\r\n\xc3\xa9");
    }

    #[test]
    fn sets_are_compact() {
        assert_eq!(sequence_set(&[5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        assert_eq!(sequence_set(&[]), "");
    }
}
