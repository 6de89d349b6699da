//! Inbound SMTP, the refusals and the attacks: SIZE at MAIL and oversized
//! data (552 5.3.4, nothing stored), max_recipients (452 4.5.3), unknown
//! local user (550 5.1.1), relaying denied (550 5.7.1), every bare-LF / bare-CR
//! smuggling form leaving exactly one message, input pipelined after
//! STARTTLS thrown away, the idle timeout (421 4.4.2) and too many errors (421).

mod harness;

use harness::*;
use std::time::{Duration, Instant};

#[test]
fn size_refused_at_mail_and_in_data_nothing_stored() {
    let mut server = Tern::start(&smtp_config("[limits]\nmax_message_size = \"10KiB\"\n"));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::connect(server.port("smtp")).0;
    let ehlo = s.cmd("EHLO client.outside.test");
    assert!(
        ehlo.lines.iter().any(|l| l == "SIZE 10240"),
        "EHLO: {ehlo:?}"
    );
    // Declared too big: refused at MAIL.
    s.cmd("MAIL FROM:<lisa@outside.test> SIZE=20000")
        .expect(552, "5.3.4");
    // Declared small but actually too big: refused at the end of data.
    s.cmd("MAIL FROM:<lisa@outside.test> SIZE=1000")
        .expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    s.cmd("DATA").expect(354, "2.0.0");
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..300 {
        big.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
        );
    }
    big.extend_from_slice(b".\r\n");
    s.send(&big);
    s.reply().expect(552, "5.3.4");
    // Undeclared and too big, with BDAT.
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    let chunk = vec![b'x'; 12 * 1024];
    s.send(
        &[
            format!("BDAT {} LAST\r\n", chunk.len()).as_bytes(),
            &chunk[..],
        ]
        .concat(),
    );
    s.reply().expect(552, "5.3.4");
    // The session goes on and a small message still fits.
    let ok = s.send_message(
        "lisa@outside.test",
        &["bob@example.test"],
        b"Subject: small\r\n\r\nfits\r\n",
    );
    ok.expect(250, "2.0.0");
    s.cmd("QUIT").expect(221, "2.0.0");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(mail.len(), 1, "only the small message may be stored");
    added_headers(&mail[0], b"Subject: small\r\n\r\nfits\r\n");
}

#[test]
fn too_many_recipients_452() {
    let mut server = Tern::start(&smtp_config(
        r#"[limits]
max_recipients = 3
[aliases]
"r1@example.test" = ["bob@example.test"]
"r2@example.test" = ["bob@example.test"]
"r3@example.test" = ["bob@example.test"]
"r4@example.test" = ["bob@example.test"]
"#,
    ));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    for i in 1..=3 {
        s.cmd(&format!("RCPT TO:<r{i}@example.test>"))
            .expect(250, "2.1.5");
    }
    s.cmd("RCPT TO:<r4@example.test>").expect(452, "4.5.3");
    s.cmd("DATA").expect(354, "2.0.0");
    s.send(b"Subject: many\r\n\r\nx\r\n.\r\n");
    s.reply().expect(250, "2.0.0");
    s.cmd("QUIT");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(mail.len(), 1, "aliases to one user give one copy");
}

#[test]
fn unknown_user_and_relaying_denied() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let v = python_json(
        r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("client.outside.test")
res = [r(s.mail("lisa@outside.test"))]
for rcpt in ("nobody@example.test", "someone@elsewhere.test", "bob@example.test@evil.test", "bob@example.test"):
    res.append(r(s.rcpt(rcpt)))
s.rset()
try:
    s.sendmail("lisa@outside.test", ["someone@elsewhere.test"], b"Subject: relay\r\n\r\nx\r\n")
    res.append("sent")
except smtplib.SMTPRecipientsRefused as e:
    res.append([e.recipients["someone@elsewhere.test"][0], e.recipients["someone@elsewhere.test"][1].decode()])
s.quit()
out(res=res)
"#,
        &[&server.port_arg("smtp")],
    );
    let res = &v["res"];
    assert_eq!(res[0][0], 250);
    assert_eq!(res[1][0], 550, "unknown user: {v}");
    assert!(
        res[1][1].as_str().unwrap().starts_with("5.1.1"),
        "unknown user: {v}"
    );
    assert_eq!(res[2][0], 550, "relaying: {v}");
    assert!(
        res[2][1].as_str().unwrap().starts_with("5.7.1"),
        "relaying: {v}"
    );
    assert!(
        res[3][0].as_i64().unwrap() >= 500,
        "source-routed/garbage address must be refused: {v}"
    );
    assert_eq!(res[4][0], 250);
    assert_eq!(res[5][0], 550, "relaying through sendmail: {v}");
    assert!(res[5][1].as_str().unwrap().starts_with("5.7.1"), "{v}");
    assert!(server.mailbox("bob@example.test").is_empty());
}

