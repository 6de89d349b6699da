//! SPF, DKIM, DMARC and the Authentication-Results header on mail from
//! outside, against the real binary and a dnslib server on loopback: SPF
//! pass / fail / softfail / none / temperror (a name server that never
//! answers, `[dns] timeout = "1s"`), DKIM pass and fail with signatures made
//! by Python's dkimpy, a DMARC p=reject forgery refused with 550 5.7.1 under
//! `dmarc_reject = "honour"` (and accepted under "tag"), SPF fail refused
//! under `spf_fail = "reject"`, and a forged Authentication-Results claiming
//! our host name renamed. The header is read back over POP3. As other
//! software reads them (issue #25): two SPF records are `permerror` (RFC
//! 7208 4.5), two DMARC records mean no DMARC (RFC 7489 6.6.3), a HELO
//! address literal is no SPF identity (`none`), and a body changed after
//! signing is `dkim=fail (body hash did not verify)`.

mod harness;
use harness::{DnsServer, Tern, config, python};
use serde_json::{Value, json};

const HELPERS: &str = r#"
import poplib, smtplib, ssl, sys, email, email.policy, dkim
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def msg(sender, subject, extra=""):
    return (f"From: <{sender}>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@client.test>\r\n{extra}\r\nHello from {subject}.\r\n").encode()
def send(sender, data, helo="client.test"):
    s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo(helo)
    try:
        s.sendmail(sender, ["bob@example.test"], data); r = "250"
    except smtplib.SMTPDataError as e:
        r = f"{e.smtp_code} {e.smtp_error.decode().split()[0]}"
    s.quit(); return r
def sign(data, domain, key_path, selector="sel"):
    sig = dkim.sign(data, selector.encode(), domain.encode(), open(key_path, "rb").read(),
                    include_headers=[b"from", b"to", b"subject", b"message-id"])
    return sig + data
def fetch_all():
    p = poplib.POP3("127.0.0.1", POP); p.stls(CTX); p.user("bob@example.test"); p.pass_("pw")
    out = []
    for i in range(1, len(p.list()[1]) + 1):
        out.append(b"\r\n".join(p.retr(i)[1]) + b"\r\n")
    p.quit(); return out
def results(raw):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [" ".join(v.split()) for v in m.get_all("Authentication-Results", [])]
"#;

fn server(dns: &DnsServer, auth: &str) -> Tern {
    let text = config(
        "mx.example.test",
        "example.test",
        &format!(
            "[tls]\nallow_plaintext_auth = true\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[auth]\n{auth}\n",
            dns.address()
        ),
    );
    let t = Tern::start(&text);
    t.add_user("bob@example.test", "pw");
    t
}

fn run(t: &Tern, body: &str) -> String {
    python(
        &format!(
            "{HELPERS}\nSMTP={}\nPOP={}\n{body}",
            t.port("smtp"),
            t.port("pop3")
        ),
        &[],
    )
}

/// The `method=result` of the Authentication-Results entry whose text
/// contains `needle` (e.g. "smtp.mailfrom=").
fn entry<'a>(header: &'a str, needle: &str) -> &'a str {
    header
        .split(';')
        .map(str::trim)
        .find(|e| e.contains(needle))
        .and_then(|e| e.split_whitespace().next())
        .unwrap_or("")
}

fn spf_zone() -> Value {
    json!({
        "pass.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "fail.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "soft.test": {"TXT": ["v=spf1 ip4:192.0.2.1 ~all"]},
        "none.test": {"A": ["192.0.2.7"]},
        "temp.test": {"TIMEOUT": true},
    })
}

