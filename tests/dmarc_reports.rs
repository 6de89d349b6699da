//! DMARC aggregate reports (RFC 7489 section 7.2) through the real binary:
//! a day with a DMARC pass (DKIM-signed by dkimpy, aligned SPF) and a fail
//! (a forged From) printed by `tern dmarc report --dry-run`, each report
//! validated with `xmllint --schema` against RFC 7489 appendix C's schema
//! (tests/fixtures/dmarc-rfc7489.xsd) and parsed back; and a report sent
//! through the queue at the end of its window (`interval = "1s"`) to an
//! aiosmtpd sink: only to the `rua` address that is authorized (RFC 7489
//! 7.1), gzipped, named as the RFC names it, DKIM-signed as the operator's
//! domain (dkimpy verifies), with the same XML valid against the schema.

mod harness;
use harness::{DnsServer, Tern, config, python, wait_for};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Validates `xml` with xmllint against the RFC's schema; its verdict.
fn xmllint(dir: &Path, name: &str, xml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, xml).expect("write report");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dmarc-rfc7489.xsd");
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(&path)
        .output()
        .expect("xmllint (libxml2-utils; scripts/install-test-deps)");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}\n{xml}");
    said
}

/// The rows of a report, parsed back with Python's ElementTree:
/// "source_ip count disposition dkim spf header_from envelope_from
/// spf-result dkim-results" per line, sorted; then the published policy
/// and the window length.
fn parse_back(xml: &str) -> String {
    python(
        r#"
import sys, xml.etree.ElementTree as ET
NS = {"d": "http://dmarc.org/dmarc-xml/0.1"}
root = ET.fromstring(sys.argv[1])
t = lambda e, p: e.find(p, NS).text
rows = []
for r in root.findall("d:record", NS):
    dk = ",".join(t(d, "d:domain") + "=" + t(d, "d:result") for d in r.findall("d:auth_results/d:dkim", NS))
    rows.append(" ".join([t(r, "d:row/d:source_ip"), t(r, "d:row/d:count"),
        t(r, "d:row/d:policy_evaluated/d:disposition"), t(r, "d:row/d:policy_evaluated/d:dkim"),
        t(r, "d:row/d:policy_evaluated/d:spf"), t(r, "d:identifiers/d:header_from"),
        t(r, "d:identifiers/d:envelope_from"), t(r, "d:auth_results/d:spf/d:result"), dk or "-"]))
for line in sorted(rows):
    print(line)
pp = "d:policy_published/"
print("policy", t(root, pp + "d:domain"), t(root, pp + "d:p"), t(root, pp + "d:adkim"), t(root, pp + "d:pct"))
dr = "d:report_metadata/d:date_range/"
print("window", int(t(root, dr + "d:end")) - int(t(root, dr + "d:begin")) + 1)
print("org", t(root, "d:report_metadata/d:org_name"), t(root, "d:report_metadata/d:email"))
"#,
        &[xml],
    )
}

const SEND: &str = r#"
import smtplib, dkim
def msg(sender, subject):
    return (f"From: <{sender}>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@client.test>\r\n\r\nHello from {subject}.\r\n").encode()
def send(mail_from, data):
    s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("client.test")
    s.sendmail(mail_from, ["bob@example.test"], data); s.quit()
"#;

fn zone(record: &str, rua: &str) -> serde_json::Value {
    json!({
        "sel._domainkey.sender.test": {"TXT": [record]},
        "sender.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "_dmarc.sender.test": {"TXT": [format!("v=DMARC1; p=none; adkim=r; rua={rua}")]},
        "sender.test._report._dmarc.reports.test": {"TXT": ["v=DMARC1"]},
        "reports.test": {"MX": [[10, "mx.reports.test"]]},
        "mx.reports.test": {"A": ["127.0.0.1"]},
    })
}

fn server(dns: &DnsServer, extra: &str) -> Tern {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[auth]\n{extra}",
            dns.address()
        ),
    ));
    t.add_user("bob@example.test", "pw");
    t
}

