//! Results other software reads, written as the RFCs write them (issue
//! #25, and the HELO literal of #20), through the real binary against a
//! dnslib DNS server and independent peers:
//! - two SPF records: `spf=permerror` (RFC 7208 4.5);
//! - two DMARC records: DMARC not applied, so p=reject refuses nothing
//!   (RFC 7489 6.6.3);
//! - HELO with an address literal: its SPF identity is `none`;
//! - a body changed after signing: `dkim=fail (body hash did not verify)`;
//! - `tern dkim generate --algorithm rsa` prints strings of at most 255
//!   octets that BIND's `named-checkzone` loads, and dkimpy verifies with;
//! - (ARC sealed with the RSA key: tests/mailauth_dkim.rs,
//!   `arc_seal_uses_the_rsa_key`);
//! - a bounce for a recipient the next hop refused, field by field
//!   (`Remote-MTA: dns; HOST`, `Diagnostic-Code: smtp; 550 5.1.1 …`).

mod harness;
use harness::{DnsServer, Tern, config, python};
use serde_json::json;

const HELPERS: &str = r#"
import poplib, smtplib, ssl, sys, email, email.policy, dkim, time
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def msg(sender, subject):
    return (f"From: <{sender}>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@client.test>\r\n\r\nHello from {subject}.\r\n").encode()
def send(sender, data, helo="client.test", port=None):
    s = smtplib.SMTP("127.0.0.1", port or SMTP); s.ehlo(helo)
    try:
        s.sendmail(sender, ["bob@example.test"], data); r = "250"
    except smtplib.SMTPDataError as e:
        r = f"{e.smtp_code} {e.smtp_error.decode().split()[0]}"
    s.quit(); return r
def fetch_all(host="127.0.0.1", port=None, user="bob@example.test"):
    p = poplib.POP3(host, port or POP); p.stls(CTX); p.user(user); p.pass_("pw")
    out = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, len(p.list()[1]) + 1)]
    p.quit(); return out
def results(raw):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [" ".join(v.split()) for v in m.get_all("Authentication-Results", [])]
"#;

fn receiver(dns: &DnsServer, auth: &str) -> Tern {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[tls]\nallow_plaintext_auth = true\n[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[auth]\n{auth}\n",
            dns.address()
        ),
    ));
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

/// The entry of an Authentication-Results value that contains `needle`.
fn entry<'a>(header: &'a str, needle: &str) -> &'a str {
    header
        .split(';')
        .map(str::trim)
        .find(|e| e.contains(needle))
        .unwrap_or("")
}

/// `tern dkim generate`: (key file, stdout).
fn generate(dir: &std::path::Path, domain: &str, selector: &str, alg: &str) -> (String, String) {
    let out = std::process::Command::new(harness::tern_bin())
        .args(["dkim", "generate", domain, selector, "--algorithm", alg, "--out"])
        .arg(dir)
        .output()
        .expect("tern dkim generate");
    assert!(out.status.success(), "{out:?}");
    let path = dir.join(format!("{domain}.{selector}.key"));
    (
        path.to_string_lossy().into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The record value in `tern dkim generate`'s output: its strings joined.
fn printed_record(stdout: &str) -> String {
    let (_, rest) = stdout.split_once("\tIN\tTXT\t").expect("TXT line");
    rest.split('"').skip(1).step_by(2).collect()
}

#[test]
fn two_spf_records_are_permerror() {
    let d = DnsServer::start(&json!({
        "two.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all", "v=spf1 -all"]},
        "one.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all", "google-site-verification=abc"]},
    }));
    let t = receiver(&d, "");
    let out = run(
        &t,
        r#"
print(send("a@two.test", msg("a@two.test", "two")))
print(send("a@one.test", msg("a@one.test", "one")))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["250", "250"], "{out}");
    let two = entry(lines[2], "smtp.mailfrom=a@two.test");
    assert!(two.starts_with("spf=permerror"), "{out}");
    let one = entry(lines[3], "smtp.mailfrom=a@one.test");
    assert!(one.starts_with("spf=pass"), "another TXT record is no SPF record: {out}");
}

#[test]
fn two_dmarc_records_mean_dmarc_is_not_applied() {
    let d = DnsServer::start(&json!({
        "dup.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.dup.test": {"TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=reject; rua=mailto:d@dup.test"]},
        "single.test": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
        "_dmarc.single.test": {"TXT": ["v=DMARC1; p=reject", "some other text"]},
    }));
    let t = receiver(&d, "dmarc_reject = \"honour\"");
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
    let dmarc = entry(lines[2], "dmarc=");
    assert!(dmarc.starts_with("dmarc=none"), "{out}");
    assert!(dmarc.contains("header.from=dup.test"), "{out}");
}

