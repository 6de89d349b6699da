//! Shared by the IMAP suites: a server with imap, imaps and lmtp listeners
//! beside the harness defaults, and Python helpers (imaplib, IMAPClient).
#![allow(dead_code)]

use crate::harness::{Tern, config, python};

/// Python helpers every script gets: TLS context, login helpers, ports.
pub const HELPERS: &str = r#"
import imaplib, smtplib, ssl, sys, time, re
from imapclient import IMAPClient
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def plain(user="bob@example.test", pw="pw"):
    m = imaplib.IMAP4("127.0.0.1", IMAP); m.starttls(CTX); m.login(user, pw); return m
def client(user="bob@example.test", pw="pw"):
    c = IMAPClient("127.0.0.1", port=IMAPS, ssl=True, ssl_context=CTX); c.login(user, pw); return c
def send(to, msg, sender="lisa@outside.test"):
    s = smtplib.SMTP("127.0.0.1", SMTP); s.sendmail(sender, [to], msg); s.quit()
class Raw:
    # A line-level client over imaps: cmd() returns (untagged lines, tagged
    # line), literals in responses inlined, so tests can check exact
    # responses and their order.
    def __init__(self, user="bob@example.test", pw="pw"):
        import socket
        self.sock = CTX.wrap_socket(socket.create_connection(("127.0.0.1", IMAPS)))
        self.f = self.sock.makefile("rb")
        self.n = 0
        self.f.readline()
        if user:
            _, tagged = self.cmd(f'LOGIN "{user}" "{pw}"')
            assert tagged.startswith("OK"), tagged
    def line(self):
        l = self.f.readline()
        m = re.search(rb"\{(\d+)\}\r\n$", l)
        while m:
            l = l[:m.start()] + self.f.read(int(m.group(1)))
            rest = self.f.readline()
            l += rest
            m = re.search(rb"\{(\d+)\}\r\n$", rest)
        return l.decode("utf-8", "replace").rstrip("\r\n")
    def cmd(self, text):
        self.n += 1
        tag = f"t{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        untagged = []
        while True:
            l = self.line()
            if l.startswith(tag + " "):
                return untagged, l[len(tag) + 1:]
            untagged.append(l)
    def ok(self, text):
        untagged, tagged = self.cmd(text)
        assert tagged.startswith("OK"), (text, tagged, untagged)
        return untagged
def code(m, name):
    # The untagged or tagged response code `name` from imaplib's last responses.
    typ, data = m.response(name)
    return data
"#;

pub fn imap_config(extra: &str) -> String {
    let listeners = r#"
[[listen]]
protocol = "imap"
address = "{ip}:0"
[[listen]]
protocol = "imaps"
address = "{ip}:0"
[[listen]]
protocol = "lmtp"
address = "{ip}:0"
"#;
    config(
        "mx.example.test",
        "example.test",
        &format!("{listeners}\n{extra}"),
    )
}

pub fn server(extra: &str) -> Tern {
    let t = Tern::start(&imap_config(extra));
    t.add_user("bob@example.test", "pw");
    t
}

pub fn run(t: &Tern, body: &str) -> String {
    let script = format!(
        "IMAP={}\nIMAPS={}\nSMTP={}\nPOP={}\nLMTP={}\n{HELPERS}\n{body}",
        t.port("imap"),
        t.port("imaps"),
        t.port("smtp"),
        t.port("pop3"),
        t.port("lmtp")
    );
    python(&script, &[])
}