/// Sends one DATA whose body hides `MAIL/RCPT/DATA` behind `separator`
/// (a bare-LF/CR "end of data"), and checks that exactly one message results.
fn smuggle(separator: &[u8], label: &str) {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    s.cmd("DATA").expect(354, "2.0.0");
    let mut data = format!("Subject: carrier {label}\r\n\r\nfirst part").into_bytes();
    data.extend_from_slice(separator);
    data.extend_from_slice(
        b"MAIL FROM:<admin@outside.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n\
          Subject: SMUGGLED\r\n\r\nsmuggled body\r\n.\r\nQUIT\r\n",
    );
    s.send(&data);
    let replies = s.replies_until_eof();
    // Exactly one transaction: one end-of-data reply, then QUIT's 221.
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(
        codes.last(),
        Some(&221),
        "{label}: session must end with QUIT's 221: {replies:?}"
    );
    assert!(
        !codes.contains(&354),
        "{label}: a second DATA was started: {replies:?}"
    );
    assert_eq!(
        codes.len(),
        2,
        "{label}: expected [end-of-data reply, 221], got {replies:?}"
    );
    let first = &replies[0];
    assert!(
        first.code == 250 || first.code >= 500,
        "{label}: end-of-data reply: {first:?}"
    );
    let mail = server.mailbox("bob@example.test");
    if first.code == 250 {
        assert_eq!(mail.len(), 1, "{label}: exactly one message");
        let m = &mail[0];
        assert!(
            contains(m, format!("Subject: carrier {label}").as_bytes()),
            "{label}: {}",
            text(m)
        );
        assert!(
            contains(m, b"MAIL FROM:<admin@outside.test>"),
            "{label}: smuggled text must stay content: {}",
            text(m)
        );
        assert!(contains(m, b"smuggled body"), "{label}: {}", text(m));
        let body_start = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            !contains(&m[..body_start], b"SMUGGLED"),
            "{label}: the smuggled header became a header"
        );
    } else {
        assert!(mail.is_empty(), "{label}: refused data must store nothing");
    }
}

#[test]
fn smuggling_lf_dot_lf() {
    smuggle(b"\n.\n", "lf-dot-lf");
}

#[test]
fn smuggling_crlf_dot_lf() {
    smuggle(b"\r\n.\n", "crlf-dot-lf");
}

#[test]
fn smuggling_lf_dot_crlf() {
    smuggle(b"\n.\r\n", "lf-dot-crlf");
}

#[test]
fn smuggling_cr_dot_cr() {
    smuggle(b"\r.\r", "cr-dot-cr");
}

#[test]
fn input_pipelined_after_starttls_is_discarded() {
    let server = Tern::start(&smtp_config(""));
    let v = python_json(
        r#"
raw = socket.create_connection(("127.0.0.1", PORT), timeout=30)
f = raw.makefile("rb")
banner = read_reply(f)
raw.sendall(b"EHLO client.outside.test\r\n")
ehlo0 = read_reply(f)
# STARTTLS with a command injected behind it, in one write.
raw.sendall(b"STARTTLS\r\nMAIL FROM:<lisa@outside.test>\r\n")
# Read the 220 byte by byte so no TLS bytes are taken from the socket.
line = b""
while not line.endswith(b"\n"):
    c = raw.recv(1)
    if not c:
        break
    line += c
tls = CTX.wrap_socket(raw, server_hostname="mx.example.test")
g = tls.makefile("rb")
tls.sendall(b"EHLO client.outside.test\r\n")
first = read_reply(g)
tls.sendall(b"MAIL FROM:<lisa@outside.test>\r\n")
mail = read_reply(g)
tls.sendall(b"QUIT\r\n")
rest = []
while True:
    x = read_reply(g)
    if x is None:
        break
    rest.append(x)
# A second session: after STARTTLS, MAIL needs a new EHLO.
raw = socket.create_connection(("127.0.0.1", PORT), timeout=30)
f = raw.makefile("rb")
read_reply(f)
raw.sendall(b"EHLO client.outside.test\r\n")
read_reply(f)
raw.sendall(b"STARTTLS\r\n")
starttls2 = read_reply(f)
tls = CTX.wrap_socket(raw, server_hostname="mx.example.test")
g = tls.makefile("rb")
tls.sendall(b"MAIL FROM:<lisa@outside.test>\r\n")
noehlo = read_reply(g)
tls.sendall(b"EHLO client.outside.test\r\nMAIL FROM:<lisa@outside.test>\r\n")
ehlo2 = read_reply(g)
mail2 = read_reply(g)
tls.sendall(b"QUIT\r\n")
read_reply(g)
out(starttls=line.decode(), first=first, mail=mail, rest=rest, starttls2=starttls2, noehlo=noehlo, ehlo2=ehlo2, mail2=mail2)
"#,
        &[&server.port_arg("smtp")],
    );
    assert!(v["starttls"].as_str().unwrap().starts_with("220 "), "{v}");
    // The first reply after the handshake answers the new EHLO, not the injected MAIL.
    assert_eq!(v["first"][0], 250, "{v}");
    assert!(
        v["first"][1][0]
            .as_str()
            .unwrap()
            .starts_with("mx.example.test"),
        "first reply after TLS is not the EHLO reply: {v}"
    );
    assert!(
        v["first"][1]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "AUTH PLAIN LOGIN"),
        "{v}"
    );
    // The MAIL the client now sends is the first of this session (no "nested MAIL").
    assert_eq!(v["mail"][0], 250, "{v}");
    assert!(
        v["mail"][1][0].as_str().unwrap().starts_with("2.1.0"),
        "{v}"
    );
    assert_eq!(
        v["rest"].as_array().unwrap().len(),
        1,
        "only QUIT's reply may follow: {v}"
    );
    assert_eq!(v["rest"][0][0], 221, "{v}");
    // Without a new EHLO after STARTTLS, MAIL is out of order.
    assert_eq!(v["starttls2"][0], 220, "{v}");
    assert_eq!(
        v["noehlo"][0], 503,
        "MAIL right after STARTTLS must need EHLO: {v}"
    );
    assert!(
        v["noehlo"][1][0].as_str().unwrap().starts_with("5.5.1"),
        "{v}"
    );
    assert_eq!(v["ehlo2"][0], 250, "{v}");
    assert_eq!(v["mail2"][0], 250, "{v}");
}

