//! `tern doctor` through the real binary, against real peers: a dnslib
//! server with the domain's zone (PTR included), an HTTPS server for the
//! MTA-STS policy with a certificate from a test CA (trusted through
//! `relay.tls_ca`), and a running `tern serve` whose listeners it probes.
//! First a zone where everything is right (every line ok, exit 0, the
//! same in `--json`), then each record wrong or missing in turn: an error
//! line naming the problem, the exact record to publish, exit non-zero.

mod harness;
use harness::tls::{CertFiles, HttpsServer, TestCa};
use harness::{DnsServer, Tern, config, dkim_generate};
use serde_json::{Value, json};
use std::process::Output;

const POLICY: &str = "mta-sts.example.test/.well-known/mta-sts.txt";

struct Setup {
    dns: DnsServer,
    https: HttpsServer,
    ca: TestCa,
    tern: Tern,
    /// The certificate files the config names (rewritten by the certificate cases).
    cert: CertFiles,
    /// The DKIM key record of the configured key.
    dkim: String,
    /// Holds the DKIM key file.
    _keys: tempfile::TempDir,
}

fn zone(dkim: &str) -> Value {
    json!({
        "example.test": {"MX": [[10, "mx.example.test"]], "TXT": ["v=spf1 ip4:192.0.2.10 -all"]},
        "mx.example.test": {"A": ["192.0.2.10"], "TXT": ["v=spf1 a -all"]},
        "10.2.0.192.in-addr.arpa": {"PTR": ["mx.example.test"]},
        "ed._domainkey.example.test": {"TXT": [dkim]},
        "_dmarc.example.test": {"TXT": ["v=DMARC1; p=reject; rua=mailto:postmaster@example.test"]},
        "_mta-sts.example.test": {"TXT": ["v=STSv1; id=20261204"]},
        "mta-sts.example.test": {"A": ["127.0.0.1"]},
        "_smtp._tls.example.test": {"TXT": ["v=TLSRPTv1; rua=mailto:postmaster@example.test"]},
    })
}

fn policy(mx: &str) -> Value {
    json!({ POLICY: {
        "type": "text/plain",
        "body": format!("version: STSv1\r\nmode: enforce\r\nmx: {mx}\r\nmax_age: 604800\r\n"),
    }})
}

impl Setup {
    fn new() -> Setup {
        let ca = TestCa::new();
        let https = HttpsServer::start(
            &ca.issue("policy", &["mta-sts.example.test"]),
            &policy("mx.example.test"),
        );
        let keys = tempfile::tempdir().expect("tempdir");
        let (key, dkim, _) = dkim_generate(keys.path(), "example.test", "ed", "ed25519");
        let dns = DnsServer::start(&zone(&dkim));
        let issued = ca.issue("server", &["mx.example.test"]);
        let cert = CertFiles {
            cert: ca.dir.path().join("in-use.crt"),
            key: ca.dir.path().join("in-use.key"),
        };
        std::fs::copy(&issued.cert, &cert.cert).expect("cert");
        std::fs::copy(&issued.key, &cert.key).expect("key");
        let extra = format!(
            "[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n\
             [relay]\ntls_ca = \"{}\"\nmta_sts_port = {}\n\
             [dns]\nnameservers = [\"{}\"]\n\
             [[dkim]]\ndomain = \"example.test\"\nselector = \"ed\"\nalgorithm = \"ed25519\"\nprivate_key = \"{key}\"\n",
            cert.cert.display(),
            cert.key.display(),
            ca.ca_file().display(),
            https.port,
            dns.address(),
        );
        let tern = Tern::start(&config("mx.example.test", "example.test", &extra));
        // The listeners got ephemeral ports; the doctor reads them from the config.
        tern.pin_ports();
        Setup {
            dns,
            https,
            ca,
            tern,
            cert,
            dkim,
            _keys: keys,
        }
    }

