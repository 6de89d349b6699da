//! `tern migrate USER --from imaps://…` against a private Dovecot serving
//! IMAPS with a test CA's certificate: every folder (nested, non-ASCII),
//! message, flag, keyword and internal date arrives; a second run copies
//! nothing, a run after new mail copies only that; and without the CA the
//! certificate is refused before any password is sent (verified TLS is
//! the default).

mod harness;
mod imap_common;

use harness::dovecot::{assert_same, fill, state};
use harness::tls::TestCa;
use harness::{Dovecot, Tern, python_json};

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
