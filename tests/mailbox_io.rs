//! `tern export` and `tern import` against a real, independent reader and
//! writer of Maildir: a private Dovecot (`harness/dovecot.rs`). A Maildir
//! Tern exports is served by Dovecot with the same folders (nested and
//! non-ASCII), messages, flags, keywords and internal dates; a Maildir
//! Dovecot wrote (its APPENDs, with flags and keywords) imports into Tern
//! and reads the same over Tern's IMAP; an mbox export imports back into
//! another account unchanged.

mod harness;
mod imap_common;

use harness::{Dovecot, Tern, hand_over, python_json};
use serde_json::Value;

/// What an IMAP server shows of bob@example.test: per folder, per Subject,
/// [flags without \Recent, internal date in Unix seconds].
const STATE: &str = r#"
import imaplib, re, time
host, port, tls, user = "127.0.0.1", int(sys.argv[1]), sys.argv[2] == "tls", sys.argv[3]
m = imaplib.IMAP4_SSL(host, port, ssl_context=CTX) if tls else imaplib.IMAP4(host, port)
m.login(user, "pw")
folders = {}
for line in m.list()[1]:
    name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
    typ, _ = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", name
    meta, subjects = {}, {}
    typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE)")
    for item in data:
        if isinstance(item, bytes) and b"UID" in item:
            uid = int(re.search(rb"UID (\d+)", item).group(1))
            f = re.search(rb"FLAGS \(([^)]*)\)", item).group(1).decode().split()
            date = int(time.mktime(imaplib.Internaldate2tuple(item)))
            meta[uid] = [sorted(x for x in f if x != "\\Recent"), date]
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            subjects[uid] = item[1].decode().split(":", 1)[1].strip()
    folders[name] = {subjects[u]: meta[u] for u in subjects}
m.logout()
out(folders=folders)
"#;

/// Fills bob's account on an IMAP server: nested and non-ASCII folders,
/// system flags, keywords, internal dates.
const FILL: &str = r#"
import imaplib
port, tls = int(sys.argv[1]), sys.argv[2] == "tls"
m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=CTX) if tls else imaplib.IMAP4("127.0.0.1", port)
m.login("bob@example.test", "pw")
for name in ["Projects", "Projects/Q1", "Caf&AOk-"]:
    m.create(name)
def put(folder, subject, flags, date, body="text\r\nFrom the start of a line\r\n"):
    msg = ("From: lisa@outside.test\r\nTo: bob@example.test\r\nSubject: %s\r\n"
           "Message-ID: <%s@test>\r\n\r\n%s" % (subject, subject.replace(" ", "."), body)).encode()
    typ, _ = m.append(folder, flags, imaplib.Time2Internaldate(date), msg)
    assert typ == "OK", (folder, subject)
put("INBOX", "plain", "", 1700000000)
put("INBOX", "seen and flagged", "(\\Seen \\Flagged)", 1700000100)
put("INBOX", "answered with keyword", "(\\Answered $Work)", 1700000200)
put("Projects/Q1", "draft deleted", "(\\Draft \\Deleted $Work Later)", 1700000300)
put("Caf&AOk-", "in the cafe", "(\\Seen)", 1700000400)
m.logout()
out(ok=True)
"#;

fn state(port: u16, tls: bool, user: &str) -> serde_json::Map<String, Value> {
    let mode = if tls { "tls" } else { "plain" };
    match python_json(STATE, &[&port.to_string(), mode, user]).get("folders") {
        Some(Value::Object(f)) => f.clone(),
        other => panic!("no folders: {other:?}"),
    }
}

fn fill(port: u16, tls: bool) {
    python_json(FILL, &[&port.to_string(), if tls { "tls" } else { "plain" }]);
}

fn run_ok(tern: &Tern, args: &[&str]) -> String {
    let out = tern.cli(args, "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tern {args:?} failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The folders of `expected` hold in `found` exactly what they hold there.
fn assert_same(found: &serde_json::Map<String, Value>, expected: &serde_json::Map<String, Value>) {
    for (name, messages) in expected {
        assert_eq!(found.get(name), Some(messages), "folder {name}: {found:#?}");
    }
    let filled = expected
        .values()
        .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
        .count();
    assert_eq!(filled, 3, "INBOX, Projects/Q1 and Café have mail: {expected:#?}");
}

#[test]
fn a_maildir_tern_exports_is_served_by_dovecot_and_mbox_round_trips() {
    let tern = imap_common::server("");
    tern.add_user("carol@example.test", "pw");
    let imaps = tern.port("imaps");
    fill(imaps, true);
    let ours = state(imaps, true, "bob@example.test");

    let work = tempfile::tempdir().expect("tempdir");
    let maildir = work.path().join("Maildir");
    let maildir_arg = maildir.to_str().expect("path");
    let report = run_ok(
        &tern,
        &["export", "bob@example.test", "--format", "maildir", maildir_arg],
    );
    assert!(report.contains("5 message(s)"), "{report}");
    // Into a folder that is not empty: refused.
    let again = tern.cli(
        &["export", "bob@example.test", "--format", "maildir", maildir_arg],
        "",
    );
    assert!(!again.status.success(), "export over an export");
    hand_over(&maildir);
    let dovecot = Dovecot::start(&maildir, None);
    let theirs = state(dovecot.port, false, "bob@example.test");
    assert_same(&theirs, &ours);
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "every folder, empty ones too"
    );
    drop(dovecot);

    let mbox = work.path().join("mbox");
    let mbox_arg = mbox.to_str().expect("path");
    run_ok(
        &tern,
        &["export", "bob@example.test", "--format", "mbox", mbox_arg],
    );
    let text = std::fs::read_to_string(mbox.join("INBOX.mbox")).expect("INBOX.mbox");
    assert!(text.starts_with("From MAILER-DAEMON "), "{text}");
    assert!(text.contains("\n>From the start of a line\n"), "mboxrd quoting: {text}");
    assert!(text.contains("X-Status: F\n") && text.contains("X-Keywords: $Work\n"));
    let report = run_ok(&tern, &["import", "carol@example.test", mbox_arg]);
    assert!(report.contains("5 message(s)"), "{report}");
    assert_same(&state(imaps, true, "carol@example.test"), &ours);
}

#[test]
fn a_maildir_dovecot_wrote_imports_into_tern_with_folders_and_flags() {
    let work = tempfile::tempdir().expect("tempdir");
    let maildir = work.path().join("Maildir");
    let dovecot = Dovecot::start(&maildir, None);
    fill(dovecot.port, false);
    let theirs = state(dovecot.port, false, "bob@example.test");
    drop(dovecot);
    assert!(
        maildir.join(".Projects.Q1/dovecot-keywords").exists(),
        "Dovecot wrote the keywords file"
    );
    let tern = imap_common::server("");
    let report = run_ok(
        &tern,
        &["import", "bob@example.test", maildir.to_str().expect("path")],
    );
    assert!(report.contains("5 message(s)"), "{report}");
    assert_same(&state(tern.port("imaps"), true, "bob@example.test"), &theirs);
}
