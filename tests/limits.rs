//! The abuse limits of `[limits]`, each through the real binary: open
//! connections per client address, commands per session (SMTP and POP3),
//! login failures per address (with the growing delay, and the right
//! password refused once the limit is reached, but not from elsewhere),
//! logged-in sessions per user, MIME parts and header size of a message.

mod harness;

use harness::*;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const AUTH_OK: &str = "[tls]\nallow_plaintext_auth = true\n";

/// The first line the server says on a fresh connection.
fn first_line(port: u16) -> String {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(READY_BOUND)).expect("timeout");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("read");
    line
}

#[test]
fn connections_per_client_address_are_limited() {
    let server = Tern::start(&smtp_config("[limits]\nmax_connections_per_client = 3\n"));
    let port = server.port("smtp");
    let held: Vec<Smtp> = (0..3).map(|_| Smtp::connect(port).0).collect();
    let refused = first_line(port);
    assert!(
        refused.starts_with("421 4.7.0"),
        "fourth connection: {refused:?}"
    );
    // The limit counts every listener together.
    let refused = first_line(server.port("submission"));
    assert!(refused.starts_with("421 4.7.0"), "{refused:?}");
    drop(held);
    // Places come back when connections close.
    wait_until(READY_BOUND, || first_line(port).starts_with("220 "));
    assert!(
        server
            .log()
            .contains("too many connections from this address")
    );
}

#[test]
fn trusted_networks_are_exempt_from_the_per_client_limit() {
    let server = Tern::start(&smtp_config(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[limits]\nmax_connections_per_client = 3\n",
    ));
    let port = server.port("smtp");
    let held: Vec<Smtp> = (0..6).map(|_| Smtp::connect(port).0).collect();
    let line = first_line(port);
    assert!(line.starts_with("220 "), "seventh connection: {line:?}");
    drop(held);
}

#[test]
fn commands_per_session_are_limited() {
    let server = Tern::start(&smtp_config(&format!(
        "[limits]\nmax_commands_per_session = 5\n{AUTH_OK}\n[[listen]]\nprotocol = \"pop3\"\naddress = \"127.0.0.1:0\"\n"
    )));
    let mut s = Smtp::ready(server.port("smtp")); // EHLO is the first command
    for _ in 0..4 {
        s.cmd("NOOP").expect(250, "2.0.0");
    }
    let r = s.cmd("NOOP");
    r.expect(421, "4.7.0");
    assert!(s.closed(), "session stays open after the limit");

    server.add_user("pat@example.test", "pat-pw");
    let out = python_with_prelude(
        r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
p.user("pat@example.test"); p.pass_("pat-pw")
for _ in range(3):
    p.noop()
try:
    p.noop()
    print("sixth command answered")
except poplib.error_proto as e:
    print("refused:", e)
"#,
        &[&server.port_arg("pop3")],
    );
    let out = text(&out.stdout);
    assert!(
        out.contains("refused: b'-ERR [SYS/TEMP] too many commands"),
        "{out}"
    );
}

/// AUTH PLAIN over smtplib from `source` (a loopback address); returns the
/// reply code and how long the attempt took.
const AUTH_SCRIPT: &str = r#"
import smtplib, sys, time
port, source, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=(source, 0))
s.ehlo("client.test")
import base64
t = time.monotonic()
code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode())
print(code, round((time.monotonic() - t) * 1000))
s.quit()
"#;

fn try_login(port: &str, source: &str, user: &str, pw: &str) -> (u16, u64) {
    let out = python_with_prelude(AUTH_SCRIPT, &[port, source, user, pw]);
    let out = text(&out.stdout);
    let mut words = out.split_whitespace();
    let code = words.next().and_then(|w| w.parse().ok()).expect("code");
    let ms = words.next().and_then(|w| w.parse().ok()).expect("ms");
    (code, ms)
}