    fn doctor(&self, args: &[&str]) -> (Output, String) {
        let mut all = vec!["doctor"];
        all.extend_from_slice(args);
        let out = self.tern.cli(&all, "");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out, text)
    }

    /// Runs the doctor on `zone` and checks it fails with an error line of
    /// `check` containing `problem`, followed by `publish`.
    fn expect_error(&self, zone: &Value, check: &str, problem: &str, publish: &str) -> String {
        self.dns.set_zone(zone);
        let (out, text) = self.doctor(&[]);
        eprintln!("--- {check}: {problem}\n{text}");
        assert!(!out.status.success(), "exit 0 despite {problem:?}:\n{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error(s)"), "{stderr}");
        assert_error(&text, check, problem, publish);
        self.dns.set_zone(&zone_ok(self));
        text
    }

    fn replace_cert(&self, files: &CertFiles) {
        std::fs::copy(&files.cert, &self.cert.cert).expect("cert");
        std::fs::copy(&files.key, &self.cert.key).expect("key");
    }
}

fn zone_ok(s: &Setup) -> Value {
    zone(&s.dkim)
}

/// `text` has an error line of `check` containing `problem`, whose
/// `publish:` lines include `publish`.
fn assert_error(text: &str, check: &str, problem: &str, publish: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().position(|l| {
        l.starts_with("error") && l.split_whitespace().nth(1) == Some(check) && l.contains(problem)
    }) else {
        panic!("no error line for {check} with {problem:?}:\n{text}");
    };
    let published: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.trim_start().starts_with("publish:"))
        .map(|l| l.trim_start().trim_start_matches("publish:").trim())
        .collect();
    assert!(
        published.iter().any(|p| p.contains(publish)),
        "{check}: no publish line with {publish:?} after {:?}:\n{text}",
        lines[at]
    );
}