#[test]
fn spf_results_in_authentication_results() {
    let d = DnsServer::start(&spf_zone());
    let t = server(&d, "");
    let out = run(
        &t,
        r#"
for dom in ["pass", "fail", "soft", "none", "temp"]:
    s = f"a@{dom}.test"
    print(send(s, msg(s, dom)))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..5], ["250"; 5], "{out}");
    let expect = [
        ("pass", "spf=pass"),
        ("fail", "spf=fail"),
        ("soft", "spf=softfail"),
        ("none", "spf=none"),
        ("temp", "spf=temperror"),
    ];
    for ((dom, want), header) in expect.iter().zip(&lines[5..]) {
        assert!(header.starts_with("mx.example.test;"), "{header}");
        assert!(!header.contains(" | "), "one header only: {header}");
        assert_eq!(
            entry(header, &format!("smtp.mailfrom=a@{dom}.test")),
            *want,
            "{header}"
        );
        assert_eq!(
            entry(header, "smtp.helo=client.test"),
            "spf=none",
            "{header}"
        );
        assert!(header.contains("dkim=none"), "{header}");
    }
}

#[test]
fn spf_fail_refused_under_reject() {
    let d = DnsServer::start(&spf_zone());
    let t = server(
        &d,
        "spf_fail = \"reject\"\n[auth.forwarders.\"soft.test\"]\nspf_fail = \"tag\"",
    );
    let out = run(
        &t,
        r#"
for dom in ["fail", "soft", "pass"]:
    s = f"a@{dom}.test"
    print(dom, send(s, msg(s, dom)))
"#,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["fail 550 5.7.23", "soft 250", "pass 250"],
        "{out}"
    );
}

