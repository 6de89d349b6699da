//! `tern export` and `tern import` against a real, independent reader and
//! writer of Maildir: a private Dovecot (`harness/dovecot.rs`). A Maildir
//! Tern exports is served by Dovecot with the same folders (nested and
//! non-ASCII), messages, flags, keywords and internal dates; a Maildir
//! Dovecot wrote (its APPENDs, with flags and keywords) imports into Tern
//! and reads the same over Tern's IMAP; an mbox export imports back into
//! another account unchanged.

mod harness;
mod imap_common;

use harness::dovecot::{assert_same, fill, state};
use harness::{Dovecot, hand_over};

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
    let report = tern.cli_ok(&[
        "export",
        "bob@example.test",
        "--format",
        "maildir",
        maildir_arg,
    ]);
    assert!(report.contains("5 message(s)"), "{report}");
    // The running server streamed it; this command wrote the files.
    harness::wait_for("the server's export log line", harness::READY_BOUND, || {
        tern.log()
            .contains("sent over the control socket")
            .then_some(())
    });
    // Into a folder that is not empty: refused.
    let again = tern.cli(
        &[
            "export",
            "bob@example.test",
            "--format",
            "maildir",
            maildir_arg,
        ],
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
    tern.cli_ok(&["export", "bob@example.test", "--format", "mbox", mbox_arg]);
    let text = std::fs::read_to_string(mbox.join("INBOX.mbox")).expect("INBOX.mbox");
    assert!(text.starts_with("From MAILER-DAEMON "), "{text}");
    assert!(
        text.contains("\n>From the start of a line\n"),
        "mboxrd quoting: {text}"
    );
    assert!(text.contains("X-Status: F\n") && text.contains("X-Keywords: $Work\n"));
    let report = tern.cli_ok(&["import", "carol@example.test", mbox_arg]);
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
    let report = tern.cli_ok(&[
        "import",
        "bob@example.test",
        maildir.to_str().expect("path"),
    ]);
    assert!(report.contains("5 message(s)"), "{report}");
    assert_same(
        &state(tern.port("imaps"), true, "bob@example.test"),
        &theirs,
    );
}
