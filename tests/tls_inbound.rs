//! The server's certificates through the real binary: a reload (SIGHUP or
//! `tern tls reload`) serves new handshakes the new certificate while a
//! session opened before it goes on; a certificate that does not load
//! leaves the old one serving and says why; `[[tls.certificate]]` entries
//! are chosen by SNI (exact names, wildcards, the default for the rest).
//! And filter plugins see how a message arrived (`message.arrival`: TLS
//! version and cipher, the verified login), while a component built before
//! that method existed still loads and runs.

mod harness;
use harness::{PY_SIGHUP, Tern, config, python};
use std::path::Path;

/// Python helpers: a client context that accepts any certificate (the
/// tests compare the certificate itself), the DER of a PEM file, and the
/// certificate a new implicit-TLS handshake on POP3S gets for a name.
const PY: &str = r#"
import os, poplib, shutil, signal, smtplib, socket, ssl, subprocess, sys, time
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())
def served(port, name=None):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        with CTX.wrap_socket(s, server_hostname=name) as t:
            return t.getpeercert(binary_form=True)
def starttls(port, name=None):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.test")
    if name:
        s._host = name   # smtplib sends its connect host as the SNI name
    s.starttls(context=CTX)
    s.ehlo("client.test")
    return s
def mailbox(port, user):
    p = poplib.POP3_SSL("127.0.0.1", port, context=CTX); p.user(user); p.pass_("pw")
    msgs = [b"\r\n".join(p.retr(i)[1]) for i in range(1, p.stat()[0] + 1)]
    p.quit()
    return msgs
"#;

/// Writes a self-signed certificate for `names` as `dir/TAG.pem` and
/// `dir/TAG.key`.
fn certificate(dir: &Path, tag: &str, names: &[&str]) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).expect("certificate");
    std::fs::write(dir.join(format!("{tag}.pem")), c.cert.pem()).expect("write");
    std::fs::write(
        dir.join(format!("{tag}.key")),
        c.signing_key.serialize_pem(),
    )
    .expect("write");
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

#[test]
fn reload_serves_new_handshakes_the_new_certificate_and_keeps_open_sessions() {
    let certs = tempfile::tempdir().expect("tempdir");
    let dir = certs.path();
    for tag in ["a", "b", "c"] {
        certificate(dir, tag, &["mx.example.test"]);
    }
    std::fs::copy(dir.join("a.pem"), dir.join("live.pem")).expect("copy");
    std::fs::copy(dir.join("a.key"), dir.join("live.key")).expect("copy");
    let tls = format!(
        "[tls]\ncertificate = {:?}\nprivate_key = {:?}\n",
        path(dir, "live.pem"),
        path(dir, "live.key")
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &tls));
    t.add_user("bob@example.test", "pw");
    let script = format!(
        "{PY}{PY_SIGHUP}{}",
        r#"
SMTP, POPS, PID, TERN, CONFIG, LOG, CERTS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:8]
def cert(tag):
    return der(os.path.join(CERTS, tag + ".pem"))
def install(tag, ext=("pem", "key")):
    for e in ext:
        shutil.copy(os.path.join(CERTS, f"{tag}.{e}"), os.path.join(CERTS, f"live.{e}"))
def tls_reload():
    return subprocess.run([TERN, "tls", "reload", "--config", CONFIG], capture_output=True, text=True, timeout=60)

assert served(POPS) == cert("a")
old = starttls(SMTP)
assert old.sock.getpeercert(binary_form=True) == cert("a")
assert old.mail("lisa@outside.test")[0] == 250

install("b")
sighup(PID, LOG, "TLS certificates reloaded")
assert served(POPS) == cert("b"), "a handshake after SIGHUP got the old certificate"
new = starttls(SMTP)
assert new.sock.getpeercert(binary_form=True) == cert("b")
new.quit()
# The session opened before the reload goes on, on its own connection.
assert old.rcpt("bob@example.test")[0] == 250
assert old.data(b"Subject: across the reload\r\n\r\nx\r\n")[0] == 250
old.quit()