#[test]
fn dkim_dmarc_and_forged_results() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = rsa_key(keys.path(), "signed.test");
    let zone = json!({
        "sel._domainkey.signed.test": {"TXT": [record]},
        "signed.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.signed.test": {"TXT": ["v=DMARC1; p=reject"]},
        "bank.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.bank.test": {"TXT": ["v=DMARC1; p=reject"]},
        "other.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    });
    let d = DnsServer::start(&zone);
    let t = server(&d, "dmarc_reject = \"honour\"");
    let out = run(
        &t,
        &format!(
            r#"
KEY = {key:?}
# 1: signed by dkimpy, aligned with the p=reject domain: dkim and dmarc pass.
print(send("x@signed.test", sign(msg("x@signed.test", "good"), "signed.test", KEY)))
# 2: signed, then a signed header changed in transit: dkim fails (From: other.test, no DMARC
# record). A changed body fails too (tests/mailauth_rfc.rs).
bad = sign(msg("x@other.test", "tampered"), "signed.test", KEY).replace(b"Subject: tampered", b"Subject: tampere!")
print(send("x@other.test", bad))
# 3: a forgery of a p=reject domain (SPF fails, no signature): refused.
print(send("ceo@bank.test", msg("ceo@bank.test", "forged")))
# 4: a forged Authentication-Results claiming our name.
print(send("a@other.test", msg("a@other.test", "claims", "Authentication-Results: mx.example.test; dkim=pass; dmarc=pass\r\n")))
for raw in fetch_all():
    print(" | ".join(results(raw)))
    print("removed" if b"X-Removed-Auth-Results: mx.example.test; dkim=pass" in raw else "kept")
"#
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["250", "250", "550 5.7.1", "250"], "{out}");
    let good = lines[4];
    assert_eq!(entry(good, "header.i=@signed.test"), "dkim=pass", "{good}");
    assert_eq!(
        entry(good, "header.from=signed.test"),
        "dmarc=pass",
        "{good}"
    );
    assert_eq!(entry(good, "smtp.mailfrom="), "spf=fail", "{good}");
    let tampered = lines[6];
    assert_eq!(
        entry(tampered, "header.i=@signed.test"),
        "dkim=fail",
        "{tampered}"
    );
    let claims = lines[8];
    assert!(!claims.contains(" | "), "only our own header: {claims}");
    assert_eq!(lines[9], "removed", "{out}");
    assert!(
        t.log().contains("DMARC policy of bank.test"),
        "log names the refusal"
    );
}

#[test]
fn dmarc_reject_tagged_only() {
    let zone = json!({
        "bank.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.bank.test": {"TXT": ["v=DMARC1; p=reject"]},
        "quar.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.quar.test": {"TXT": ["v=DMARC1; p=quarantine"]},
    });
    let d = DnsServer::start(&zone);
    let t = server(&d, "dmarc_reject = \"tag\"\ndmarc_quarantine = \"honour\"");
    let out = run(
        &t,
        r#"
print(send("ceo@bank.test", msg("ceo@bank.test", "forged")))
print(send("ceo@quar.test", msg("ceo@quar.test", "quarantined")))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["250", "250"], "{out}");
    // Only the tagged one is in INBOX; the quarantined one went to Junk.
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        entry(lines[2], "header.from=bank.test"),
        "dmarc=fail",
        "{out}"
    );
    assert!(lines[2].contains("policy.dmarc=reject"), "{out}");
}

/// A filter plugin gets the results in its envelope and decides on them:
/// it tags what it saw and refuses the DMARC failure that the server's own
/// policy (`dmarc_reject = "tag"`) lets through.
#[test]
fn a_plugin_decides_on_the_results() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = rsa_key(keys.path(), "signed.test");
    let zone = json!({
        "sel._domainkey.signed.test": {"TXT": [record]},
        "signed.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "_dmarc.signed.test": {"TXT": ["v=DMARC1; p=reject"]},
        "bank.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.bank.test": {"TXT": ["v=DMARC1; p=reject"]},
    });
    let d = DnsServer::start(&zone);
    let t = server(
        &d,
        &format!(
            "dmarc_reject = \"tag\"\n[[plugin]]\nname = \"auth-seen\"\npath = \"{}\"\ntimeout = \"2s\"\nconfig = {{ refuse_dmarc_fail = \"yes\" }}\n",
            test_plugins::AUTH_SEEN
        ),
    );
    let out = run(
        &t,
        &format!(
            r#"
KEY = {key:?}
print(send("x@signed.test", sign(msg("x@signed.test", "good"), "signed.test", KEY)))
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("client.test")
try:
    s.sendmail("ceo@bank.test", ["bob@example.test"], msg("ceo@bank.test", "forged")); print("250")
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
for raw in fetch_all():
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    print(m["X-Auth-Seen"])
"#
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "250", "{out}");
    assert_eq!(
        lines[1], "550 5.7.1 auth_seen: DMARC failed for bank.test",
        "{out}"
    );
    assert_eq!(
        lines[2],
        "spf=pass(signed.test); dkim=pass(signed.test); dmarc=pass(signed.test); arc=none",
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
}

/// A real message with its genuine signature (tests/fixtures/real-world):
/// the IETF list's DKIM signature verifies in Tern, and dkimpy agrees.
#[test]
fn a_real_world_signature_verifies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-world");
    let key = std::fs::read_to_string(dir.join("ietf-emailcore.key")).expect("key record");
    let (name, record) = key.trim().split_once(' ').expect("name and record");
    let d = DnsServer::start(&json!({ name: {"TXT": [record]} }));
    let t = server(&d, "");
    let out = run(
        &t,
        &format!(
            r#"
raw = open({eml:?}, "rb").read()
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("mail.ietf.org")
s.sendmail("emailcore-bounces@ietf.org", ["bob@example.test"], raw); s.quit()
got = fetch_all()[0]
print(" | ".join(results(got)))
print(dkim.verify(raw, dnsfunc=lambda n, timeout=5: {record:?}.encode()))
"#,
            eml = dir.join("ietf-emailcore.eml").display().to_string(),
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(entry(lines[0], "header.d=ietf.org"), "dkim=pass", "{out}");
    assert_eq!(lines[1], "True", "{out}");
}

#[test]
fn two_spf_records_are_permerror() {
    let d = DnsServer::start(&json!({
        "two.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all", "v=spf1 -all"]},
        "one.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all", "google-site-verification=abc"]},
        "inc.test": {"TXT": ["v=spf1 include:two.test -all"]},
        "redir.test": {"TXT": ["v=spf1 redirect=two.test"]},
        "early.test": {"TXT": ["v=spf1 ip4:127.0.0.1 include:two.test -all"]},
    }));
    let t = server(&d, "");
    let out = run(
        &t,
        r#"
for dom in ["two", "one", "inc", "redir", "early"]:
    print(send(f"a@{dom}.test", msg(f"a@{dom}.test", dom)))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..5], ["250"; 5], "{out}");
    let spf = |i: usize, dom: &str| entry(lines[5 + i], &format!("smtp.mailfrom=a@{dom}.test"));
    assert_eq!(spf(0, "two"), "spf=permerror", "{out}");
    // Another TXT record beside one SPF record is no second SPF record.
    assert_eq!(spf(1, "one"), "spf=pass", "{out}");
    // The same holds where include: and redirect= lead (RFC 7208 5.2, 6.1)...
    assert_eq!(spf(2, "inc"), "spf=permerror", "{out}");
    assert_eq!(spf(3, "redir"), "spf=permerror", "{out}");
    // ...when the evaluation gets there: an earlier match decides first.
    assert_eq!(spf(4, "early"), "spf=pass", "{out}");
}

