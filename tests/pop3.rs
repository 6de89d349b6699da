//! POP3 against the real binary with independent clients: Python's poplib
//! (USER/PASS over STLS, pop3s, AUTH PLAIN, TOP, UIDL, DELE/RSET/QUIT, a
//! dropped connection, [IN-USE]) and curl; the seeds' scenario end to end
//! (smtplib sends, poplib downloads, bytes identical); a 10 MB message and a
//! mailbox of 1,000 messages.

mod harness;
use harness::{Tern, config, python};

const HELPERS: &str = r#"
import poplib, smtplib, ssl, sys, socket
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def send(port, to, msg, sender="lisa@outside.test"):
    s = smtplib.SMTP("127.0.0.1", port); s.sendmail(sender, [to], msg); s.quit()
def login(port, user="bob@example.test", pw="pw"):
    p = poplib.POP3("127.0.0.1", port); p.stls(CTX); p.user(user); p.pass_(pw); return p
def login_after_drop(port):
    # The server releases the mailbox once it sees the dropped connection.
    import time
    deadline = time.time() + 30
    while True:
        try:
            return login(port)
        except poplib.error_proto as e:
            if b"[IN-USE]" not in e.args[0] or time.time() > deadline:
                raise
            time.sleep(0.05)
"#;

fn server() -> Tern {
    let t = Tern::start(&config("mx.example.test", "example.test", ""));
    t.add_user("bob@example.test", "pw");
    t
}

fn run(t: &Tern, body: &str) -> String {
    let script = format!(
        "{HELPERS}\nSMTP={}\nPOP={}\nPOPS={}\n{body}",
        t.port("smtp"),
        t.port("pop3"),
        t.port("pop3s")
    );
    python(&script, &[])
}

