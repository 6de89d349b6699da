//! DKIM signing on the way out: keys from `tern dkim generate`, mail from an
//! authenticated submission client signed at acceptance (the signature is
//! in the stored prefix). Independent check: Python's dkimpy verifies Tern's
//! RSA-SHA256 signature; Tern's Ed25519-SHA256 signature verifies in another
//! Tern receiving the message from outside (dkim=pass in its
//! Authentication-Results). The printed RSA record (two strings of at most
//! 255 octets) loads in BIND's `named-checkzone`, and the record BIND reads
//! back verifies with dkimpy. ARC seals are RSA (dkimpy's `arc_verify`).

mod harness;
use harness::{DnsServer, Tern, config, python};
use serde_json::json;

const HELPERS: &str = r#"
import poplib, smtplib, ssl, sys, email, email.policy, dkim
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def submit(port, user, to, data):
    s = smtplib.SMTP("127.0.0.1", port); s.ehlo("laptop.test"); s.login(user, "pw")
    s.sendmail(user, [to], data); s.quit()
def fetch_all(port, user):
    p = poplib.POP3("127.0.0.1", port); p.stls(CTX); p.user(user); p.pass_("pw")
    out = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, len(p.list()[1]) + 1)]
    p.quit(); return out
def results(raw):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [" ".join(v.split()) for v in m.get_all("Authentication-Results", [])]
MSG = (b"From: Alice <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: signed\r\n"
       b"\r\nA line.\r\n..A dot-stuffed line.\r\n\r\nTrailing blank lines follow.\r\n\r\n\r\n")
"#;

fn generate(dir: &std::path::Path, domain: &str, alg: &str) -> (String, String) {
    let (key, record, _) = generate_printed(dir, domain, alg);
    (key, record)
}

/// `generate`, with what the command printed.
fn generate_printed(dir: &std::path::Path, domain: &str, alg: &str) -> (String, String, String) {
    let generated = harness::dkim_generate(dir, domain, alg, alg);
    // A second run never overwrites the key.
    let again = std::process::Command::new(harness::tern_bin())
        .args(["dkim", "generate", domain, alg, "--algorithm", alg, "--out"])
        .arg(dir)
        .output()
        .expect("tern dkim generate");
    assert!(!again.status.success());
    generated
}

fn signer(key: &str, selector: &str, alg: &str, extra: &str) -> Tern {
    let text = config(
        "mx.example.test",
        "example.test",
        &format!(
            "[tls]\nallow_plaintext_auth = true\n{extra}\n[[dkim]]\ndomain = \"example.test\"\nselector = \"{selector}\"\nprivate_key = {key:?}\nalgorithm = \"{alg}\"\n"
        ),
    );
    let t = Tern::start(&text);
    t.add_user("alice@example.test", "pw");
    t.add_user("bob@example.test", "pw");
    t
}

#[test]
fn rsa_signature_verifies_with_dkimpy() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = generate(keys.path(), "example.test", "rsa");
    let t = signer(&key, "rsa", "rsa-sha256", "");
    let out = python(
        &format!(
            r#"{HELPERS}
submit({sub}, "alice@example.test", "bob@example.test", MSG)
raw = fetch_all({pop}, "bob@example.test")[0]
print(raw.split(b"\r\n")[0].split(b":")[0].decode())
RECORD = {record:?}.encode()
def dns(name, timeout=5):
    assert name == b"rsa._domainkey.example.test.", name
    return RECORD
print(dkim.verify(raw, dnsfunc=dns))
print(dkim.verify(raw.replace(b"A line.", b"A lime."), dnsfunc=dns))
"#,
            sub = t.port("submission"),
            pop = t.port("pop3"),
        ),
        &[],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["DKIM-Signature", "True", "False"],
        "{out}"
    );
}

#[test]
fn ed25519_signature_verifies_in_tern() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = generate(keys.path(), "example.test", "ed25519");
    assert!(record.starts_with("v=DKIM1; k=ed25519; p="), "{record}");
    let sender = signer(&key, "ed25519", "ed25519-sha256", "");
    let zone = json!({
        "ed25519._domainkey.example.test": {"TXT": [record]},
        "_dmarc.example.test": {"TXT": ["v=DMARC1; p=reject"]},
    });
    let d = DnsServer::start(&zone);
    // The receiving side: another server, for which example.test is remote.
    let receiver = Tern::start(&config(
        "mx.other.test",
        "other.test",
        &format!(
            "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[auth]\n",
            d.address()
        ),
    ));
    receiver.add_user("carol@other.test", "pw");
    let out = python(
        &format!(
            r#"{HELPERS}
submit({sub}, "alice@example.test", "bob@example.test", MSG)
raw = fetch_all({pop}, "bob@example.test")[0]
s = smtplib.SMTP("127.0.0.1", {rsmtp}); s.ehlo("mx.example.test")
s.sendmail("alice@example.test", ["carol@other.test"], raw); s.quit()
got = fetch_all({rpop}, "carol@other.test")[0]
print(" | ".join(results(got)))
"#,
            sub = sender.port("submission"),
            pop = sender.port("pop3"),
            rsmtp = receiver.port("smtp"),
            rpop = receiver.port("pop3"),
        ),
        &[],
    );
    let header = out.trim();
    assert!(header.starts_with("mx.other.test;"), "{header}");
    assert!(
        header.contains("dkim=pass header.d=example.test header.s=ed25519"),
        "{header}"
    );
    assert!(
        header.contains("dmarc=pass header.from=example.test"),
        "{header}"
    );
}