#[test]
fn a_day_with_a_pass_and_a_fail_validates_against_the_rfc_schema() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, record) = generate(keys.path(), "sender.test");
    let dns = DnsServer::start(&zone(&record, "mailto:dmarc@reports.test"));
    let t = server(
        &dns,
        "[dmarc]\nreports = true\nreport_from = \"dmarc@example.test\"\norg_name = \"Example Org\"\n",
    );
    python(
        &format!(
            r#"{SEND}
SMTP = {smtp}
KEY = open({key:?}, "rb").read()
good = msg("x@sender.test", "good")
send("x@sender.test", dkim.sign(good, b"sel", b"sender.test", KEY, include_headers=[b"from", b"subject"]) + good)
send("spoof@elsewhere.test", msg("x@sender.test", "forged"))
"#,
            smtp = t.port("smtp"),
        ),
        &[],
    );
    let out = t.cli(&["dmarc", "report", "--dry-run"], "");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // One report per window; a run across midnight UTC makes two.
    let reports: Vec<String> = text
        .split("<?xml")
        .skip(1)
        .map(|r| {
            let end = r.find("</feedback>").expect("end of report") + "</feedback>".len();
            format!("<?xml{}", &r[..end])
        })
        .collect();
    assert!(!reports.is_empty() && reports.len() <= 2, "{text}");
    assert!(text.contains("To: dmarc@reports.test"), "{text}");
    assert!(
        text.contains("DKIM-signed: no"),
        "no key for example.test: {text}"
    );
    let mut rows = Vec::new();
    for (i, xml) in reports.iter().enumerate() {
        xmllint(keys.path(), &format!("report{i}.xml"), xml);
        let parsed = parse_back(xml);
        assert!(parsed.contains("policy sender.test none r 100"), "{parsed}");
        assert!(parsed.contains("window 86400"), "{parsed}");
        assert!(
            parsed.contains("org Example Org dmarc@example.test"),
            "{parsed}"
        );
        rows.extend(
            parsed
                .lines()
                .filter(|l| l.starts_with("127.0.0.1"))
                .map(str::to_string),
        );
    }
    rows.sort();
    assert_eq!(
        rows,
        [
            "127.0.0.1 1 none fail fail sender.test elsewhere.test none -",
            "127.0.0.1 1 none pass pass sender.test sender.test pass sender.test=pass",
        ],
        "{text}"
    );
    // A dry run forgets nothing, and the day has not ended: nothing is
    // due to be sent yet.
    let again = t.cli(&["dmarc", "report", "--dry-run"], "");
    assert_eq!(String::from_utf8_lossy(&again.stdout), text);
    let due = t.cli(&["dmarc", "report"], "");
    assert!(due.status.success(), "{due:?}");
    let due = String::from_utf8_lossy(&due.stdout).into_owned();
    // (Unless the day ended between the messages and now.)
    assert!(
        due == "no DMARC reports to send\n" || due.contains("DMARC report "),
        "{due}"
    );
    // Without a running server, the dry run reads the store itself; only
    // the server sends.
    let mut t = t;
    t.stop();
    let offline = t.cli(&["dmarc", "report", "--dry-run"], "");
    assert!(offline.status.success(), "{offline:?}");
    if due.starts_with("no DMARC") {
        assert_eq!(String::from_utf8_lossy(&offline.stdout), text);
    }
    let send = t.cli(&["dmarc", "report"], "");
    assert!(!send.status.success(), "{send:?}");
    assert!(
        String::from_utf8_lossy(&send.stderr).contains("reports are sent by `tern serve`"),
        "{send:?}"
    );
}

