//! The address checks of `[checks]` against the real binary, with smtplib as
//! the client and a dnslib server for the domains: each check on and off,
//! NXDOMAIN / NODATA / SERVFAIL / timeout / null MX, an alias as the sender
//! of its owner, a user sending as another user, `From:` forgery, the null
//! sender, and a local sender from a trusted network.

mod harness;
use harness::{DnsServer, Tern, config, python};
use serde_json::json;

fn dns() -> DnsServer {
    DnsServer::start(&json!({
        "good.test": {"MX": [[10, "mx.good.test"]]},
        "mx.good.test": {"A": ["127.0.0.5"]},
        "addr.test": {"A": ["127.0.0.6"]},
        "nodata.test": {"TXT": ["just text"]},
        "nullmx.test": {"MX": [[0, "."]]},
        "servfail.test": {"SERVFAIL": true},
        "timeout.test": {"TIMEOUT": true},
    }))
}

/// Runs MAIL FROM (and optionally RCPT TO) and prints the reply codes.
const PROBE: &str = r#"
import smtplib, ssl, sys
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def mail(port, sender, rcpt=None, login=None, data=None):
    s = smtplib.SMTP("127.0.0.1", port); s.ehlo("client.test")
    if login:
        s.starttls(context=CTX); s.ehlo("client.test"); s.login(login, "pw")
    code, msg = s.mail(sender)
    out = [code, msg.decode()]
    if code == 250 and rcpt:
        code, msg = s.rcpt(rcpt); out += [code, msg.decode()]
        if code == 250 and data is not None:
            code, msg = s.data(data); out += [code, msg.decode()]
    s.quit()
    return out
"#;

fn probe(t: &Tern, calls: &str) -> String {
    python(
        &format!(
            "{PROBE}\nSMTP={}\nSUB={}\n{calls}",
            t.port("smtp"),
            t.port("submission")
        ),
        &[],
    )
}

fn server(dns: &DnsServer, checks: &str, extra: &str) -> Tern {
    let text = config(
        "mx.example.test",
        "example.test",
        &format!(
            "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[checks]\n{checks}\n{extra}",
            dns.address()
        ),
    );
    Tern::start(&text)
}

#[test]
fn sender_domain_must_resolve() {
    let d = dns();
    let t = server(&d, "sender_domain_must_resolve = true", "");
    let out = probe(
        &t,
        r#"
for s in ["a@good.test", "a@addr.test", "a@nx.test", "a@nodata.test", "a@nullmx.test", "a@servfail.test", "a@timeout.test", "a@[127.0.0.1]", ""]:
    r = mail(SMTP, s)
    print(s, r[0], r[1].split()[0])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "a@good.test 250 2.1.0",
            "a@addr.test 250 2.1.0",
            "a@nx.test 550 5.1.8",
            "a@nodata.test 550 5.1.8",
            "a@nullmx.test 550 5.7.27",
            "a@servfail.test 451 4.4.3",
            "a@timeout.test 451 4.4.3",
            "a@[127.0.0.1] 250 2.1.0",
            " 250 2.1.0",
        ],
        "{out}"
    );
    let off = server(&d, "sender_domain_must_resolve = false", "");
    let out = probe(&off, r#"print(mail(SMTP, "a@nx.test")[0])"#);
    assert_eq!(out.trim(), "250");
}

#[test]
fn recipient_domain_must_resolve_for_relayed_recipients() {
    let d = dns();
    let trusted = "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n";
    let t = server(&d, "recipient_domain_must_resolve = true", trusted);
    let out = probe(
        &t,
        r#"
for r in ["x@good.test", "x@nx.test", "x@nullmx.test", "x@servfail.test"]:
    res = mail(SMTP, "a@good.test", r)
    print(r, res[2], res[3].split()[0])
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "x@good.test 250 2.1.5",
            "x@nx.test 550 5.1.2",
            "x@nullmx.test 556 5.1.10",
            "x@servfail.test 451 4.4.3"
        ],
        "{out}"
    );
    let off = server(&d, "recipient_domain_must_resolve = false", trusted);
    let out = probe(&off, r#"print(mail(SMTP, "a@good.test", "x@nx.test")[2])"#);
    assert_eq!(out.trim(), "250");
}

#[test]
fn syntax_is_always_checked() {
    let d = dns();
    let t = server(&d, "", "");
    let out = probe(
        &t,
        r#"
for s in ["nodots@shorthost", "missing-at", "a@[300.1.1.1]", "a@-bad.test"]:
    r = mail(SMTP, s)
    print(r[0], r[1].split()[0])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "553 5.1.7", "{out}");
    for l in &lines[1..] {
        assert!(l.starts_with("501 5.1.7"), "{out}");
    }
}

#[test]
fn local_sender_needs_auth_unless_trusted() {
    let d = dns();
    let t = server(&d, "local_sender_needs_auth = true", "");
    t.add_user("bob@example.test", "pw");
    let out = probe(
        &t,
        r#"r = mail(SMTP, "bob@example.test"); print(r[0], r[1].split()[0])"#,
    );
    assert_eq!(out.trim(), "550 5.7.1");
    let trusted = server(
        &d,
        "local_sender_needs_auth = true",
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n",
    );
    let out = probe(&trusted, r#"print(mail(SMTP, "bob@example.test")[0])"#);
    assert_eq!(out.trim(), "250");
    let off = server(&d, "local_sender_needs_auth = false", "");
    let out = probe(&off, r#"print(mail(SMTP, "bob@example.test")[0])"#);
    assert_eq!(out.trim(), "250");
}

#[test]
fn sender_must_match_login_on_submission() {
    let d = dns();
    let t = server(
        &d,
        "sender_must_match_login = true",
        "[tls]\nallow_plaintext_auth = false\n[aliases]\n\"info@example.test\" = [\"bob@example.test\"]\n",
    );
    t.add_user("bob@example.test", "pw");
    t.add_user("carol@example.test", "pw");
    let out = probe(
        &t,
        r#"
B = "bob@example.test"
def line(r): return " ".join(str(x).split()[0] for x in r)
print(line(mail(SUB, "bob@example.test", "carol@example.test", login=B, data=b"From: bob@example.test\r\nSubject: own\r\n\r\nhi\r\n")))
print(line(mail(SUB, "carol@example.test", login=B)))
print(line(mail(SUB, "info@example.test", "carol@example.test", login=B, data=b"From: Info <info@example.test>\r\n\r\nhi\r\n")))
print(line(mail(SUB, "bob@example.test", "carol@example.test", login=B, data=b"From: Carol <carol@example.test>\r\nSubject: forged\r\n\r\nhi\r\n")))
print(line(mail(SUB, "", "carol@example.test", login=B, data=b"From: bob@example.test\r\n\r\nbounce-like\r\n")))
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "250 2.1.0 250 2.1.5 250 2.0.0",
            "553 5.7.1",
            "250 2.1.0 250 2.1.5 250 2.0.0",
            "250 2.1.0 250 2.1.5 550 5.7.1",
            "250 2.1.0 250 2.1.5 250 2.0.0",
        ],
        "{out}"
    );
    let off = server(
        &d,
        "sender_must_match_login = false",
        "[tls]\nallow_plaintext_auth = false\n",
    );
    off.add_user("bob@example.test", "pw");
    let out = probe(
        &off,
        r#"print(mail(SUB, "carol@example.test", login="bob@example.test")[0])"#,
    );
    assert_eq!(out.trim(), "250");
}