/// A message sent from web mail takes the submission path, DKIM signing
/// included: dkimpy verifies the copy that reaches the recipient.
#[test]
fn web_mail_sends_are_signed() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = generate(keys.path(), "example.test", "rsa");
    let t = signer(
        &key,
        "rsa",
        "rsa-sha256",
        "[[listen]]\nprotocol = \"http\"\naddress = \"{ip}:0\"\n",
    );
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = python(
        &format!(
            r#"{HELPERS}
sys.path.insert(0, {fixtures:?})
from webmail import Client
alice = Client({http}); alice.login("alice@example.test", "pw")
r = alice.post_multipart("/send", {{"to": "bob@example.test", "subject": "from the web",
                                   "body": "Signed on the way out.", "action": "send"}})
assert r.status == 303, (r.status, r.text[:800])
raw = fetch_all({pop}, "bob@example.test")[0]
RECORD = {record:?}.encode()
def dns(name, timeout=5):
    assert name == b"rsa._domainkey.example.test.", name
    return RECORD
print(b"DKIM-Signature:" in raw)
print(dkim.verify(raw, dnsfunc=dns))
"#,
            fixtures = fixtures.display().to_string(),
            http = t.port("http"),
            pop = t.port("pop3"),
        ),
        &[],
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["True", "True"], "{out}");
}

/// `tern dkim generate --algorithm rsa` prints a record BIND loads: each
/// character string at most 255 octets (RFC 1035 3.3), as
/// `opendkim-genkey` prints it; the record BIND reads back verifies.
#[test]
fn rsa_record_loads_in_named_checkzone() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, _, printed) = generate_printed(keys.path(), "example.test", "rsa");
    let line = printed
        .lines()
        .skip_while(|l| !l.contains("\tIN\tTXT\t"))
        .collect::<Vec<_>>()
        .join("\n");
    let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert!(
        strings.len() >= 2,
        "a 2048-bit key needs two strings: {line}"
    );
    assert!(strings.iter().all(|s| s.len() <= 255), "{line}");
    let path = keys.path().join("example.test.zone");
    std::fs::write(
        &path,
        format!(
            "$TTL 300\n@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n\
             @ IN NS ns.example.test.\nns IN A 192.0.2.53\n{line}\n"
        ),
    )
    .expect("zone");
    let named = |args: &[&str]| {
        let out = std::process::Command::new("named-checkzone")
            .args(args)
            .arg("example.test")
            .arg(&path)
            .output()
            .expect("named-checkzone (bind9-utils; scripts/install-test-deps)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(named(&[]).contains("OK"));
    let dumped = named(&["-D", "-o", "-"]);
    let txt = dumped
        .lines()
        .find(|l| l.starts_with("rsa._domainkey.example.test."))
        .expect("the record in BIND's dump");
    let record: String = txt.split('"').skip(1).step_by(2).collect();
    let out = python(
        &format!(
            r#"
import dkim
m = b"From: <a@example.test>\r\nSubject: x\r\n\r\nbody\r\n"
s = dkim.sign(m, b"rsa", b"example.test", open({key:?}, "rb").read()) + m
print(dkim.verify(s, dnsfunc=lambda n, timeout=5: {record:?}.encode()))
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "True", "{dumped}");
}

/// ARC sealing when forwarding: A receives mail from outside for an alias
/// that forwards to another domain, seals it with its `[[dkim]]` key
/// (`[auth] arc_seal`), and relays it to B. B's own ARC check says pass,
/// and so does dkimpy's independent `arc_verify` on the bytes B stored.
#[test]
fn forwarded_mail_is_arc_sealed() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = generate(keys.path(), "example.test", "rsa");
    let lines = arc_forward(&[("rsa", &key, "rsa-sha256", &record)], "arc-1", |_| {});
    assert!(lines[0].contains("arc=pass"), "{lines:?}");
    assert!(lines[2].starts_with("pass"), "{lines:?}");
}

/// An `arc_seal` domain with an Ed25519 and an RSA key (listed in that
/// order) seals with the RSA one, the only algorithm RFC 8617 (and dkimpy)
/// knows; with Ed25519 only, `check-config` warns.
#[test]
fn arc_seal_uses_the_rsa_key() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (ed_key, ed_record) = generate(keys.path(), "example.test", "ed25519");
    let (rsa_key, rsa_record) = generate(keys.path(), "example.test", "rsa");
    let lines = arc_forward(
        &[
            ("ed25519", &ed_key, "ed25519-sha256", &ed_record),
            ("rsa", &rsa_key, "rsa-sha256", &rsa_record),
        ],
        "arc-2",
        |a| {
            let check = a.cli(&["check-config"], "");
            assert!(check.status.success(), "{check:?}");
            assert!(
                !String::from_utf8_lossy(&check.stderr).contains("arc_seal"),
                "{check:?}"
            );
        },
    );
    assert!(
        lines[1].contains("a=rsa-sha256") && lines[1].contains("s=rsa"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("pass"), "{lines:?}");

    let only_ed = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[auth]\narc_seal = \"example.test\"\n{}",
            dkim_keys(&[("ed25519", &ed_key, "ed25519-sha256", "")])
        ),
    ));
    let check = only_ed.cli(&["check-config"], "");
    assert!(check.status.success(), "{check:?}");
    let warned = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(
        warned.contains("warning: [auth] arc_seal = \"example.test\" has only an Ed25519 key"),
        "{warned}"
    );
}

