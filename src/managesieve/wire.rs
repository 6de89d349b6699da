//! ManageSieve's wire format (RFC 5804 section 4): a command is a line of
//! atoms and strings, where a string is quoted (`"..."`, with `\"` and
//! `\\`) or a literal announced at the end of a line as `{N+}` (the
//! client's form) or `{N}` (accepted too: ManageSieve has no continuation
//! requests, so its octets follow at once, as Dovecot and Cyrus read it),
//! after which the command goes on with the next line. Lines are bounded
//! (`MAX_LINE`); a literal above the limit is read and dropped, never kept.
//! Responses render strings quoted when they can be, else as literals.

use crate::net::{Connection, Line};
use std::io;

/// Longest command line (without its literals).
pub const MAX_LINE: usize = 8 * 1024;

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
}

/// What reading one command produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Command(Vec<Token>),
    /// A line above `MAX_LINE` (skipped).
    TooLong,
    /// A literal above the limit (its octets were read and dropped).
    TooBig(u64),
    /// Malformed syntax.
    Bad(&'static str),
    Eof,
}

/// Splits one line into tokens; returns the length of the literal that
/// ends it, if it ends with one.
pub fn tokenize(line: &[u8], out: &mut Vec<Token>) -> Result<Option<u64>, &'static str> {
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match line.get(i) {
                        None => return Err("unterminated quoted string"),
                        Some(b'"') => break,
                        Some(b'\\') => match line.get(i + 1) {
                            Some(c @ (b'"' | b'\\')) => {
                                s.push(*c);
                                i += 2;
                            }
                            _ => return Err("bad escape in quoted string"),
                        },
                        Some(0) => return Err("NUL in quoted string"),
                        Some(c) => {
                            s.push(*c);
                            i += 1;
                        }
                    }
                }
                i += 1;
                if line.get(i).is_some_and(|c| *c != b' ') {
                    return Err("expected a space after a string");
                }
                out.push(Token::Str(s));
            }
            b'{' => {
                let rest = &line[i + 1..];
                let digits = rest.strip_suffix(b"+}").or_else(|| rest.strip_suffix(b"}"));
                let n = digits
                    .filter(|d| !d.is_empty() && d.len() <= 10 && d.iter().all(u8::is_ascii_digit))
                    .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
                    .ok_or("bad literal (expected {N+} at the end of the line)")?;
                return Ok(Some(n));
            }
            _ => {
                let end = line[i..]
                    .iter()
                    .position(|c| *c == b' ')
                    .map_or(line.len(), |p| i + p);
                let atom = &line[i..end];
                if atom
                    .iter()
                    .any(|c| !c.is_ascii_graphic() || matches!(c, b'"' | b'{' | b'}' | b'(' | b')'))
                {
                    return Err("bad character in an atom");
                }
                out.push(Token::Atom(String::from_utf8_lossy(atom).into_owned()));
                i = end;
            }
        }
    }
    Ok(None)
}

/// Reads one command: its line and any literals with the lines after them.
/// Literals above `max_literal`, or together above twice that, are dropped
/// and reported as `TooBig`.
pub async fn read_command(conn: &mut Connection, max_literal: u64) -> io::Result<Frame> {
    let mut tokens = Vec::new();
    let mut total = 0u64;
    let mut too_big = None;
    loop {
        let line = match conn.read_line(MAX_LINE).await? {
            Line::Eof => return Ok(Frame::Eof),
            Line::TooLong => return Ok(Frame::TooLong),
            Line::Complete(l) => l,
        };
        let literal = match tokenize(&line, &mut tokens) {
            Ok(l) => l,
            Err(why) if too_big.is_none() => return Ok(Frame::Bad(why)),
            Err(_) => None,
        };
        let Some(n) = literal else {
            return Ok(match too_big {
                Some(n) => Frame::TooBig(n),
                None => Frame::Command(tokens),
            });
        };
        total = total.saturating_add(n);
        if too_big.is_some() || n > max_literal || total > max_literal.saturating_mul(2) {
            too_big.get_or_insert(n);
            if !skip(conn, n).await? {
                return Ok(Frame::Eof);
            }
            continue;
        }
        let Some(bytes) = read_exact(conn, n as usize).await? else {
            return Ok(Frame::Eof);
        };
        tokens.push(Token::Str(bytes));
    }
}

/// Exactly `n` octets from the connection; None at end of stream.
async fn read_exact(conn: &mut Connection, n: usize) -> io::Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(n.min(1 << 20));
    while out.len() < n {
        if conn.buffered().is_empty() && conn.fill().await? == 0 {
            return Ok(None);
        }
        let take = conn.buffered().len().min(n - out.len());
        out.extend_from_slice(&conn.buffered()[..take]);
        conn.consume(take);
    }
    Ok(Some(out))
}

/// Reads and drops `n` octets; false at end of stream.
async fn skip(conn: &mut Connection, mut n: u64) -> io::Result<bool> {
    while n > 0 {
        if conn.buffered().is_empty() && conn.fill().await? == 0 {
            return Ok(false);
        }
        let take = (conn.buffered().len() as u64).min(n) as usize;
        conn.consume(take);
        n -= take as u64;
    }
    Ok(true)
}

/// A string as the server sends it: quoted when it holds no CR, LF or NUL
/// (with `"` and `\` escaped), else a literal `{N}` CRLF octets.
pub fn string(s: &[u8]) -> Vec<u8> {
    if s.iter().any(|c| matches!(c, b'\r' | b'\n' | 0)) {
        let mut out = format!("{{{}}}\r\n", s.len()).into_bytes();
        out.extend_from_slice(s);
        return out;
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for c in s {
        if matches!(c, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(*c);
    }
    out.push(b'"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_atoms_strings_and_literals() {
        let mut t = Vec::new();
        assert_eq!(
            tokenize(br#"PUTSCRIPT "my \"s\"" {12+}"#, &mut t),
            Ok(Some(12))
        );
        assert_eq!(
            t,
            vec![
                Token::Atom("PUTSCRIPT".into()),
                Token::Str(br#"my "s""#.to_vec())
            ]
        );
        let mut t = Vec::new();
        assert_eq!(tokenize(b"HAVESPACE \"x\" 100", &mut t), Ok(None));
        assert_eq!(t[2], Token::Atom("100".into()));
        assert_eq!(tokenize(b"X {5}", &mut Vec::new()), Ok(Some(5)));
        assert!(tokenize(b"X \"open", &mut Vec::new()).is_err());
        assert!(tokenize(b"X {5+} more", &mut Vec::new()).is_err());
        assert!(tokenize(b"X {-1+}", &mut Vec::new()).is_err());
        assert!(tokenize(b"X \"a\"b", &mut Vec::new()).is_err());
    }

    #[test]
    fn renders_quoted_strings_and_literals() {
        assert_eq!(string(br#"a "b" \c"#), br#""a \"b\" \\c""#.to_vec());
        assert_eq!(string(b"two\r\nlines"), b"{10}\r\ntwo\r\nlines".to_vec());
    }
}