#[test]
fn two_dmarc_records_mean_dmarc_is_not_applied() {
    let d = DnsServer::start(&json!({
        "dup.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.dup.test": {"TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=reject; rua=mailto:d@dup.test"]},
        "single.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.single.test": {"TXT": ["v=DMARC1; p=reject", "some other text"]},
    }));
    let t = server(&d, "dmarc_reject = \"honour\"");
    let out = run(
        &t,
        r#"
print(send("ceo@dup.test", msg("ceo@dup.test", "dup")))
print(send("ceo@single.test", msg("ceo@single.test", "single")))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["250", "550 5.7.1"], "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        entry(lines[2], "header.from=dup.test"),
        "dmarc=none",
        "{out}"
    );
}

/// Issue #20: RFC 7208 checks HELO only when it is a domain name.
#[test]
fn helo_address_literal_is_no_spf_identity() {
    let d = DnsServer::start(&spf_zone());
    let t = server(&d, "");
    let out = run(
        &t,
        r#"
print(send("a@pass.test", msg("a@pass.test", "literal"), helo="[127.0.0.1]"))
print(send("", msg("a@pass.test", "bounce"), helo="[127.0.0.1]"))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["250", "250"], "{out}");
    for header in &lines[2..4] {
        assert_eq!(entry(header, "smtp.helo=[127.0.0.1]"), "spf=none", "{out}");
        assert!(!header.contains("permerror"), "{out}");
    }
    assert_eq!(
        entry(lines[2], "smtp.mailfrom=a@pass.test"),
        "spf=pass",
        "{out}"
    );
}

#[test]
fn body_changed_after_signing_is_dkim_fail() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = rsa_key(keys.path(), "signed.test");
    let d = DnsServer::start(&json!({"sel._domainkey.signed.test": {"TXT": [record]}}));
    let t = server(&d, "");
    let out = run(
        &t,
        &format!(
            r#"
good = sign(msg("x@signed.test", "good"), "signed.test", {key:?})
print(send("x@signed.test", good))
print(send("x@signed.test", good.replace(b"Hello from good.", b"Hello from evil.")))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["250", "250"], "{out}");
    assert_eq!(
        entry(lines[2], "header.i=@signed.test"),
        "dkim=pass",
        "{out}"
    );
    assert_eq!(
        entry(lines[3], "header.i=@signed.test"),
        "dkim=fail",
        "{out}"
    );
    assert!(
        lines[3].contains("dkim=fail (body hash did not verify) header.i=@signed.test"),
        "the reason in the comment: {out}"
    );
}

/// An RSA key made with `tern dkim generate`, selector `sel`: (key file,
/// TXT record).
fn rsa_key(dir: &std::path::Path, domain: &str) -> (String, String) {
    let (key, record, _) = harness::dkim_generate(dir, domain, "sel", "rsa");
    (key, record)
}
