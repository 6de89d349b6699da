//! Web mail in a real browser: headless Chromium from Debian driven by
//! Selenium (tests/fixtures/browser_test.py). Logs in, lists, reads a plain
//! and an HTML message, fetches an attachment, walks a hostile HTML corpus
//! (no alert, no request reaches any remote host: every host name resolves
//! to a canary server that counts requests), sends to a local and a remote
//! (aiosmtpd sink) address with an attachment, replies with the original
//! quoted, moves, deletes, searches, checks the phone-width layout and
//! logs out. With `TERN_WEB_SCREENSHOTS=DIR` it also saves screenshots.

mod harness;
use harness::{Sink, Tern, config};
use std::path::Path;
use std::process::Command;

#[test]
fn browser_reads_sends_and_survives_hostile_mail() {
    assert!(
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "chromium and chromium-driver are missing: run scripts/install-test-deps"
    );
    let sink = Sink::start();
    let extra = format!(
        "[[listen]]\nprotocol = \"http\"\naddress = \"{{ip}}:0\"\n\n[tls]\nallow_plaintext_auth = true\n\n\
         [relay]\nsmarthost = \"127.0.0.1:{}\"\n\n[queue]\nretry_intervals = [\"1s\"]\n",
        sink.port
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "bob-pw");
    t.add_user("carol@example.test", "carol-pw");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser_test.py");
    let shots = std::env::var("TERN_WEB_SCREENSHOTS").unwrap_or_default();
    let out = Command::new("python3")
        .arg(script)
        .arg(t.port("http").to_string())
        .arg(t.port("smtp").to_string())
        .arg(t.port("pop3").to_string())
        .arg(sink.mail_dir())
        .arg(shots)
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "browser test failed ({}):\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        t.log()
    );
}
