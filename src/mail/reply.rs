//! Replies in the SMTP form, the answer every side gives (the SMTP and LMTP
//! sessions, the hooks and checks, plugins, web mail's refusals): a code, an
//! enhanced status code (RFC 2034/3463) and text, rendered as one line or as
//! a multi-line reply. Every reply Tern sends
//! carries an enhanced code, except the greeting (220) and the EHLO reply
//! (250), where RFC 2034 leaves it out.

use std::fmt;

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code such as `5.1.1`; `None` only where RFC 2034 omits it.
    pub enhanced: Option<String>,
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced.to_string()),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code (greeting, EHLO).
    pub fn bare(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The text of the first line, without code.
    pub fn text(&self) -> &str {
        self.lines.first().map(String::as_str).unwrap_or("")
    }

    /// The reply as it goes on the wire, every line ending in CRLF.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let n = self.lines.len().max(1);
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            match &self.enhanced {
                Some(e) => out.extend_from_slice(
                    format!("{}{}{} {}\r\n", self.code, sep, e, text).as_bytes(),
                ),
                None => {
                    out.extend_from_slice(format!("{}{}{}\r\n", self.code, sep, text).as_bytes())
                }
            }
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, self.lines.join(" / ")),
            None => write!(f, "{} {}", self.code, self.lines.join(" / ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_multiline_with_enhanced_code() {
        let mut r = Reply::new(250, "2.0.0", "first");
        r.lines.push("second".into());
        assert_eq!(r.to_wire(), b"250-2.0.0 first\r\n250 2.0.0 second\r\n");
    }

    #[test]
    fn renders_bare_reply() {
        let r = Reply::bare(220, vec!["host ESMTP".into()]);
        assert_eq!(r.to_wire(), b"220 host ESMTP\r\n");
    }
}
