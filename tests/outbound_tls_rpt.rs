//! TLS-RPT (RFC 8460) with real parts: b.test enforces MTA-STS over two MX
//! hosts on one SMTP peer, which shows an expired certificate to clients
//! asking for mx2.b.test (SNI) and a good one for mx.b.test. One message
//! makes one failed session (certificate-expired, mx2) and one successful
//! one (mx). `_smtp._tls.b.test` asks for reports by HTTPS; with a
//! reporting period of seconds, the aggregate report is POSTed, and here
//! it is gunzipped, parsed as JSON and checked against RFC 8460's schema.

mod harness;
use harness::tls::{HttpsServer, SmtpPeer, TestCa, delivered};
use harness::{DnsServer, Tern, config, python, wait_for};
use serde_json::json;
use std::time::Duration;

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
        assert d["sending-mta-ip"].startswith("127."), d
        assert isinstance(d["failure-reason-code"], str)
    totals[0] += summary["total-successful-session-count"]
    totals[1] += summary["total-failure-session-count"]
print(json.dumps(totals))
"#;

struct Setup {
    _ca: TestCa,
    https: HttpsServer,
    _dns: DnsServer,
    peer: SmtpPeer,
    tern: Tern,
}

/// b.test as described above, asking for reports at `rua` (`{port}`: the
/// HTTPS server's port), and Tern reporting every 3 seconds.
fn setup(rua: &str) -> Setup {
    let ca = TestCa::new();
    let https = HttpsServer::start(
        &ca.issue("policy-host", &["mta-sts.b.test"]),
        &json!({ "mta-sts.b.test/.well-known/mta-sts.txt": {
            "type": "text/plain",
            "body": "version: STSv1\r\nmode: enforce\r\nmx: mx.b.test\r\nmx: mx2.b.test\r\nmax_age: 86400\r\n",
        }}),
    );
    let rua = rua.replace("{port}", &https.port.to_string());
    let dns = DnsServer::start(&json!({
        "b.test": {"MX": [[5, "mx2.b.test"], [10, "mx.b.test"]]},
        "mx.b.test": {"A": ["127.0.0.1"]},
        "mx2.b.test": {"A": ["127.0.0.1"]},
        "_mta-sts.b.test": {"TXT": ["v=STSv1; id=1"]},
        "mta-sts.b.test": {"A": ["127.0.0.1"]},
        "_smtp._tls.b.test": {"TXT": [format!("v=TLSRPTv1; rua={rua}")]},
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
    Setup {
        _ca: ca,
        https,
        _dns: dns,
        peer,
        tern,
    }
}

/// The success and failure counts over the reports in `files`, each
/// checked against the schema by CHECK.
fn totals(files: &[String]) -> Vec<u64> {
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    serde_json::from_str(python(CHECK, &args).trim()).expect("totals")
}

#[test]
fn a_period_with_one_success_and_one_failure_is_reported_by_https() {
    let s = setup("https://mta-sts.b.test:{port}/tlsrpt");
    harness::tls::send(&s.tern, "bob@b.test", "Subject: reported\r\n", false);
    delivered(&s.peer, 1);
    wait_for("the TLS-RPT report", Duration::from_secs(60), || {
        let posts: Vec<String> = s
            .https
            .posts()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        (!posts.is_empty() && totals(&posts) == [1, 1]).then_some(())
    });
    let log = s.https.requests();
    assert!(
        log.contains("POST mta-sts.b.test/tlsrpt application/tlsrpt+gzip"),
        "{log}"
    );
}

#[test]
fn a_mailto_report_goes_through_the_queue() {
    let s = setup("mailto:tls-reports@a.test");
    s.tern.add_user("tls-reports@a.test", "pw");
    harness::tls::send(&s.tern, "bob@b.test", "Subject: reported\r\n", false);
    delivered(&s.peer, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    // Fetch the report mails by POP3 and save each attachment for CHECK.
    let fetch = format!(
        r#"
import poplib, ssl, email, sys, os
from email import policy
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
p = poplib.POP3_SSL("127.0.0.2", {port}, context=CTX); p.user("tls-reports@a.test"); p.pass_("pw")
n = p.stat()[0]
for i in range(1, n + 1):
    m = email.message_from_bytes(b"\r\n".join(p.retr(i)[1]), policy=policy.default)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "tlsrpt", m["Content-Type"]
    assert m["TLS-Report-Domain"] == "b.test" and m["TLS-Report-Submitter"] == "mx.a.test", m
    assert m["Subject"].startswith("Report Domain: b.test Submitter: mx.a.test Report-ID: <"), m["Subject"]
    [gz] = [part for part in m.iter_attachments() if part.get_content_type() == "application/tlsrpt+gzip"]
    assert gz.get_filename().startswith("mx.a.test!b.test!") and gz.get_filename().endswith(".json.gz")
    with open(os.path.join(sys.argv[1], "%d.gz" % i), "wb") as f:
        f.write(gz.get_content())
p.quit()
print(n)
"#,
        port = s.tern.port("pop3s")
    );
    let out = dir.path().display().to_string();
    wait_for("the TLS-RPT mail", Duration::from_secs(60), || {
        let n: usize = python(&fetch, &[&out]).trim().parse().expect("count");
        let files: Vec<String> = (1..=n).map(|i| format!("{out}/{i}.gz")).collect();
        (n > 0 && totals(&files) == [1, 1]).then_some(())
    });
}