#[test]
fn helo_address_literal_is_no_spf_identity() {
    let d = DnsServer::start(&json!({
        "pass.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    }));
    let t = receiver(&d, "");
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
        let helo = entry(header, "smtp.helo=[127.0.0.1]");
        assert!(helo.starts_with("spf=none"), "{out}");
        assert!(!header.contains("permerror"), "{out}");
    }
    assert!(entry(lines[2], "smtp.mailfrom=a@pass.test").starts_with("spf=pass"), "{out}");
}

#[test]
fn body_changed_after_signing_is_dkim_fail() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, printed) = generate(keys.path(), "signed.test", "sel", "rsa");
    let d = DnsServer::start(&json!({
        "sel._domainkey.signed.test": {"TXT": [printed_record(&printed)]},
    }));
    let t = receiver(&d, "");
    let out = run(
        &t,
        &format!(
            r#"
KEY = open({key:?}, "rb").read()
def sign(data):
    return dkim.sign(data, b"sel", b"signed.test", KEY, include_headers=[b"from", b"to", b"subject"]) + data
good = sign(msg("x@signed.test", "good"))
print(send("x@signed.test", good))
print(send("x@signed.test", good.replace(b"Hello from good.", b"Hello from evil.")))
print(send("x@signed.test", good.replace(b"Subject: good", b"Subject: evil")))
for raw in fetch_all():
    print(" | ".join(results(raw)))
"#
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["250", "250", "250"], "{out}");
    assert!(entry(lines[3], "dkim=").starts_with("dkim=pass"), "{out}");
    let body = entry(lines[4], "dkim=");
    assert!(body.starts_with("dkim=fail (body hash did not verify)"), "{out}");
    assert!(body.contains("header.i=@signed.test"), "{out}");
    assert!(entry(lines[5], "dkim=").starts_with("dkim=fail"), "{out}");
}

#[test]
fn rsa_record_loads_in_named_checkzone() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, printed) = generate(keys.path(), "example.test", "sel", "rsa");
    let line = printed
        .lines()
        .skip_while(|l| !l.contains("\tIN\tTXT\t"))
        .collect::<Vec<_>>()
        .join("\n");
    let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert!(strings.len() >= 2, "a 2048-bit key needs two strings: {line}");
    assert!(strings.iter().all(|s| s.len() <= 255), "{line}");
    let zone = format!(
        "$TTL 300\n@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n\
         @ IN NS ns.example.test.\nns IN A 192.0.2.53\n{line}\n"
    );
    let path = keys.path().join("example.test.zone");
    std::fs::write(&path, zone).expect("zone");
    let check = std::process::Command::new("named-checkzone")
        .arg("example.test")
        .arg(&path)
        .output()
        .expect("named-checkzone (bind9-utils; scripts/install-test-deps)");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && said.contains("OK"), "{said}{check:?}");
    // The zone as BIND reads it back holds the record dkimpy verifies with.
    let dump = std::process::Command::new("named-checkzone")
        .args(["-D", "-o", "-", "example.test"])
        .arg(&path)
        .output()
        .expect("named-checkzone -D");
    let dumped = String::from_utf8_lossy(&dump.stdout).into_owned();
    let txt = dumped
        .lines()
        .find(|l| l.starts_with("sel._domainkey.example.test."))
        .expect("record in the dump");
    let record: String = txt.split('"').skip(1).step_by(2).collect();
    let out = python(
        &format!(
            r#"
import dkim
KEY = open({key:?}, "rb").read()
m = b"From: <a@example.test>\r\nSubject: x\r\n\r\nbody\r\n"
s = dkim.sign(m, b"sel", b"example.test", KEY) + m
print(dkim.verify(s, dnsfunc=lambda n, timeout=5: {record:?}.encode()))
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "True", "{dumped}");
}

#[test]
fn bounce_fields_as_postfix_writes_them() {
    let dns = DnsServer::start(&json!({
        "far.test": {"MX": [[10, "mx.far.test"]]},
        "mx.far.test": {"A": ["127.0.0.3"]},
    }));
    let b = Tern::start_on("127.0.0.3", &config("mx.far.test", "far.test", ""));
    b.add_user("bob@far.test", "pw");
    let a = Tern::start_on(
        "127.0.0.2",
        &config(
            "mx.example.test",
            "example.test",
            &format!(
                "[tls]\nallow_plaintext_auth = true\n[dns]\nnameservers = [\"{}\"]\n[relay]\nmx_port = {}\n[queue]\nretry_intervals = [\"1s\"]\n",
                dns.address(),
                b.port("smtp")
            ),
        ),
    );
    a.add_user("alice@example.test", "pw");
    let out = python(
        &format!(
            r#"{HELPERS}
s = smtplib.SMTP("127.0.0.2", {sub}); s.ehlo("laptop.test"); s.login("alice@example.test", "pw")
s.sendmail("alice@example.test", ["nobody@far.test"],
           b"From: <alice@example.test>\r\nTo: <nobody@far.test>\r\nSubject: hi\r\n\r\nHello.\r\n")
s.quit()
deadline = time.time() + 120
while True:
    got = fetch_all("127.0.0.2", {pop}, "alice@example.test")
    if got or time.time() > deadline:
        break
    time.sleep(0.2)
m = email.message_from_bytes(got[0], policy=email.policy.compat32)
for part in m.walk():
    if part.get_content_type() == "message/delivery-status":
        for block in part.get_payload():
            for k, v in block.items():
                print(f"{{k}}: {{' '.join(v.split())}}")
"#,
            sub = a.port("submission"),
            pop = a.port("pop3"),
        ),
        &[],
    );
    let field = |name: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name}: {out}\n{}", a.log()))
            .to_string()
    };
    assert_eq!(field("Reporting-MTA"), "dns; mx.example.test", "{out}");
    assert_eq!(field("Final-Recipient"), "rfc822; nobody@far.test", "{out}");
    assert_eq!(field("Action"), "failed", "{out}");
    assert_eq!(field("Status"), "5.1.1", "{out}");
    assert_eq!(field("Remote-MTA"), "dns; mx.far.test", "{out}");
    let diag = field("Diagnostic-Code");
    assert!(diag.starts_with("smtp; 550 5.1.1 "), "{out}");
    assert!(!diag.contains("said:") && !diag.contains("127.0.0.3"), "{out}");
}