# A certificate file that is not PEM: refused, the one serving stays.
open(os.path.join(CERTS, "live.pem"), "w").write("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
r = tls_reload()
assert r.returncode != 0, r
assert "reload failed" in r.stderr and "live.pem" in r.stderr, r.stderr
assert served(POPS) == cert("b")
# Another certificate with the old key: refused too, and SIGHUP logs why.
install("c", ext=("pem",))
r = tls_reload()
assert r.returncode != 0 and "does not go with" in r.stderr, r.stderr
sighup(PID, LOG, "TLS reload failed")
assert served(POPS) == cert("b")

install("c")
r = tls_reload()
assert r.returncode == 0 and r.stdout.strip() == "reloaded: 1 certificate(s)", r
assert served(POPS) == cert("c")

got = mailbox(POPS, "bob@example.test")
assert len(got) == 1 and b"Subject: across the reload" in got[0], got
print("ok")
"#
    );
    let log = t.dir.path().join("tern.log");
    let out = python(
        &script,
        &[
            &t.port("smtp").to_string(),
            &t.port("pop3s").to_string(),
            &t.pid().expect("running").to_string(),
            harness::tern_bin(),
            &t.config.display().to_string(),
            &log.display().to_string(),
            &dir.display().to_string(),
        ],
    );
    assert_eq!(out.trim(), "ok", "{}", t.log());
    let log = t.log();
    assert!(
        log.contains("TLS reload failed, the certificates in use stay") && log.contains("live.pem"),
        "the log does not say why the reload failed: {log}"
    );
}

