//! The Sieve lexer (RFC 5228 section 8.1): turns script text into tokens with
//! their line and column — identifiers, tags, numbers with K/M/G, quoted and
//! multi-line strings (escapes and dot-stuffing undone), brackets and
//! punctuation — skipping whitespace, `#` and `/* */` comments.

use crate::error::{CompileError, Pos};

/// One token of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Ident(String),
    Tag(String),
    Number(u64),
    Str(String),
    LBracket,
    RBracket,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Semicolon,
}

/// Splits `src` into positioned tokens; also returns the end-of-input position.
pub fn tokenize(src: &str) -> Result<(Vec<(Tok, Pos)>, Pos), CompileError> {
    let mut lx = Lexer {
        s: src.as_bytes(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    while let Some(t) = lx.next_token()? {
        out.push(t);
    }
    Ok((out, lx.pos()))
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> CompileError {
        CompileError::new(pos, msg)
    }

    fn next_token(&mut self) -> Result<Option<(Tok, Pos)>, CompileError> {
        self.skip_space()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let tok = match c {
            b'[' => self.single(Tok::LBracket),
            b']' => self.single(Tok::RBracket),
            b'(' => self.single(Tok::LParen),
            b')' => self.single(Tok::RParen),
            b'{' => self.single(Tok::LBrace),
            b'}' => self.single(Tok::RBrace),
            b',' => self.single(Tok::Comma),
            b';' => self.single(Tok::Semicolon),
            b'"' => self.quoted(pos)?,
            b':' => {
                self.bump();
                let id = self.ident();
                if id.is_empty() {
                    return Err(self.err(pos, "expected a tag name after ':'"));
                }
                Tok::Tag(id.to_ascii_lowercase())
            }
            b'0'..=b'9' => self.number(pos)?,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let id = self.ident();
                if id.eq_ignore_ascii_case("text") && self.peek() == Some(b':') {
                    self.bump();
                    self.multiline(pos)?
                } else {
                    Tok::Ident(id.to_ascii_lowercase())
                }
            }
            _ => {
                let ch = std::str::from_utf8(&self.s[self.i..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or('?');
                return Err(self.err(pos, format!("unexpected character '{ch}'")));
            }
        };
        Ok(Some((tok, pos)))
    }

    fn single(&mut self, t: Tok) -> Tok {
        self.bump();
        t
    }

    fn skip_space(&mut self) -> Result<(), CompileError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'#') => {
                    while let Some(c) = self.bump() {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'*') => {
                    let pos = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.err(pos, "unterminated comment")),
                            Some(b'*') if self.peek() == Some(b'/') => {
                                self.bump();
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.bump();
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn number(&mut self, pos: Pos) -> Result<Tok, CompileError> {
        let mut n: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.bump();
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
                .ok_or_else(|| self.err(pos, "number too large"))?;
        }
        let mult: u64 = match self.peek() {
            Some(b'k' | b'K') => 1 << 10,
            Some(b'm' | b'M') => 1 << 20,
            Some(b'g' | b'G') => 1 << 30,
            _ => 1,
        };
        if mult > 1 {
            self.bump();
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            return Err(self.err(pos, "invalid number"));
        }
        n.checked_mul(mult)
            .map(Tok::Number)
            .ok_or_else(|| self.err(pos, "number too large"))
    }

    fn quoted(&mut self, pos: Pos) -> Result<Tok, CompileError> {
        self.bump();
        let mut buf = Vec::new();
        loop {
            match self.bump() {
                None => return Err(self.err(pos, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    None => return Err(self.err(pos, "unterminated string")),
                    Some(c) => buf.push(c),
                },
                Some(c) => buf.push(c),
            }
        }
        String::from_utf8(buf)
            .map(Tok::Str)
            .map_err(|_| self.err(pos, "string is not valid UTF-8"))
    }

    /// `text:` already consumed: optional blanks and a comment, a line
    /// break, then lines up to a lone ".".
    fn multiline(&mut self, pos: Pos) -> Result<Tok, CompileError> {
        while let Some(b' ' | b'\t') = self.peek() {
            self.bump();
        }
        if self.peek() == Some(b'#') {
            while let Some(c) = self.peek() {
                if c == b'\n' {
                    break;
                }
                self.bump();
            }
        }
        if self.peek() == Some(b'\r') {
            self.bump();
        }
        if self.bump() != Some(b'\n') {
            return Err(self.err(pos, "expected a line break after 'text:'"));
        }
        let mut buf = Vec::new();
        loop {
            let start = self.i;
            if start >= self.s.len() {
                return Err(self.err(pos, "unterminated multi-line string"));
            }
            while let Some(c) = self.bump() {
                if c == b'\n' {
                    break;
                }
            }
            let line = &self.s[start..self.i];
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            if body == b"." {
                break;
            }
            if !line.ends_with(b"\n") {
                return Err(self.err(pos, "unterminated multi-line string"));
            }
            let mut body = body;
            if body.starts_with(b"..") {
                body = &body[1..];
            }
            // Lines of a multi-line string end in CRLF whatever the file uses.
            buf.extend_from_slice(body);
            buf.extend_from_slice(b"\r\n");
        }
        String::from_utf8(buf)
            .map(Tok::Str)
            .map_err(|_| self.err(pos, "string is not valid UTF-8"))
    }
}
