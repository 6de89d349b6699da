//! TLS-RPT (RFC 8460) with real parts: b.test enforces MTA-STS over two MX
//! hosts on one SMTP peer, which shows an expired certificate to clients
//! asking for mx2.b.test (SNI) and a good one for mx.b.test. One message
//! makes one failed session (certificate-expired, mx2) and one successful
//! one (mx). `_smtp._tls.b.test` asks for reports by HTTPS; with a
//! reporting period of seconds, the aggregate report is POSTed, and here
//! it is gunzipped, parsed as JSON and checked against RFC 8460's schema.

mod harness;
mod tls_peers;
use harness::{DnsServer, Tern, config, python, wait_for};
use serde_json::json;
use std::time::Duration;
use tls_peers::{HttpsServer, SmtpPeer, TestCa, delivered};

const CHECK: &str = r#"
import gzip, json, sys, re
totals = [0, 0]
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        report = json.loads(gzip.decompress(f.read()))
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    for key in ("organization-name", "date-range", "contact-info", "report-id", "policies"):
        assert key in report, (key, report)
    assert report["organization-name"] == "mx.a.test", report
    assert stamp.match(report["date-range"]["start-datetime"]), report
    assert stamp.match(report["date-range"]["end-datetime"]), report
    assert report["date-range"]["start-datetime"] < report["date-range"]["end-datetime"]
    [entry] = report["policies"]
    policy = entry["policy"]
    assert policy["policy-type"] == "sts", policy
    assert policy["policy-domain"] == "b.test", policy
    assert "mode: enforce" in policy["policy-string"], policy
    assert sorted(policy["mx-host"]) == ["mx.b.test", "mx2.b.test"], policy
    summary = entry["summary"]
    details = entry.get("failure-details", [])
    assert summary["total-failure-session-count"] == sum(d["failed-session-count"] for d in details)
    for d in details:
        assert d["result-type"] == "certificate-expired", d
        assert d["receiving-mx-hostname"] == "mx2.b.test", d
        assert d["receiving-ip"] == "127.0.0.1", d
        assert isinstance(d["failure-reason-code"], str)
    totals[0] += summary["total-successful-session-count"]
    totals[1] += summary["total-failure-session-count"]
print(json.dumps(totals))
"#;

#[test]
fn a_period_with_one_success_and_one_failure_is_reported_by_https() {
    let ca = TestCa::new();
    let https = HttpsServer::start(
        &ca.issue("policy-host", &["mta-sts.b.test"]),
        &json!({ "mta-sts.b.test/.well-known/mta-sts.txt": {
            "type": "text/plain",
            "body": "version: STSv1\r\nmode: enforce\r\nmx: mx.b.test\r\nmx: mx2.b.test\r\nmax_age: 86400\r\n",
        }}),
    );
    let dns = DnsServer::start(&json!({
        "b.test": {"MX": [[5, "mx2.b.test"], [10, "mx.b.test"]]},
        "mx.b.test": {"A": ["127.0.0.1"]},
        "mx2.b.test": {"A": ["127.0.0.1"]},
        "_mta-sts.b.test": {"TXT": ["v=STSv1; id=1"]},
        "mta-sts.b.test": {"A": ["127.0.0.1"]},
        "_smtp._tls.b.test": {"TXT": [format!("v=TLSRPTv1; rua=https://mta-sts.b.test:{}/tlsrpt", https.port)]},
    }));
    let peer = SmtpPeer::start_with_sni(
        "starttls",
        &ca.issue("mx", &["mx.b.test"]),
        "mx2.b.test",
        &ca.issue_expired("mx2", &["mx2.b.test"]),
    );
    let extra = format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nmx_port = {}\ntls_ca = \"{}\"\n\
         mta_sts_port = {}\ntls_rpt_period = \"3s\"\n[dns]\nnameservers = [\"{}\"]\n",
        peer.port,
        ca.ca_file().display(),
        https.port,
        dns.address()
    );
    let tern = Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra));
    tls_peers::send(&tern, "bob@b.test", "Subject: reported\r\n", false);
    delivered(&peer, 1);
    let totals = wait_for("the TLS-RPT report", Duration::from_secs(60), || {
        let posts = https.posts();
        if posts.is_empty() {
            return None;
        }
        let args: Vec<String> = posts.iter().map(|p| p.display().to_string()).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let totals: Vec<u64> = serde_json::from_str(python(CHECK, &args).trim()).expect("totals");
        (totals == [1, 1]).then_some(totals)
    });
    assert_eq!(totals, [1, 1]);
    let log = https.requests();
    assert!(
        log.contains("POST mta-sts.b.test/tlsrpt application/tlsrpt+gzip"),
        "{log}"
    );
}