#[test]
fn reports_go_through_the_queue_signed_to_authorized_addresses_only() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (_, sender_record) = generate(keys.path(), "sender.test");
    let (our_key, our_record) = generate(keys.path(), "example.test");
    let dns = DnsServer::start(&zone(
        &sender_record,
        "mailto:dmarc@reports.test,mailto:collector@unauthorized.test",
    ));
    let sink_dir = tempfile::tempdir().expect("tempdir");
    let port_file = sink_dir.path().join("port");
    let _sink = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py"))
        .arg(&port_file)
        .arg(sink_dir.path())
        .spawn()
        .map(tern::testing::reaper::watch)
        .expect("smtp sink");
    let sink_port: u16 = wait_for("the SMTP sink", Duration::from_secs(60), || {
        std::fs::read_to_string(&port_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let t = server(
        &dns,
        &format!(
            "[relay]\nmx_port = {sink_port}\n[queue]\nretry_intervals = [\"1s\"]\n\
             [dmarc]\nreports = true\ninterval = \"1s\"\nreport_from = \"dmarc@example.test\"\n\
             [[dkim]]\ndomain = \"example.test\"\nselector = \"sel\"\nprivate_key = {our_key:?}\nalgorithm = \"rsa-sha256\"\n"
        ),
    );
    python(
        &format!(
            "{SEND}\nSMTP = {}\nsend(\"spoof@elsewhere.test\", msg(\"x@sender.test\", \"forged\"))\n",
            t.port("smtp")
        ),
        &[],
    );
    let eml = sink_dir.path().join("1.eml");
    wait_for("the report at the sink", Duration::from_secs(120), || {
        eml.exists().then_some(())
    });
    let envelope = std::fs::read_to_string(sink_dir.path().join("1.json")).expect("envelope");
    let envelope: serde_json::Value = serde_json::from_str(&envelope).expect("json");
    assert_eq!(envelope["from"], "dmarc@example.test", "{envelope}");
    assert_eq!(envelope["to"], json!(["dmarc@reports.test"]), "{envelope}");
    let out = python(
        &format!(
            r#"
import email, email.policy, email.utils, gzip, dkim, sys
raw = open({eml:?}, "rb").read()
m = email.message_from_bytes(raw, policy=email.policy.compat32)
print(" ".join(m["Subject"].split()))
print(email.utils.parseaddr(m["From"])[1])
print(dkim.verify(raw, dnsfunc=lambda n, timeout=5: {our_record:?}.encode() if n == b"sel._domainkey.example.test." else None))
for part in m.walk():
    if part.get_content_type() == "application/gzip":
        print(part.get_filename())
        sys.stdout.write(gzip.decompress(part.get_payload(decode=True)).decode())
"#,
            eml = eml.display().to_string(),
        ),
        &[],
    );
    let mut lines = out.lines();
    let subject = lines.next().unwrap_or_default();
    assert!(
        subject.starts_with("Report Domain: sender.test Submitter: mx.example.test Report-ID: <"),
        "{out}"
    );
    assert_eq!(lines.next(), Some("dmarc@example.test"), "{out}");
    assert_eq!(
        lines.next(),
        Some("True"),
        "DKIM-signed as example.test: {out}"
    );
    let filename = lines.next().unwrap_or_default();
    let parts: Vec<&str> = filename.trim_end_matches(".xml.gz").split('!').collect();
    assert_eq!(parts[..2], ["mx.example.test", "sender.test"], "{out}");
    assert!(filename.ends_with(".xml.gz"), "{out}");
    let xml: String = lines.collect::<Vec<_>>().join("\n");
    xmllint(keys.path(), "sent.xml", &xml);
    let parsed = parse_back(&xml);
    assert!(
        parsed.contains("127.0.0.1 1 none fail fail sender.test elsewhere.test none -"),
        "{parsed}"
    );
    assert!(parsed.contains("window 1"), "{parsed}");
    assert!(
        t.log().contains("DMARC report queued"),
        "the log names the report"
    );
}

/// `tern dkim generate` for `domain`, RSA, selector `sel`: (key file, record).
fn generate(dir: &Path, domain: &str) -> (String, String) {
    let (key, record, _) = harness::dkim_generate(dir, domain, "sel", "rsa");
    (key, record)
}
