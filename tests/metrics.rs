//! Visibility: the Prometheus endpoint (`[metrics] address`) scraped with
//! Python's urllib before and after traffic — connections, accepted and
//! refused messages by reason, failed logins, deliveries by status, queue
//! gauges and the store flush histogram all move — and `log_format =
//! "json"` making every log line one JSON object.

mod harness;

use harness::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Scrapes `/metrics` and returns sample name (with labels) → value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let out = python_with_prelude(
        r#"
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=30)
assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
sys.stdout.write(r.read().decode())
"#,
        &[&port.to_string()],
    );
    assert!(out.status.success(), "scrape failed: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("sample line");
            (name.to_string(), value.parse().expect("value"))
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

#[test]
fn metrics_endpoint_counts_traffic() {
    let mut server = Tern::start(&smtp_config(
        "[metrics]\naddress = \"127.0.0.1:0\"\n[tls]\nallow_plaintext_auth = true\n[relay]\nsmarthost = \"127.0.0.1:9\"\n[queue]\nretry_intervals = [\"1h\"]\n",
    ));
    server.add_user("ann@example.test", "ann-pw");
    let port = server.port("metrics");
    let before = scrape(port);
    assert_eq!(
        value(&before, "tern_messages_accepted_total{protocol=\"smtp\"}"),
        0.0
    );
    assert!(before.contains_key("tern_queue_messages"));
    assert!(
        before
            .iter()
            .any(|(k, v)| k.starts_with("tern_node_info{node=\"") && *v == 1.0),
        "the node's name is exported: {before:?}"
    );

    let out = python_with_prelude(
        r#"
import smtplib, sys
smtp, sub = int(sys.argv[1]), int(sys.argv[2])
for i in range(2):
    s = smtplib.SMTP("127.0.0.1", smtp, timeout=30)
    s.sendmail("x@outside.test", ["ann@example.test"], "Subject: %d\r\n\r\nhi\r\n" % i)
    s.quit()
s = smtplib.SMTP("127.0.0.1", smtp, timeout=30)
try:
    s.sendmail("x@outside.test", ["nobody@example.test"], "Subject: x\r\n\r\nhi\r\n")
except smtplib.SMTPRecipientsRefused:
    print("refused")
s.quit()
s = smtplib.SMTP("127.0.0.1", sub, timeout=30)
s.ehlo("x")
try:
    s.login("ann@example.test", "wrong")
except smtplib.SMTPAuthenticationError:
    pass
s.login("ann@example.test", "ann-pw")
s.sendmail("ann@example.test", ["far@remote.test"], "Subject: out\r\n\r\nhi\r\n")
s.quit()
"#,
        &[&server.port_arg("smtp"), &server.port_arg("submission")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("refused"));

    // The relayed message is tried once (the smarthost refuses connections)
    // and deferred; poll until that attempt is counted.
    let start = Instant::now();
    let after = loop {
        let m = scrape(port);
        if value(&m, "tern_deliveries_total{status=\"deferred\"}") >= 1.0 {
            break m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no deferred delivery counted: {m:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        value(&after, "tern_messages_accepted_total{protocol=\"smtp\"}"),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "tern_messages_accepted_total{protocol=\"submission\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "tern_messages_refused_total{reason=\"unknown_recipient\"}"
        ),
        1.0
    );
    assert!(value(&after, "tern_connections_total{protocol=\"smtp\"}") >= 3.0);
    assert!(value(&after, "tern_auth_failures_total") >= 1.0);
    assert_eq!(value(&after, "tern_queue_messages"), 1.0);
    assert_eq!(value(&after, "tern_queue_recipients_pending"), 1.0);
    assert!(value(&after, "tern_queue_oldest_age_seconds") >= 0.0);
    let flushes = value(&after, "tern_store_flush_seconds_count");
    assert!(flushes >= 3.0, "flushes counted: {flushes}");
    assert_eq!(
        value(&after, "tern_store_flush_seconds_bucket{le=\"+Inf\"}"),
        flushes
    );
    assert!(value(&after, "tern_sessions_active") >= 0.0);
    let _ = server.mailbox("ann@example.test");
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    // A top-level key: before the tables.
    let server = Tern::start(&format!(
        "log_format = \"json\"\nnode_id = \"mx-7\"\n{BASE_CONFIG}"
    ));
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<x@outside.test>").expect(250, "2.1.0");
    s.cmd("RCPT TO:<nobody@example.test>");
    s.cmd("QUIT");
    let start = Instant::now();
    let log = loop {
        let log = server.log();
        if log.contains("listening") && log.lines().count() >= 2 {
            break log;
        }
        assert!(start.elapsed() < READY_BOUND, "no log lines: {log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in log.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(v["level"].is_string(), "{line}");
        assert!(v["message"].is_string(), "{line}");
        assert_eq!(v["node"], "mx-7", "every line names the node: {line}");
    }
    assert!(
        log.lines()
            .any(|l| l.contains("\"message\":\"listening\"") && l.contains("\"protocol\":\"smtp\"")),
        "{log}"
    );
}
