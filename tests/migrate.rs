//! `tern migrate USER --from imaps://…` against a private Dovecot serving
//! IMAPS with a test CA's certificate: every folder (nested, non-ASCII),
//! message, flag, keyword and internal date arrives; a second run copies
//! nothing, a run after new mail copies only that; and without the CA the
//! certificate is refused before any password is sent (verified TLS is
//! the default). A run cut off by SIGKILL of the server, once the first
//! copies show, resumes after a restart with every message exactly once.

mod harness;
mod imap_common;

use harness::dovecot::{assert_same, fill, state};
use harness::tls::TestCa;
use harness::{Dovecot, Tern, python_json};
use tern::testing::reaper::watch;

fn migrate(tern: &Tern, url: &str, password_file: &str, ca: Option<&str>) -> (bool, String) {
    let mut args = vec![
        "migrate",
        "bob@example.test",
        "--from",
        url,
        "--password-file",
        password_file,
    ];
    if let Some(ca) = ca {
        args.extend(["--ca-file", ca]);
    }
    let out = tern.cli(&args, "");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_account_pulled_over_imaps_arrives_whole_and_a_second_run_copies_nothing() {
    let ca = TestCa::new();
    let cert = ca.issue("dovecot", &["localhost"]);
    let work = tempfile::tempdir().expect("tempdir");
    let dovecot = Dovecot::start(&work.path().join("Maildir"), Some((&cert.cert, &cert.key)));
    fill(dovecot.port, false);
    let theirs = state(dovecot.port, false, "bob@example.test");

    let tern = imap_common::server("");
    let password = work.path().join("password");
    std::fs::write(&password, "pw\n").expect("password file");
    let password = password.to_str().expect("path");
    let url = format!(
        "imaps://bob%40example.test@localhost:{}",
        dovecot.tls_port.expect("imaps")
    );
    let ca_file = ca.ca_file();
    let ca_file = ca_file.to_str().expect("path");

    // Verified TLS by default: the test CA is not among the system's roots.
    let logins = || dovecot.log().matches("Login: user=").count();
    let before = logins();
    let (ok, text) = migrate(&tern, &url, password, None);
    assert!(!ok && text.contains("certificate"), "{text}");
    assert_eq!(logins(), before, "no login without a verified certificate");

    let (ok, text) = migrate(&tern, &url, password, Some(ca_file));
    assert!(ok && text.contains("5 message(s) copied"), "{text}");
    let imaps = tern.port("imaps");
    assert_same(&state(imaps, true, "bob@example.test"), &theirs);

    let (ok, text) = migrate(&tern, &url, password, Some(ca_file));
    assert!(ok && text.contains("0 message(s) copied"), "{text}");
    assert_same(&state(imaps, true, "bob@example.test"), &theirs);

    // New mail at the source: only it is copied.
    python_json(
        r#"
import imaplib
m = imaplib.IMAP4("127.0.0.1", PORT)
m.login("bob@example.test", "pw")
m.append("Projects/Q1", "(\\Flagged)", imaplib.Time2Internaldate(1700000500),
         b"From: a@b.test\r\nSubject: late\r\n\r\nlate\r\n")
out(ok=True)
"#,
        &[&dovecot.port.to_string()],
    );
    let theirs = state(dovecot.port, false, "bob@example.test");
    let (ok, text) = migrate(&tern, &url, password, Some(ca_file));
    assert!(ok && text.contains("1 message(s) copied"), "{text}");
    assert_same(&state(imaps, true, "bob@example.test"), &theirs);
}

/// INBOX's message count on Tern, and its Subjects (duplicates kept).
const COUNT: &str = r#"
import imaplib
m = imaplib.IMAP4_SSL("127.0.0.1", PORT, ssl_context=CTX)
m.login("bob@example.test", "pw")
m.select("INBOX", readonly=True)
typ, data = m.search(None, "ALL")
subjects = []
for n in data[0].split():
    typ, got = m.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects.append(got[0][1].decode().split(":", 1)[1].strip())
out(subjects=subjects)
"#;

/// Polls INBOX's size over one session until a message is there (60 s).
const WATCH: &str = r#"
import imaplib
m = imaplib.IMAP4_SSL("127.0.0.1", PORT, ssl_context=CTX)
m.login("bob@example.test", "pw")
print("ready", flush=True)
deadline = time.time() + 60
while time.time() < deadline:
    typ, data = m.status("INBOX", "(MESSAGES)")
    if int(data[0].split(b"MESSAGES ")[1].rstrip(b")")) > 0:
        print("seen", flush=True)
        break
"#;

fn subjects(port: u16) -> Vec<String> {
    let got = python_json(COUNT, &[&port.to_string()]);
    serde_json::from_value(got["subjects"].clone()).expect("subjects")
}

#[test]
fn a_migration_cut_off_by_sigkill_resumes_without_gaps_or_duplicates() {
    const MESSAGES: usize = 200;
    let ca = TestCa::new();
    let cert = ca.issue("dovecot", &["localhost"]);
    let work = tempfile::tempdir().expect("tempdir");
    let dovecot = Dovecot::start(&work.path().join("Maildir"), Some((&cert.cert, &cert.key)));
    python_json(
        &format!(
            r#"
import imaplib
m = imaplib.IMAP4("127.0.0.1", PORT)
m.login("bob@example.test", "pw")
for i in range({MESSAGES}):
    body = ("line %d of padding to make the copy take a while\r\n" % i) * 400
    m.append("INBOX", "", None, ("Subject: m%03d\r\n\r\n" % i + body).encode())
out(ok=True)
"#
        ),
        &[&dovecot.port.to_string()],
    );
    let mut tern = Tern::new(&imap_common::imap_config(""));
    tern.spawn();
    tern.pin_ports();
    tern.add_user("bob@example.test", "pw");
    let password = work.path().join("password");
    std::fs::write(&password, "pw\n").expect("password file");
    let url = format!(
        "imaps://bob%40example.test@localhost:{}",
        dovecot.tls_port.expect("imaps")
    );
    let ca_file = ca.ca_file();
    let args = |config: &std::path::Path| {
        let mut c = std::process::Command::new(harness::tern_bin());
        c.args(["migrate", "bob@example.test", "--from", &url])
            .arg("--password-file")
            .arg(&password)
            .arg("--ca-file")
            .arg(&ca_file)
            .arg("--config")
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let imaps = tern.port("imaps");
    // A watcher already logged in cuts the run off at the first copies.
    let mut watcher = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("{}\n{WATCH}", harness::PY_PRELUDE))
        .arg(imaps.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(watch)
        .expect("watcher");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        watcher.stdout.take().expect("watcher output"),
    ));
    let mut next_line = || lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(next_line(), "ready", "the watcher logged in");
    let mut first = args(&tern.config).spawn().map(watch).expect("tern migrate");
    assert_eq!(next_line(), "seen", "the watcher saw the first copies");
    let _ = watcher.wait();
    tern.restart();
    let _ = first.wait();
    let before = subjects(imaps).len();
    eprintln!("after the SIGKILL and restart: {before} of {MESSAGES} copied");
    let status = args(&tern.config).status().expect("tern migrate");
    assert!(status.success(), "the second run");
    let mut got = subjects(imaps);
    let total = got.len();
    got.sort();
    got.dedup();
    assert_eq!(
        (total, got.len()),
        (MESSAGES, MESSAGES),
        "every message once after the cut ({before} were there after the restart)"
    );
}