/// `[[dkim]]` entries for example.test: (selector, key file, algorithm, record).
fn dkim_keys(keys: &[(&str, &str, &str, &str)]) -> String {
    keys.iter()
        .map(|(sel, key, alg, _)| {
            format!("[[dkim]]\ndomain = \"example.test\"\nselector = \"{sel}\"\nprivate_key = {key:?}\nalgorithm = \"{alg}\"\n")
        })
        .collect()
}

/// Runs the forwarding of `arc_seal_uses_the_rsa_key` and
/// `forwarded_mail_is_arc_sealed` with `keys` for example.test (`check`
/// sees the forwarder first); returns B's Authentication-Results, the
/// ARC-Seal B got and dkimpy's `arc_verify` verdict.
fn arc_forward(
    keys: &[(&str, &str, &str, &str)],
    message_id: &str,
    check: impl FnOnce(&Tern),
) -> Vec<String> {
    let mut zone = json!({"orig.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]}});
    for (sel, _, _, record) in keys {
        zone[format!("{sel}._domainkey.example.test")] = json!({"TXT": [record]});
    }
    let dns = DnsServer::start(&zone);
    let b = Tern::start_on(
        "127.0.0.3",
        &config(
            "mx.far.test",
            "far.test",
            &format!(
                "[tls]\nallow_plaintext_auth = true\n[dns]\nnameservers = [\"{}\"]\n[auth]\nverify = true\n",
                dns.address()
            ),
        ),
    );
    b.add_user("bob@far.test", "pw");
    let a = Tern::start_on(
        "127.0.0.2",
        &config(
            "mx.example.test",
            "example.test",
            &format!(
                "[dns]\nnameservers = [\"{dns}\"]\n[relay]\nsmarthost = \"127.0.0.3:{port}\"\n\
                 [queue]\nretry_intervals = [\"1s\"]\n[aliases]\n\"fwd@example.test\" = [\"bob@far.test\"]\n\
                 [auth]\nverify = true\narc_seal = \"example.test\"\n{keys}",
                dns = dns.address(),
                port = b.port("smtp"),
                keys = dkim_keys(keys),
            ),
        ),
    );
    check(&a);
    let records: serde_json::Value = keys
        .iter()
        .map(|(sel, _, _, r)| (format!("{sel}._domainkey.example.test."), json!(r)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let out = python(
        &format!(
            r#"{HELPERS}
import time, json
msg = (b"From: Olga <olga@orig.test>\r\nTo: <fwd@example.test>\r\nSubject: pass it on\r\n"
       b"Message-ID: <{message_id}@orig.test>\r\n\r\nPlease forward.\r\n")
s = smtplib.SMTP("127.0.0.2", {a_smtp}); s.ehlo("mail.orig.test")
s.sendmail("olga@orig.test", ["fwd@example.test"], msg); s.quit()
def fetch_b():
    p = poplib.POP3("127.0.0.3", {b_pop}); p.stls(CTX); p.user("bob@far.test"); p.pass_("pw")
    out = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, len(p.list()[1]) + 1)]
    p.quit(); return out
deadline = time.time() + 120
while True:
    got = fetch_b()
    if got or time.time() > deadline:
        break
    time.sleep(0.2)
raw = got[0]
print(" | ".join(r for r in results(raw) if r.startswith("mx.far.test")))
print(" ".join(email.message_from_bytes(raw, policy=email.policy.compat32)["ARC-Seal"].split()))
RECORDS = json.loads({records:?})
cv, res, reason = dkim.arc_verify(raw, dnsfunc=lambda n, timeout=5: RECORDS.get(n.decode(), "").encode() or None)
print(cv.decode(), reason)
"#,
            a_smtp = a.port("smtp"),
            b_pop = b.port("pop3"),
            records = records.to_string(),
        ),
        &[],
    );
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert!(lines.len() >= 3, "{out}\n{}", a.log());
    lines
}
