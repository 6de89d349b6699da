//! Roundcube, the web mail people put in front of Dovecot, in front of
//! Tern: Debian's roundcube 1.6 under PHP's built-in server (SQLite for
//! its own tables, a private config folder) against Tern's imaps and
//! submission listeners with the test CA's certificate, driven in Debian's
//! headless Chromium by Selenium (tests/fixtures/roundcube_test.py): log
//! in, the quota shown (QUOTA), list sorted by date and by sender, threads, read, reply, move,
//! search, flag, delete, log out — each checked on Tern's side too, and
//! Roundcube's IMAP log must show server-side SORT and THREAD. With
//! `TERN_ROUNDCUBE_SCREENSHOTS=DIR` it saves screenshots (docs/roundcube/).

mod harness;
mod imap_common;
use harness::Tern;
use harness::tls::TestCa;
use imap_common::imap_config;
use std::path::Path;
use std::process::Command;

#[test]
fn roundcube_sorts_threads_reads_replies_moves_searches_flags_and_deletes() {
    for (path, package) in [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
        ("/usr/bin/php", "php-cli"),
        ("/var/lib/roundcube/public_html/index.php", "roundcube-core"),
        (
            "/usr/share/roundcube/SQL/sqlite.initial.sql",
            "roundcube-sqlite3",
        ),
    ] {
        assert!(
            Path::new(path).exists(),
            "{package} is missing: run scripts/install-test-deps"
        );
    }
    let ca = TestCa::new();
    let cert = ca.issue("mx", &["mx.example.test"]);
    let t = Tern::start(&imap_config(&format!(
        "[tls]\ncertificate = {:?}\nprivate_key = {:?}\n",
        cert.cert.display().to_string(),
        cert.key.display().to_string()
    )));
    t.add_user("bob@example.test", "bob-pw");
    t.add_user("carol@example.test", "carol-pw");
    let quota = t.cli(&["user", "quota", "bob@example.test", "64KiB"], "");
    assert!(quota.status.success(), "{quota:?}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/roundcube_test.py");
    let shots = std::env::var("TERN_ROUNDCUBE_SCREENSHOTS").unwrap_or_default();
    let out = Command::new("python3")
        .arg(script)
        .arg(t.port("imaps").to_string())
        .arg(t.port("submission").to_string())
        .arg(ca.ca_file())
        .arg(shots)
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "Roundcube test failed ({}):\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        t.log()
    );
}