#[test]
fn idle_client_cut_off_at_command_timeout() {
    let server = Tern::start(&smtp_config("[limits]\ncommand_timeout = \"1s\"\n"));
    let started = Instant::now();
    let (mut s, _) = Smtp::connect(server.port("smtp"));
    s.set_read_timeout(Duration::from_secs(60));
    let r = s.reply();
    let waited = started.elapsed();
    r.expect(421, "4.4.2");
    assert!(
        waited >= Duration::from_millis(900),
        "cut off too early: {waited:?}"
    );
    assert!(s.closed(), "connection must be closed after the 421");
    // Also mid-transaction: the timer restarts with every command.
    let mut s = Smtp::ready(server.port("smtp"));
    s.set_read_timeout(Duration::from_secs(60));
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.reply().expect(421, "4.4.2");
    assert!(s.closed());
}

#[test]
fn idle_client_cut_off_mid_data() {
    let mut server = Tern::start(&smtp_config("[limits]\ncommand_timeout = \"1s\"\n"));
    server.add_user("bob@example.test", "pw");
    // Stalls inside DATA: 421, and the partial message is not kept.
    let mut s = Smtp::ready(server.port("smtp"));
    s.set_read_timeout(Duration::from_secs(20));
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    s.cmd("DATA").expect(354, "2.0.0");
    s.send(b"Subject: stalled\r\n\r\nhalf a mess");
    s.reply().expect(421, "4.4.2");
    assert!(s.closed());
    assert!(server.mailbox("bob@example.test").is_empty());
}

#[test]
fn idle_client_cut_off_mid_bdat() {
    let mut server = Tern::start(&smtp_config("[limits]\ncommand_timeout = \"1s\"\n"));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.set_read_timeout(Duration::from_secs(20));
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    s.send(b"BDAT 100 LAST\r\nonly ten b");
    let r = s.try_reply();
    assert!(
        r.as_ref().is_some_and(|r| r.code == 421),
        "a stalled BDAT chunk must end with 421 4.4.2, got {r:?}"
    );
    assert!(s.closed());
    assert!(server.mailbox("bob@example.test").is_empty());
}

#[test]
fn idle_client_cut_off_inside_auth_exchange() {
    let server = Tern::start(&smtp_config(
        "[limits]\ncommand_timeout = \"1s\"\n[tls]\nallow_plaintext_auth = true\n",
    ));
    let mut s = Smtp::ready(server.port("submission"));
    s.set_read_timeout(Duration::from_secs(20));
    assert_eq!(s.cmd("AUTH LOGIN").code, 334);
    // The client never answers the challenge.
    let r = s.try_reply();
    assert!(
        r.as_ref().is_some_and(|r| r.code == 421),
        "an idle AUTH exchange must end with 421 4.4.2, got {r:?}"
    );
    assert!(s.closed());
}

#[test]
fn max_connections_421() {
    let server = Tern::start(&smtp_config("[limits]\nmax_connections = 2\n"));
    let a = Smtp::connect(server.port("smtp"));
    let b = Smtp::connect(server.port("submission"));
    let stream = std::net::TcpStream::connect(("127.0.0.1", server.port("smtp"))).unwrap();
    stream.set_read_timeout(Some(READY_BOUND)).unwrap();
    let mut c = std::io::BufReader::new(stream);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut c, &mut line).unwrap();
    assert!(line.starts_with("421 4."), "third connection: {line:?}");
    drop((a, b));
}

#[test]
fn too_many_errors_421() {
    let server = Tern::start(&smtp_config("[limits]\nmax_errors = 3\n"));
    let (mut s, _) = Smtp::connect(server.port("smtp"));
    s.cmd("BOGUS 1").expect(500, "5.5.2");
    s.cmd("BOGUS 2").expect(500, "5.5.2");
    s.send(b"BOGUS 3\r\n");
    s.reply().expect(500, "5.5.2");
    let last = s.reply();
    assert_eq!(last.code, 421, "{last:?}");
    assert!(last.enhanced().is_some(), "{last:?}");
    assert!(s.closed());
}