#[test]
fn a_correct_zone_is_all_ok_and_each_wrong_record_is_an_error_with_its_fix() {
    let mut s = Setup::new();
    // 1. Everything right: every line ok, exit 0.
    let (out, text) = s.doctor(&[]);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<&str> = text.lines().filter(|l| !l.contains(" error(s)")).collect();
    assert!(
        findings.iter().all(|l| l.starts_with("ok ")),
        "not all ok:\n{text}"
    );
    for check in [
        "addresses",
        "a",
        "ptr",
        "mx",
        "spf",
        "dkim",
        "dmarc",
        "mta-sts",
        "tls-rpt",
        "certificate",
        "listener",
    ] {
        assert!(
            findings
                .iter()
                .any(|l| l.split_whitespace().nth(1) == Some(check)),
            "no {check} line:\n{text}"
        );
    }
    assert!(
        text.contains("checking 192.0.2.10 (listener 127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("used the A/AAAA records of mx.example.test"),
        "{text}"
    );
    let listeners = findings
        .iter()
        .filter(|l| l.split_whitespace().nth(1) == Some("listener"));
    assert_eq!(
        listeners.count(),
        4,
        "smtp, submission, pop3, pop3s:\n{text}"
    );

    // 2. --json: the same findings, machine-readable.
    let (out, json) = s.doctor(&["--json"]);
    assert!(out.status.success(), "{json}");
    let list: Vec<Value> = serde_json::from_str(&json).expect("a JSON array");
    assert_eq!(list.len(), findings.len(), "{json}");
    for f in &list {
        assert_eq!(f["status"], "ok", "{f}");
        assert!(f["publish"].is_null(), "{f}");
        assert!(f["subject"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
    }
    assert!(
        list.iter()
            .any(|f| f["check"] == "dkim" && f["subject"] == "ed._domainkey.example.test")
    );

    // 3. Each record wrong or missing in turn.
    let good = zone_ok(&s);
    let mut z = good.clone();
    z["example.test"]["MX"] = json!([[10, "mx.elsewhere.test"]]);
    s.expect_error(
        &z,
        "mx",
        "MX 10 mx.elsewhere.test does not point at this server's hostname mx.example.test",
        "example.test. IN MX 10 mx.example.test.",
    );

    let mut z = good.clone();
    z["mx.example.test"] = json!({"TXT": ["v=spf1 a -all"]});
    s.expect_error(&z, "a", "no A or AAAA record", "mx.example.test. IN A ");

    let mut z = good.clone();
    z["10.2.0.192.in-addr.arpa"] = json!({"PTR": ["host.provider.test"]});
    s.expect_error(
        &z,
        "ptr",
        "PTR host.provider.test does not name this server's hostname mx.example.test",
        "10.2.0.192.in-addr.arpa. IN PTR mx.example.test.",
    );

    let mut z = good.clone();
    z.as_object_mut().unwrap().remove("10.2.0.192.in-addr.arpa");
    s.expect_error(
        &z,
        "ptr",
        "no PTR record",
        "10.2.0.192.in-addr.arpa. IN PTR mx.example.test.",
    );

    let mut z = good.clone();
    z["example.test"]["TXT"] = json!(["v=spf1 ip4:192.0.2.1 -all"]);
    s.expect_error(
        &z,
        "spf",
        "SPF does not authorise 192.0.2.10: fail",
        "example.test. IN TXT \"v=spf1 ip4:192.0.2.10 ip4:192.0.2.1 -all\"",
    );

    let mut z = good.clone();
    z["example.test"]["TXT"] = json!([]);
    s.expect_error(
        &z,
        "spf",
        "no SPF record",
        "example.test. IN TXT \"v=spf1 ip4:192.0.2.10 -all\"",
    );

    let other = tempfile::tempdir().expect("tempdir");
    let (_, other_record, _) = dkim_generate(other.path(), "example.test", "ed", "ed25519");
    let mut z = good.clone();
    z["ed._domainkey.example.test"] = json!({"TXT": [other_record]});
    s.expect_error(
        &z,
        "dkim",
        "the published key does not match the private key",
        &format!("ed._domainkey.example.test. IN TXT \"{}\"", s.dkim),
    );

    let mut z = good.clone();
    z.as_object_mut()
        .unwrap()
        .remove("ed._domainkey.example.test");
    s.expect_error(
        &z,
        "dkim",
        "no DKIM key record",
        &format!("ed._domainkey.example.test. IN TXT \"{}\"", s.dkim),
    );

    let mut z = good.clone();
    z.as_object_mut().unwrap().remove("_dmarc.example.test");
    s.expect_error(
        &z,
        "dmarc",
        "no DMARC record at _dmarc.example.test",
        "_dmarc.example.test. IN TXT \"v=DMARC1; p=reject; rua=mailto:postmaster@example.test\"",
    );

    // Problems that are warnings: exit 0, the fix shown all the same.
    let mut z = good.clone();
    z["_dmarc.example.test"] = json!({"TXT": ["v=DMARC1; p=none"]});
    z.as_object_mut().unwrap().remove("_smtp._tls.example.test");
    s.dns.set_zone(&z);
    let (out, text) = s.doctor(&[]);
    assert!(out.status.success(), "warnings only:\n{text}");
    assert!(
        text.contains(
            "warning dmarc       example.test: p=none: receivers are asked to do nothing"
        ),
        "{text}"
    );
    assert!(text.contains("publish:    _dmarc.example.test. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.test\""), "{text}");
    assert!(text.contains("publish:    _smtp._tls.example.test. IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@example.test\""), "{text}");
    assert!(text.ends_with("0 error(s)\n"), "{text}");
    s.dns.set_zone(&good);

    s.https.set_routes(&policy("mx.elsewhere.test"));
    s.expect_error(
        &good,
        "mta-sts",
        "lists mx mx.elsewhere.test but not this server's hostname mx.example.test",
        ";   mx: mx.example.test",
    );
    s.https.set_routes(&policy("mx.example.test"));

    let mut z = good.clone();
    z["_smtp._tls.example.test"] = json!({"TXT": ["v=TLSRPTv1; rua=ftp://nowhere"]});
    s.expect_error(
        &z,
        "tls-rpt",
        "malformed record",
        "_smtp._tls.example.test. IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@example.test\"",
    );

    // A problem in --json: the error with its record to publish.
    let mut z = good.clone();
    z["example.test"]["MX"] = json!([[10, "mx.elsewhere.test"]]);
    s.dns.set_zone(&z);
    let (out, json) = s.doctor(&["--json", "example.test"]);
    assert!(!out.status.success(), "{json}");
    let list: Vec<Value> = serde_json::from_str(&json).expect("a JSON array");
    let errors: Vec<&Value> = list.iter().filter(|f| f["status"] == "error").collect();
    // The MX, and the MTA-STS policy that does not list the new MX host.
    assert_eq!(errors.len(), 2, "{json}");
    assert_eq!(errors[1]["check"], "mta-sts");
    assert!(
        errors[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not the MX host mx.elsewhere.test")),
        "{json}"
    );
    assert_eq!(errors[0]["check"], "mx");
    assert_eq!(errors[0]["subject"], "example.test");
    assert_eq!(
        errors[0]["publish"],
        "example.test. IN MX 10 mx.example.test."
    );
    s.dns.set_zone(&good);

    // A subdomain without a DMARC record of its own is covered by its parent's.
    let (_, json) = s.doctor(&["--json", "sub.example.test"]);
    let list: Vec<Value> = serde_json::from_str(&json).expect("a JSON array");
    let dmarc = list
        .iter()
        .find(|f| f["check"] == "dmarc" && f["subject"] == "sub.example.test")
        .expect("a dmarc finding");
    assert_eq!(dmarc["status"], "ok", "{dmarc}");
    assert!(
        dmarc["message"]
            .as_str()
            .is_some_and(|m| m.contains("_dmarc.example.test applies to it: policy reject")),
        "{dmarc}"
    );

    // 4. The certificate: expired (error), expiring soon (a warning only), another name (error).
    s.replace_cert(&s.ca.issue_expired("expired", &["mx.example.test"]));
    let (out, text) = s.doctor(&[]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("error")
            && l.contains("certificate")
            && l.contains("expired on 2021-01-01")),
        "{text}"
    );
    s.replace_cert(&s.ca.issue_for_days("soon", &["mx.example.test"], 5));
    let (out, text) = s.doctor(&[]);
    assert!(
        out.status.success(),
        "a certificate expiring soon is a warning:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("warning")
            && l.contains("certificate")
            && l.contains("expires on")
            && l.contains("renew it")),
        "{text}"
    );
    s.replace_cert(&s.ca.issue("other", &["other.example.test"]));
    let (out, text) = s.doctor(&[]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("error")
            && l.contains("certificate")
            && l.contains("does not cover this server's hostname mx.example.test")),
        "{text}"
    );

    // 5. A listener that does not answer.
    s.replace_cert(&s.ca.issue("again", &["mx.example.test"]));
    s.tern.stop();
    let (out, text) = s.doctor(&[]);
    assert!(!out.status.success(), "{text}");
    let refused = text
        .lines()
        .filter(|l| l.starts_with("error   listener") && l.contains("not reachable"))
        .count();
    assert_eq!(refused, 4, "{text}");
}

/// An RSA key the operator made with OpenSSL: the record the doctor says
/// to publish is the SubjectPublicKeyInfo `openssl rsa -pubout` derives,
/// and once published, the key verifies.
#[test]
fn the_record_of_an_rsa_key_is_the_one_openssl_derives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("rsa.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl (scripts/install-test-deps)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let key_arg = key.to_string_lossy().into_owned();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &key_arg,
    ]);
    let public: String = run(&["pkey", "-in", &key_arg, "-pubout"])
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let record = format!("v=DKIM1; k=rsa; p={public}");
    let mut z = json!({
        "example.test": {"MX": [[10, "mx.example.test"]]},
        "mx.example.test": {"A": ["192.0.2.10"]},
    });
    let dns = DnsServer::start(&z);
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\n[[dkim]]\ndomain = \"example.test\"\nselector = \"rsa\"\nalgorithm = \"rsa-sha256\"\nprivate_key = \"{key_arg}\"\n",
        dns.address()
    );
    let tern = Tern::new(&config("mx.example.test", "example.test", &extra));
    let dkim = |tern: &Tern| -> Value {
        let out = tern.cli(&["doctor", "--json"], "");
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
        list.into_iter()
            .find(|f| f["check"] == "dkim")
            .expect("a dkim finding")
    };
    let missing = dkim(&tern);
    assert_eq!(missing["status"], "error", "{missing}");
    assert_eq!(missing["subject"], "rsa._domainkey.example.test");
    let publish = missing["publish"].as_str().expect("a record to publish");
    let published: String = publish.split('"').skip(1).step_by(2).collect();
    assert_eq!(published, record, "{publish}");
    assert!(
        publish.starts_with("rsa._domainkey.example.test. IN TXT \""),
        "{publish}"
    );
    z["rsa._domainkey.example.test"] = json!({"TXT": [record]});
    dns.set_zone(&z);
    let found = dkim(&tern);
    assert_eq!(found["status"], "ok", "{found}");
    assert!(
        found["message"]
            .as_str()
            .unwrap_or("")
            .contains("verifies a signature"),
        "{found}"
    );
}