#[test]
fn sni_picks_the_certificate_for_the_name_and_the_default_otherwise() {
    let certs = tempfile::tempdir().expect("tempdir");
    let dir = certs.path();
    certificate(dir, "a", &["mail.a.test"]);
    certificate(dir, "b", &["*.b.test"]);
    certificate(dir, "d", &["mx.example.test"]);
    // The default (no names) comes last in the file on purpose.
    let tls = format!(
        "[[tls.certificate]]\nnames = [\"mail.a.test\"]\ncertificate = {:?}\nprivate_key = {:?}\n\
         [[tls.certificate]]\nnames = [\"*.b.test\"]\ncertificate = {:?}\nprivate_key = {:?}\n\
         [[tls.certificate]]\ncertificate = {:?}\nprivate_key = {:?}\n",
        path(dir, "a.pem"),
        path(dir, "a.key"),
        path(dir, "b.pem"),
        path(dir, "b.key"),
        path(dir, "d.pem"),
        path(dir, "d.key"),
    );
    let mut t = Tern::start(&config("mx.example.test", "example.test", &tls));
    let check = t.cli(&["check-config"], "");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{stderr}");
    assert!(!stderr.contains("is not valid for"), "{stderr}");
    let script = format!(
        "{PY}{}",
        r#"
SMTP, POPS, CERTS = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def cert(tag):
    return der(os.path.join(CERTS, tag + ".pem"))
for name, tag in [("mail.a.test", "a"), ("MAIL.A.TEST", "a"), ("mx.b.test", "b"),
                  ("b.test", "d"), ("deep.mx.b.test", "d"), ("unknown.test", "d"), (None, "d")]:
    assert served(POPS, name) == cert(tag), (name, tag)
# STARTTLS chooses the same way.
s = starttls(SMTP, "relay.b.test")
assert s.sock.getpeercert(binary_form=True) == cert("b")
s.quit()
s = starttls(SMTP, "other.test")
assert s.sock.getpeercert(binary_form=True) == cert("d")
s.quit()
print("ok")
"#
    );
    let out = python(
        &script,
        &[
            &t.port("smtp").to_string(),
            &t.port("pop3s").to_string(),
            &dir.display().to_string(),
        ],
    );
    assert_eq!(out.trim(), "ok", "{}", t.log());

    // A name its certificate does not cover: check-config says so (clients
    // that verify would refuse it) but does not fail; the server starts.
    let other = t.dir.path().join("other.toml");
    let text = std::fs::read_to_string(&t.config)
        .expect("config")
        .replace("\"mail.a.test\"", "\"mail.a.test\", \"mail.c.test\"");
    std::fs::write(&other, text).expect("config");
    let check = std::process::Command::new(harness::tern_bin())
        .args(["check-config", "--config"])
        .arg(&other)
        .output()
        .expect("tern check-config");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {} is not valid for mail.c.test",
            path(dir, "a.pem")
        )),
        "{stderr}"
    );

    // Only a running server can reload.
    t.stop();
    let out = t.cli(&["tls", "reload"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no server is running"), "{stderr}");
}

/// The `X-Arrival` and `X-Tern-Filter` fields of alice's messages, after
/// one message over submission with STARTTLS and AUTH (bob) and one in
/// clear from outside; also prints the TLS version and cipher the client
/// negotiated.
const TWO_ARRIVALS: &str = r#"
SMTP, SUB, POPS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = starttls(SUB)
version, cipher = s.sock.version(), s.sock.cipher()[0]
s.login("bob@example.test", "pw")
assert s.sendmail("bob@example.test", ["alice@example.test"], b"From: bob@example.test\r\nSubject: one\r\n\r\nx\r\n") == {}
s.quit()
s = smtplib.SMTP("127.0.0.1", SMTP, timeout=30)
assert s.sendmail("lisa@outside.test", ["alice@example.test"], b"From: lisa@outside.test\r\nSubject: two\r\n\r\nx\r\n") == {}
s.quit()
got = mailbox(POPS, "alice@example.test")
assert len(got) == 2, got
print(f"client: tls={version}; cipher={cipher}")
for m in got:
    for line in m.split(b"\r\n"):
        if line.startswith((b"X-Arrival:", b"X-Tern-Filter:")):
            print(line.decode())
"#;

fn two_arrivals(plugin: &str) -> String {
    let plugins = format!("[[plugin]]\nname = \"arrival\"\npath = {plugin:?}\n");
    let t = Tern::start(&config("mx.example.test", "example.test", &plugins));
    t.add_user("bob@example.test", "pw");
    t.add_user("alice@example.test", "pw");
    let out = python(
        &format!("{PY}{TWO_ARRIVALS}"),
        &[
            &t.port("smtp").to_string(),
            &t.port("submission").to_string(),
            &t.port("pop3s").to_string(),
        ],
    );
    assert!(!t.log().contains("plugin failed"), "{}", t.log());
    out
}

#[test]
fn a_filter_sees_the_tls_version_cipher_and_login_of_the_message() {
    let out = two_arrivals(test_plugins::ARRIVAL_SEEN);
    let mut lines = out.lines();
    let client = lines.next().expect("client line");
    let client = client.strip_prefix("client: ").expect(client);
    assert!(client.starts_with("tls=TLSv1."), "{out}");
    let arrivals: Vec<&str> = lines.collect();
    assert_eq!(
        arrivals,
        [
            format!("X-Arrival: {client}; user=bob@example.test").as_str(),
            "X-Arrival: tls=none; cipher=none; user=none",
        ],
        "{out}"
    );
}

/// `add_header` as built against the WIT before `message.arrival` was
/// added (tests/fixtures/plugins/README.md says how it was made).
const ADD_HEADER_BEFORE_ARRIVAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/plugins/add_header-before-arrival.wasm"
);

#[test]
fn a_filter_built_before_arrival_existed_still_loads_and_runs() {
    let check = std::process::Command::new(harness::tern_bin())
        .args(["plugin", "inspect", ADD_HEADER_BEFORE_ARRIVAL])
        .output()
        .expect("tern plugin inspect");
    let inspect = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{inspect}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(inspect.contains("hooks: filter"), "{inspect}");
    // A component names every host function it imports: the fixture does
    // not know `message.arrival`, the current build of its sibling does.
    let imports = |path: &str| {
        let bytes = std::fs::read(path).expect("component");
        bytes
            .windows(b"[method]message.arrival".len())
            .any(|w| w == b"[method]message.arrival")
    };
    assert!(
        !imports(ADD_HEADER_BEFORE_ARRIVAL),
        "the fixture knows arrival"
    );
    assert!(
        imports(test_plugins::ARRIVAL_SEEN),
        "arrival_seen lacks arrival"
    );
    let out = two_arrivals(ADD_HEADER_BEFORE_ARRIVAL);
    let tagged: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("X-Tern-Filter: add_header; "))
        .collect();
    assert_eq!(tagged.len(), 2, "{out}");
    assert!(
        tagged[0].contains("subject=one") && tagged[1].contains("subject=two"),
        "{out}"
    );
}
