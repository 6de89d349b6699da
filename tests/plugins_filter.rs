//! Filter and router plugins against the real binary: a filter adds a
//! header that is in the message POP3 returns (and can discard,
//! quarantine or reject; its bad reply codes are clamped), and a router
//! sends one domain to a smarthost, a second Tern, where the message
//! arrives. Web mail's Send goes through the same plugins.

mod harness;
use harness::{Tern, config, python};

const PY: &str = r#"
import poplib, smtplib, ssl, sys, time
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def send(port, to, msg, sender="lisa@outside.test"):
    s = smtplib.SMTP("127.0.0.1", port)
    try:
        s.sendmail(sender, [to], msg)
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        s.quit()
def fetch_all(port, user, want, bound=60):
    deadline = time.time() + bound
    while True:
        p = poplib.POP3_SSL("127.0.0.1", port, context=CTX); p.user(user); p.pass_("pw")
        n = p.stat()[0]
        if n >= want or time.time() > deadline:
            msgs = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, n + 1)]
            p.quit()
            return msgs
        p.quit(); time.sleep(0.1)
"#;

fn plugin(name: &str, path: &str, extra: &str) -> String {
    format!("[[plugin]]\nname = \"{name}\"\npath = \"{path}\"\ntimeout = \"2s\"\n{extra}\n")
}

fn run(t: &Tern, body: &str) -> String {
    python(
        &format!(
            "{PY}\nSMTP={}\nPOPS={}\n{body}",
            t.port("smtp"),
            t.port("pop3s")
        ),
        &[],
    )
}

#[test]
fn filter_header_is_in_the_message_pop3_returns() {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &plugin(
            "tagger",
            test_plugins::ADD_HEADER,
            "config = { tag = \"tagger-1\" }",
        ),
    ));
    t.add_user("bob@example.test", "pw");
    let out = run(
        &t,
        r#"
body = b"".join(b"line %d of a longer body\r\n" % i for i in range(5000))
msg = b"From: Lisa <lisa@outside.test>\r\nTo: bob@example.test\r\nSubject: hello there\r\n\r\n" + body
code, err = send(SMTP, "bob@example.test", msg)
assert code == 250, (code, err)
[got] = fetch_all(POPS, "bob@example.test", 1)
head, _, rest = got.partition(b"\r\n\r\n")
lines = head.split(b"\r\n")
assert lines[0].startswith(b"Received: from "), lines[0]
tag = [l for l in lines if l.startswith(b"X-Tern-Filter: ")]
assert len(tag) == 1, head
# Received (2 or 3 lines) + From, To, Subject: the filter saw them all, and the whole size.
fields = int(tag[0].split(b"fields=")[1].split(b";")[0])
assert fields == 4, tag
size = int(tag[0].split(b"size=")[1].split(b";")[0])
assert size == len(got) - len(tag[0]) - 2, (size, len(got))
assert b"subject=hello there" in tag[0] and b"tagger-1" in tag[0], tag
assert got.endswith(msg), "body changed"
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

/// A filter's `remove` edit takes the field (with its continuation lines)
/// out of the stored message; the rest of the header, the body and the
/// sizes POP3 and IMAP report stay consistent.
#[test]
fn filter_removes_header_fields() {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[[listen]]\nprotocol = \"imap\"\naddress = \"{{ip}}:0\"\n[tls]\nallow_plaintext_auth = true\n{}",
            plugin("tagger", test_plugins::ADD_HEADER, "")
        ),
    ));
    t.add_user("bob@example.test", "pw");
    let out = python(
        &format!(
            "{PY}\nimport imaplib\nSMTP={}\nPOPS={}\nIMAP={}\n{}",
            t.port("smtp"),
            t.port("pop3s"),
            t.port("imap"),
            r#"
body = b"".join(b"body line %d\r\n" % i for i in range(20000))
msg = (b"From: lisa@outside.test\r\nX-Strip-Me: secret\r\n\tcontinued secret\r\nSubject: strip\r\n"
       b"x-strip-me: again\r\nTo: bob@example.test\r\n\r\n" + body)
assert send(SMTP, "bob@example.test", msg)[0] == 250
p = poplib.POP3_SSL("127.0.0.1", POPS, context=CTX); p.user("bob@example.test"); p.pass_("pw")
listed = int(p.list()[1][0].split()[1])
got = b"\r\n".join(p.retr(1)[1]) + b"\r\n"
p.quit()
assert listed == len(got), (listed, len(got))
head, _, rest = got.partition(b"\r\n\r\n")
assert b"secret" not in head and b"again" not in head, head
assert b"From: lisa@outside.test\r\nSubject: strip\r\nTo: bob@example.test" in head, head
assert b"X-Tern-Filter: " in head
assert rest == body, "body changed"
im = imaplib.IMAP4("127.0.0.1", IMAP); im.login("bob@example.test", "pw"); im.select("INBOX")
typ, data = im.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
assert int(data[0][0].split(b"RFC822.SIZE ")[1].split()[0]) == len(got), data[0][0]
assert data[0][1] == got
im.logout()
print("ok")
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok", "{}", t.log());
}

#[test]
fn filter_can_discard_quarantine_and_reject_but_not_forge_a_success() {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &plugin("tagger", test_plugins::ADD_HEADER, ""),
    ));
    t.add_user("bob@example.test", "pw");
    let out = run(
        &t,
        r#"
m = lambda subject: b"From: lisa@outside.test\r\nSubject: " + subject + b"\r\n\r\nbody\r\n"
assert send(SMTP, "bob@example.test", m(b"discard"))[0] == 250
code, err = send(SMTP, "bob@example.test", m(b"reject"))
assert code == 554 and err.startswith("5.7.1 rejected by add_header"), (code, err)
code, err = send(SMTP, "bob@example.test", m(b"bad reply"))
assert code == 550 and err.startswith("5.7.1 ") and "\n" not in err, (code, err)
assert send(SMTP, "bob@example.test", m(b"quarantine"))[0] == 250
assert send(SMTP, "bob@example.test", m(b"keep me"))[0] == 250
[kept] = fetch_all(POPS, "bob@example.test", 1, bound=0)
assert b"Subject: keep me" in kept, kept
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    // The quarantined copy went to Junk (POP3 serves INBOX only, where it is not).
    let log = t.log();
    assert!(log.contains("quarantined by a filter"), "{log}");
    assert!(log.contains("discarded by a filter"), "{log}");
    assert!(log.contains("unusable reply code"), "{log}");
}