#[test]
fn auth_failures_per_address_grow_the_delay_then_block_the_address() {
    let server = Tern::start(&smtp_config(&format!(
        "[limits]\nmax_auth_failures = 3\nauth_failure_delay = \"100ms\"\n{AUTH_OK}"
    )));
    server.add_user("kim@example.test", "kim-pw");
    let port = server.port_arg("submission");
    let mut delays = Vec::new();
    for _ in 0..3 {
        let (code, ms) = try_login(&port, "127.0.0.1", "kim@example.test", "wrong");
        assert_eq!(code, 535);
        delays.push(ms);
    }
    // 100, 200, 400 ms at least (lower bounds only: a loaded machine is slower).
    assert!(delays[1] >= 200 && delays[2] >= 400, "delays {delays:?}");
    let (code, ms) = try_login(&port, "127.0.0.1", "kim@example.test", "kim-pw");
    assert_eq!(code, 535, "the right password from a blocked address");
    assert!(ms >= 800, "the blocked attempt still waits: {ms} ms");
    let (code, _) = try_login(&port, "127.0.0.2", "kim@example.test", "kim-pw");
    assert_eq!(code, 235, "another address is not blocked");
    assert!(server.log().contains("too many failures from this address"));
}

#[test]
fn logged_in_sessions_per_user_are_limited() {
    let mut server = Tern::start(&smtp_config(&format!(
        "[limits]\nmax_sessions_per_user = 2\n{AUTH_OK}\n[[listen]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:0\"\n"
    )));
    server.add_user("lee@example.test", "lee-pw");
    let out = python_with_prelude(
        r#"
import imaplib, smtplib, sys
smtp_port, imap_port = int(sys.argv[1]), int(sys.argv[2])
a = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30); a.ehlo("x"); a.login("lee@example.test", "lee-pw")
b = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30); b.login("lee@example.test", "lee-pw")
c = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30); c.ehlo("x")
try:
    c.login("lee@example.test", "lee-pw"); print("third smtp: ok")
except smtplib.SMTPAuthenticationError as e:
    print("third smtp:", e.smtp_code, e.smtp_error.decode())
d = imaplib.IMAP4("127.0.0.1", imap_port, timeout=30)
try:
    d.login("lee@example.test", "lee-pw"); print("third imap: ok")
except imaplib.IMAP4.error as e:
    print("third imap:", e)
b.logout()
import time
for _ in range(300):
    try:
        d.login("lee@example.test", "lee-pw"); print("after logout: ok"); break
    except imaplib.IMAP4.error:
        time.sleep(0.1)
"#,
        &[&server.port_arg("submission"), &server.port_arg("imap")],
    );
    let out = text(&out.stdout);
    assert!(
        out.contains("third smtp: 454") && out.contains("Too many sessions"),
        "{out}"
    );
    assert!(out.contains("third imap: b'[LIMIT]"), "{out}");
    assert!(out.contains("after logout: ok"), "{out}");
    let _ = server.mailbox("lee@example.test");
}

fn multipart(parts: usize) -> String {
    let mut m = String::from(
        "From: a@outside.test\r\nTo: bob@example.test\r\nSubject: parts\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
    );
    for i in 0..parts {
        m.push_str(&format!(
            "--b1\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n"
        ));
    }
    m.push_str("--b1--\r\n");
    m
}

#[test]
fn mime_parts_and_header_size_are_limited() {
    let mut server = Tern::start(&smtp_config(
        "[limits]\nmax_mime_parts = 5\nmax_header_size = \"2KiB\"\n",
    ));
    server.add_user("bob@example.test", "bob-pw");
    let port = server.port("smtp");
    let send = |body: &str| {
        let mut s = Smtp::ready(port);
        s.cmd("MAIL FROM:<a@outside.test>").expect(250, "2.1.0");
        s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
        s.cmd("DATA").expect(354, "2.0.0");
        s.send(body.as_bytes());
        s.cmd(".")
    };
    send(&multipart(5)).expect(250, "2.0.0");
    let r = send(&multipart(6));
    r.expect(554, "5.6.0");
    let big = format!(
        "From: a@outside.test\r\nX-Filler: {}\r\n\r\nbody\r\n",
        "x".repeat(3000)
    );
    send(&big).expect(552, "5.3.4");
    let fine = format!(
        "From: a@outside.test\r\nX-Filler: {}\r\n\r\n{}\r\n",
        "x".repeat(1000),
        "body ".repeat(2000)
    );
    send(&fine).expect(250, "2.0.0");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(
        mail.len(),
        2,
        "only the two messages within limits are kept"
    );
}

fn wait_until(bound: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < bound, "condition not met in {bound:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
