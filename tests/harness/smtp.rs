//! A minimal raw-socket SMTP client for byte-exact tests (pipelining, BDAT,
//! smuggling, STARTTLS injection): write exactly these bytes, read replies.

use super::READY_BOUND;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An SMTP reply: code and text lines (without the `ddd-` prefix).
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The enhanced status code of the first line (`2.1.0`), if any.
    pub fn enhanced(&self) -> Option<&str> {
        let first = self.lines.first()?.split(' ').next()?;
        let parts: Vec<&str> = first.split('.').collect();
        (parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then_some(first)
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Asserts code and enhanced code.
    #[track_caller]
    pub fn expect(&self, code: u16, enhanced: &str) -> &Reply {
        assert!(
            self.code == code && self.enhanced() == Some(enhanced),
            "expected {code} {enhanced}, got {self:?}"
        );
        self
    }
}

/// A raw SMTP connection: writes exactly the bytes given, reads replies.
pub struct Smtp {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Smtp {
    /// Connects and reads the 220 banner.
    pub fn connect(port: u16) -> (Smtp, Reply) {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READY_BOUND)).expect("timeout");
        let mut s = Smtp {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        };
        let banner = s.reply();
        assert_eq!(banner.code, 220, "banner: {banner:?}");
        (s, banner)
    }

    /// Connects, reads the banner and says EHLO.
    pub fn ready(port: u16) -> Smtp {
        let (mut s, _) = Smtp::connect(port);
        let r = s.cmd("EHLO client.outside.test");
        assert_eq!(r.code, 250, "EHLO: {r:?}");
        s
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.writer.set_read_timeout(Some(t)).expect("timeout");
    }

    /// Writes these bytes in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads one reply; `None` at end of stream.
    pub fn try_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut raw = Vec::new();
            match self.reader.read_until(b'\n', &mut raw) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("no reply from the server within the read timeout (after {lines:?})")
                }
                Err(e) => panic!("reading a reply: {e} (after {lines:?})"),
            }
            let line = String::from_utf8_lossy(&raw)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            assert!(line.len() >= 3, "malformed reply line {line:?}");
            let code: u16 = line[..3]
                .parse()
                .unwrap_or_else(|_| panic!("malformed reply line {line:?}"));
            lines.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(Reply { code, lines });
            }
        }
    }

    /// Reads one reply; panics at end of stream.
    #[track_caller]
    pub fn reply(&mut self) -> Reply {
        self.try_reply()
            .expect("connection closed while waiting for a reply")
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Every reply until the server closes the connection.
    pub fn replies_until_eof(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        while let Some(r) = self.try_reply() {
            out.push(r);
        }
        out
    }

    /// True once the server has closed the connection (reads to the end).
    pub fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }

    /// MAIL, RCPT…, DATA, the message (dot-stuffing is the caller's job), `.`;
    /// returns the reply to the end of data.
    pub fn send_message(&mut self, from: &str, to: &[&str], data: &[u8]) -> Reply {
        self.cmd(&format!("MAIL FROM:<{from}>"))
            .expect(250, "2.1.0");
        for t in to {
            self.cmd(&format!("RCPT TO:<{t}>")).expect(250, "2.1.5");
        }
        self.cmd("DATA").expect(354, "2.0.0");
        let mut bytes = data.to_vec();
        bytes.extend_from_slice(b".\r\n");
        self.send(&bytes);
        self.reply()
    }
}

// --------------------------------------------------------------- messages