#[test]
fn router_sends_one_domain_to_a_smarthost() {
    // B is the smarthost: a second Tern that is the mailbox server for far.test.
    let b = Tern::start_on("127.0.0.3", &config("mx.far.test", "far.test", ""));
    b.add_user("bob@far.test", "pw");
    let router = plugin(
        "router",
        test_plugins::SMARTHOST_ROUTER,
        &format!(
            "config = {{ domain = \"far.test\", smarthost = \"127.0.0.3:{}\" }}",
            b.port("smtp")
        ),
    );
    let extra = format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[queue]\nretry_intervals = [\"1s\"]\n{router}"
    );
    let a = Tern::start_on(
        "127.0.0.2",
        &config("mx.example.test", "example.test", &extra),
    );
    let script = format!(
        "{PY}\nA={}\nB_POPS={}\n{}",
        a.port("smtp"),
        b.port("pop3s"),
        r#"
s = smtplib.SMTP("127.0.0.2", A)
s.sendmail("lisa@example.test", ["bob@far.test"], b"From: lisa@example.test\r\nSubject: routed\r\n\r\nvia the router\r\n")
s.quit()
deadline = time.time() + 60
while True:
    p = poplib.POP3_SSL("127.0.0.3", B_POPS, context=CTX); p.user("bob@far.test"); p.pass_("pw")
    n = p.stat()[0]
    if n or time.time() > deadline:
        break
    p.quit(); time.sleep(0.1)
assert n == 1, "nothing arrived at the smarthost"
got = b"\r\n".join(p.retr(1)[1])
p.quit()
assert b"Subject: routed" in got and b"by mx.example.test (Tern)" in got, got
print("ok")
"#
    );
    let out = python(&script, &[]);
    assert_eq!(out.trim(), "ok", "{}", a.log());
}

#[test]
fn web_mail_sends_through_the_same_plugins() {
    let plugins = format!(
        "[[listen]]\nprotocol = \"http\"\naddress = \"{{ip}}:0\"\n[tls]\nallow_plaintext_auth = true\n{}{}",
        plugin("no-nobody", test_plugins::NO_NOBODY, ""),
        plugin(
            "tagger",
            test_plugins::ADD_HEADER,
            "config = { tag = \"web-tag\" }"
        )
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugins));
    t.add_user("bob@example.test", "bob-pw");
    t.add_user("carol@example.test", "pw");
    t.add_user("nobody@example.test", "pw");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let script = format!(
        "import sys\nsys.path.insert(0, {:?})\nfrom webmail import *\n{PY}\nHTTP={}\nPOPS={}\n{}",
        fixtures.display().to_string(),
        t.port("http"),
        t.port("pop3s"),
        r#"
bob = Client(HTTP); bob.login("bob", "bob-pw")
r = bob.post_multipart("/send", {"to": "nobody@example.test", "subject": "x", "body": "y", "action": "send"})
assert r.status == 400 and "nobody lives here no more" in r.text, (r.status, r.text[:1500])
r = bob.post_multipart("/send", {"to": "carol@example.test", "subject": "from the web", "body": "hi", "action": "send"})
assert r.status == 303, (r.status, r.text[:800])
[got] = fetch_all(POPS, "carol@example.test", 1)
assert b"X-Tern-Filter: web-tag" in got and b"subject=from the web" in got, got[:800]
print("ok")
"#
    );
    let out = python(&script, &[]);
    assert_eq!(out.trim(), "ok", "{}", t.log());
}
