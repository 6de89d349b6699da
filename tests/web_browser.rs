//! Web mail in a real browser: headless Chromium from Debian driven by
//! Selenium (tests/fixtures/browser_test.py). Logs in, lists, reads a plain
//! and an HTML message, fetches an attachment, walks a hostile HTML corpus
//! (no alert, no request reaches any remote host: every host name resolves
//! to a canary server that counts requests), sends to a local and a remote
//! (aiosmtpd sink) address with an attachment, replies with the original
//! quoted, moves, deletes, searches, checks the phone-width layout and
//! logs out. With `TERN_WEB_SCREENSHOTS=DIR` it also saves screenshots.

mod harness;
use harness::{Sink, Tern, browser_script, config};

#[test]
fn browser_reads_sends_and_survives_hostile_mail() {
    let sink = Sink::start();
    let extra = format!(
        "[[listen]]\nprotocol = \"http\"\naddress = \"{{ip}}:0\"\n\n[tls]\nallow_plaintext_auth = true\n\n\
         [relay]\nsmarthost = \"127.0.0.1:{}\"\n\n[queue]\nretry_intervals = [\"1s\"]\n",
        sink.port
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "bob-pw");
    t.add_user("carol@example.test", "carol-pw");
    browser_script(
        &t,
        "browser_test.py",
        &[
            t.port("http").to_string(),
            t.port("smtp").to_string(),
            t.port("pop3").to_string(),
            sink.mail_dir().display().to_string(),
        ],
    );
}
