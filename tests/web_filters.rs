//! Web mail's Filters, Vacation and Sieve script pages in a real browser
//! (Debian's headless Chromium driven by Selenium,
//! tests/fixtures/filters_test.py) against the real server with the shipped
//! sieve plugin at the delivery hook: rules made on the page file mail sent
//! over SMTP, the vacation reply set on the page answers each outside
//! sender once (counted here in the aiosmtpd sink, the smarthost), a
//! broken script is refused with its line and column, a script of the
//! user's own is recognised and replaced only when asked. With
//! `TERN_WEB_SCREENSHOTS=DIR` it also saves screenshots.

mod harness;
use harness::{READY_BOUND, Sink, Tern, browser_script, config};

#[test]
fn filters_and_vacation_pages_drive_delivery() {
    let sink = Sink::start();
    let extra = format!(
        r#"[[listen]]
protocol = "http"
address = "{{ip}}:0"

[tls]
allow_plaintext_auth = true

[relay]
smarthost = "127.0.0.1:{}"

[queue]
retry_intervals = ["1s"]

[[plugin]]
name = "sieve"
path = "{}"
timeout = "5s"
on_error = "continue"
"#,
        sink.port,
        test_plugins::shipped::SIEVE,
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "bob-pw");
    browser_script(
        &t,
        "filters_test.py",
        &[
            t.port("http").to_string(),
            t.port("smtp").to_string(),
            sink.mail_dir().display().to_string(),
        ],
    );

    // Lisa wrote three times and the boss once while the reply was on:
    // one reply each, from the null sender, with the page's subject and text.
    t.wait_queue_empty(READY_BOUND);
    let got = sink.received();
    let mut to: Vec<String> = got.iter().flat_map(|(rcpts, _)| rcpts.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        ["boss@outside.test", "lisa@outside.test"],
        "{got:#?}\nserver log:\n{}",
        t.log()
    );
    for (_, reply) in &got {
        for want in [
            "Subject: Away until Monday",
            "Auto-Submitted: auto-replied",
            "I am away until Monday.",
            "Your mail will wait for me.",
        ] {
            assert!(reply.contains(want), "{want} missing:\n{reply}");
        }
    }
    for n in 1..=2 {
        let json =
            std::fs::read_to_string(sink.mail_dir().join(format!("{n}.json"))).expect("envelope");
        let env: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(env["from"].as_str(), Some("<>"), "replies go from <>");
    }
}