#[test]
fn seeds_scenario_lisa_sends_bob_downloads_identical_bytes() {
    let t = server();
    let out = run(
        &t,
        r#"
msg = (b"From: Lisa <lisa@outside.test>\r\nTo: Bob <bob@example.test>\r\nSubject: Lunch?\r\n"
       b"Message-ID: <m1@outside.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n"
       b"Shall we meet at noon?\r\n.dot line\r\n\r\n-- \r\nLisa\r\n")
send(SMTP, "bob@example.test", msg)
p = login(POP)
count, size = p.stat()
assert count == 1, count
resp, lines, octets = p.retr(1)
got = b"\r\n".join(lines) + b"\r\n"
assert octets == size, (octets, size)
assert got.startswith(b"Received: from "), got[:80]
assert b"by mx.example.test (Tern) with ESMTP" in got
body_start = got.index(b"From: Lisa")
assert got[body_start:] == msg, (got[body_start:], msg)
p.quit()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn user_pass_refused_before_tls_then_works_after_stls_and_on_pop3s() {
    let t = server();
    let out = run(
        &t,
        r#"
send(SMTP, "bob@example.test", b"Subject: one\r\n\r\nbody\r\n")
p = poplib.POP3("127.0.0.1", POP)
caps = p.capa()
assert "STLS" in caps and "USER" not in caps, caps
try:
    p.user("bob@example.test"); raise SystemExit("USER accepted before TLS")
except poplib.error_proto as e:
    assert b"[AUTH]" in e.args[0], e
p.stls(CTX)
caps = p.capa()
assert "USER" in caps and "STLS" not in caps and "UIDL" in caps and "TOP" in caps and "RESP-CODES" in caps, caps
assert caps.get("SASL") == ["PLAIN"], caps
p.user("bob@example.test"); p.pass_("pw")
assert p.stat()[0] == 1
p.quit()
s = poplib.POP3_SSL("127.0.0.1", POPS, context=CTX)
s.user("bob@example.test"); s.pass_("pw")
assert s.stat()[0] == 1
s.quit()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn auth_plain_with_initial_response_and_wrong_password() {
    let t = server();
    let out = run(
        &t,
        r#"
import base64
p = poplib.POP3("127.0.0.1", POP); p.stls(CTX)
tok = base64.b64encode(b"\0bob@example.test\0pw").decode()
assert p._shortcmd("AUTH PLAIN " + tok).startswith(b"+OK")
assert p.stat() == (0, 0)
p.quit()
q = poplib.POP3("127.0.0.1", POP); q.stls(CTX); q.user("bob@example.test")
try:
    q.pass_("nope"); raise SystemExit("wrong password accepted")
except poplib.error_proto as e:
    first = e.args[0]
    assert b"[AUTH]" in first, e
q.user("nobody@example.test")
try:
    q.pass_("pw"); raise SystemExit("unknown user accepted")
except poplib.error_proto as e2:
    assert e2.args[0] == first, (first, e2)  # nothing tells whether the user exists
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn top_uidl_dele_rset_quit_and_a_dropped_connection() {
    let t = server();
    let out = run(
        &t,
        r#"
for i in range(3):
    send(SMTP, "bob@example.test", ("Subject: m%d\r\n\r\nline1\r\nline2\r\nline3\r\n" % i).encode())
p = login(POP)
resp, lines, _ = p.top(1, 1)
assert lines[-1] == b"line1" and b"line2" not in lines, lines
uidls = [l.split()[1] for l in p.uidl()[1]]
assert len(set(uidls)) == 3
assert p.uidl(2).split()[2] == uidls[1]
p.dele(1)
assert p.stat()[0] == 2
try:
    p.retr(1); raise SystemExit("deleted message retrieved")
except poplib.error_proto:
    pass
p.rset()
assert p.stat()[0] == 3
p.dele(2)
p.sock.shutdown(socket.SHUT_RDWR); p.sock.close()   # dropped: nothing is deleted
p = login_after_drop(POP)
assert [l.split()[1] for l in p.uidl()[1]] == uidls   # ids stable across sessions
p.dele(2)
p.quit()
p = login(POP)
left = [l.split()[1] for l in p.uidl()[1]]
assert left == [uidls[0], uidls[2]], left
p.quit()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn second_session_on_a_mailbox_is_in_use() {
    let t = server();
    let out = run(
        &t,
        r#"
a = login(POP)
b = poplib.POP3("127.0.0.1", POP); b.stls(CTX); b.user("bob@example.test")
try:
    b.pass_("pw"); raise SystemExit("second session allowed")
except poplib.error_proto as e:
    assert b"[IN-USE]" in e.args[0], e
a.quit()
c = login(POP); c.quit()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn uidl_survives_a_restart() {
    let mut t = server();
    run(
        &t,
        r#"send(SMTP, "bob@example.test", b"Subject: x\r\n\r\ny\r\n")"#,
    );
    let before = run(
        &t,
        "p = login(POP); print(p.uidl()[1][0].split()[1].decode()); p.quit()",
    );
    t.stop();
    t.spawn();
    let after = run(
        &t,
        "p = login(POP); print(p.uidl()[1][0].split()[1].decode()); p.quit()",
    );
    assert_eq!(before, after);
}

#[test]
fn curl_lists_and_retrieves() {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        "[tls]\nallow_plaintext_auth = true\n",
    ));
    t.add_user("bob@example.test", "pw");
    run(
        &t,
        r#"send(SMTP, "bob@example.test", b"Subject: via curl\r\n\r\nhello curl\r\n")"#,
    );
    let base = format!("pop3://127.0.0.1:{}/", t.port("pop3"));
    let list = std::process::Command::new("curl")
        .args(["-s", "-u", "bob@example.test:pw", &base])
        .output()
        .unwrap();
    assert!(list.status.success());
    assert!(
        String::from_utf8_lossy(&list.stdout).starts_with("1 "),
        "{:?}",
        list
    );
    let retr = std::process::Command::new("curl")
        .args([
            "-sk",
            "--ssl-reqd",
            "-u",
            "bob@example.test:pw",
            &format!("{base}1"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&retr.stdout);
    assert!(
        text.contains("Subject: via curl") && text.contains("hello curl"),
        "{text}"
    );
}

#[test]
fn ten_megabyte_message_and_a_thousand_messages() {
    let t = server();
    let out = run(
        &t,
        r#"
import hashlib, time
big = b"Subject: big\r\n\r\n" + b"".join(b"%07d abcdefghijklmnopqrstuvwxyz0123456789 .dots. and more text\r\n" % i for i in range(150000))
assert len(big) > 10_000_000
send(SMTP, "bob@example.test", big)
s = smtplib.SMTP("127.0.0.1", SMTP)
for i in range(1000):
    s.sendmail("lisa@outside.test", ["bob@example.test"], b"Subject: n%d\r\n\r\nbody %d\r\n" % (i, i))
s.quit()
p = login(POP)
t0 = time.time()
count, _ = p.stat()
assert count == 1001, count
listing = p.list()[1]
assert len(listing) == 1001
resp, lines, octets = p.retr(1)
got = b"\r\n".join(lines) + b"\r\n"
i = got.index(b"Subject: big")
assert hashlib.sha256(got[i:]).digest() == hashlib.sha256(big).digest()
for n in range(2, 1002):
    p.retr(n)
p.quit()
print("ok %.2f" % (time.time() - t0), file=sys.stderr)
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}
