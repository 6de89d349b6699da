//! A web mail server for the suites that drive it (web mail, decision
//! traces): example.test with bob and carol, HTTP and IMAP listeners, and
//! a runner for Python scripts that use `fixtures/webmail.py`'s browser.

use super::{Tern, config, python};
use std::path::Path;
use std::process::Command;

/// A web mail server for example.test with bob (`bob-pw`) and carol
/// (`carol-pw`); `extra` is more TOML.
pub fn webmail_server(extra: &str) -> Tern {
    let extra = format!(
        "[[listen]]\nprotocol = \"http\"\naddress = \"{{ip}}:0\"\n[[listen]]\nprotocol = \"imap\"\naddress = \"{{ip}}:0\"\n\n[tls]\nallow_plaintext_auth = true\n\n{extra}"
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "bob-pw");
    t.add_user("carol@example.test", "carol-pw");
    t
}

/// Runs `body` with the web mail helpers imported and the ports set
/// (HTTP, SMTP, SUB, POP, IMAP, HTTPS; 0 when not listening); its output.
pub fn webmail_run(t: &Tern, body: &str) -> String {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let port = |p: &str| t.ports.get(p).copied().unwrap_or(0);
    let script = format!(
        "import sys, re, base64, poplib, imaplib, json, os, time, smtplib\nsys.path.insert(0, {fixtures:?})\nfrom webmail import *\n\
         HTTP={}\nSMTP={}\nSUB={}\nPOP={}\nIMAP={}\nHTTPS={}\n{body}",
        port("http"),
        port("smtp"),
        port("submission"),
        port("pop3"),
        port("imap"),
        port("https"),
        fixtures = fixtures.display().to_string(),
    );
    python(&script, &[])
}

/// Runs the Selenium script `tests/fixtures/<fixture>` with `args`, after
/// the `TERN_WEB_SCREENSHOTS` folder (empty when unset) is appended, and
/// fails with its output and the server's log unless it printed "ok".
pub fn browser_script(t: &Tern, fixture: &str, args: &[String]) {
    assert!(
        Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists(),
        "chromium and chromium-driver are missing: run scripts/install-test-deps"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let shots = std::env::var("TERN_WEB_SCREENSHOTS").unwrap_or_default();
    let out = Command::new("python3")
        .arg(script)
        .args(args)
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
