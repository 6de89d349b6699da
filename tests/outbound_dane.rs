//! DANE (RFC 7672) for MX delivery with a zone really signed: the test
//! writes the zone `b.test` (MX, A and the TLSA record of the MX host),
//! signs it with Debian's ldnsutils (`ldns-keygen`, `ldns-signzone`), and
//! Debian's `nsd` serves it on a loopback port of its own (config, pid and
//! zone files in a temporary folder, stopped when the guard drops). Tern
//! validates DNSSEC itself (`dns.dnssec = "validate"`) with the zone's key
//! as `dns.trust_anchor`. The MX host is an SMTP peer with real TLS and a
//! certificate from a CA made here that Tern does not trust otherwise:
//! only the TLSA record can vouch for it.

mod harness;
use harness::tls::{CertFiles, HttpsServer, SmtpPeer, TestCa, delivered};
use harness::{Tern, config, python, wait_for};
use sha2::Digest;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tern::testing::ports::free_port;
use tern::testing::reaper::{Watched, spawn_group};

/// SHA-256 of the certificate's SubjectPublicKeyInfo (TLSA 3 1 1).
fn spki_sha256(cert: &CertFiles) -> String {
    let pem = std::fs::read(&cert.cert).expect("cert");
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .expect("a certificate")
        .expect("pem");
    let anchor = webpki::anchor_from_trusted_cert(&der).expect("parse");
    let spki = webpki::spki_for_anchor(&anchor);
    sha2::Sha256::digest(spki.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/install-test-deps installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How the signed zone is spoilt, if at all.
#[derive(Clone, Copy, PartialEq)]
enum Signing {
    Good,
    /// The TLSA record altered after signing: its RRSIG no longer verifies.
    TlsaAltered,
    /// Every RRSIG expired in 2020.
    Expired,
}

/// nsd serving the signed zone `b.test`.
struct SignedZone {
    child: Watched,
    port: u16,
    anchor: PathBuf,
    _dir: tempfile::TempDir,
}

impl SignedZone {
    /// `tlsa_hex`: the SHA-256 of the MX host's key, or None for no TLSA record.
    /// `extra`: more records (zone-file lines, relative to `b.test.`).
    fn start(smtp_port: u16, tlsa_hex: Option<&str>, signing: Signing, extra: &str) -> SignedZone {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let zone = format!(
            "$ORIGIN b.test.\n$TTL 60\n\
             @ IN SOA ns.b.test. hostmaster.b.test. 1 3600 600 86400 60\n\
             @ IN NS ns.b.test.\n\
             ns IN A 127.0.0.1\n\
             @ IN MX 10 mx.b.test.\n\
             mx IN A 127.0.0.1\n{extra}"
        );
        let zone = match tlsa_hex {
            Some(hex) => format!("{zone}_{smtp_port}._tcp.mx IN TLSA 3 1 1 {hex}\n"),
            None => zone,
        };
        std::fs::write(d.join("b.test.zone"), zone).expect("zone");
        let key = sign(d, "b.test", signing);
        if signing == Signing::TlsaAltered {
            let signed = std::fs::read_to_string(d.join("b.test.signed")).expect("signed");
            let hex = tlsa_hex.expect("a TLSA record to alter");
            let altered = signed.replace(hex, &"00".repeat(32));
            assert_ne!(signed, altered, "the TLSA record is in the signed zone");
            std::fs::write(d.join("b.test.signed"), altered).expect("altered");
        }
        Self::serve(dir, &key, &[("b.test", "b.test.signed")])
    }

    /// `b.test` unsigned (its MX answer insecure), delegated without a DS
    /// from a signed `test.` whose key is the trust anchor: a provably
    /// insecure delegation, as for any unsigned domain under a signed TLD.
    fn insecure() -> SignedZone {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let parent = "$ORIGIN test.\n$TTL 60\n\
             @ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n\
             @ IN NS ns.test.\n\
             ns IN A 127.0.0.1\n\
             b IN NS ns.b.test.\n\
             ns.b IN A 127.0.0.1\n";
        let child = "$ORIGIN b.test.\n$TTL 60\n\
             @ IN SOA ns.b.test. hostmaster.b.test. 1 3600 600 86400 60\n\
             @ IN NS ns.b.test.\n\
             ns IN A 127.0.0.1\n\
             @ IN MX 10 mx.b.test.\n\
             mx IN A 127.0.0.1\n";
        std::fs::write(d.join("test.zone"), parent).expect("zone");
        std::fs::write(d.join("b.test.zone"), child).expect("zone");
        let key = sign(d, "test", Signing::Good);
        Self::serve(
            dir,
            &key,
            &[("test", "test.signed"), ("b.test", "b.test.zone")],
        )
    }

    /// nsd serving `zones` (name, file in `dir`) with `key` as the anchor.
    fn serve(dir: tempfile::TempDir, key: &str, zones: &[(&str, &str)]) -> SignedZone {
        let d = dir.path();
        let anchor = d.join("anchor.key");
        std::fs::copy(d.join(format!("{key}.key")), &anchor).expect("anchor");
        let port = free_port();
        let mut conf = format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n\
             \x20 zonesdir: \"{dir}\"\n  pidfile: \"{dir}/nsd.pid\"\n  database: \"\"\n\
             \x20 xfrdfile: \"{dir}/xfrd.state\"\n  zonelistfile: \"{dir}/zone.list\"\n\
             \x20 logfile: \"{dir}/nsd.log\"\n  server-count: 1\n  verbosity: 1\n\
             \x20 xfrdir: \"{dir}\"\n\
             remote-control:\n  control-enable: no\n",
            dir = d.display()
        );
        for (name, file) in zones {
            conf.push_str(&format!(
                "zone:\n  name: {name}\n  zonefile: \"{}\"\n",
                d.join(file).display()
            ));
        }
        std::fs::write(d.join("nsd.conf"), conf).expect("nsd.conf");
        run(Command::new("nsd-checkconf").arg(d.join("nsd.conf")));
        let child = spawn_group(
            Command::new("nsd")
                .args(["-d", "-c"])
                .arg(d.join("nsd.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("nsd (scripts/install-test-deps installs it)");
        let mut zone = SignedZone {
            child,
            port,
            anchor,
            _dir: dir,
        };
        wait_for("nsd to listen", Duration::from_secs(30), || {
            if let Ok(Some(status)) = zone.child.try_wait() {
                let log = std::fs::read_to_string(zone._dir.path().join("nsd.log"));
                panic!("nsd exited ({status}): {log:?}");
            }
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        zone
    }

    /// Tern on 127.0.0.2, validating with this zone's key, delivering to
    /// the MX host on `peer`'s port; `relay`: more `[relay]` settings.
    fn tern(&self, peer: &SmtpPeer, relay: &str) -> Tern {
        let extra = format!(
            "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nmx_port = {}\nmta_sts = false\n{relay}\
             [dns]\nnameservers = [\"127.0.0.1:{}\"]\ndnssec = \"validate\"\ntrust_anchor = \"{}\"\n\
             [queue]\nretry_intervals = [\"1s\"]\n",
            peer.port,
            self.port,
            path(&self.anchor),
        );
        Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra))
    }
}

/// Signs `<origin>.zone` in `dir` into `<origin>.signed` with a new KSK;
/// the key's base name.
fn sign(dir: &Path, origin: &str, signing: Signing) -> String {
    let key = run(Command::new("ldns-keygen")
        .args(["-a", "ECDSAP256SHA256", "-k", origin])
        .current_dir(dir));
    let key = key.trim().to_string();
    let mut sign = Command::new("ldns-signzone");
    sign.current_dir(dir);
    if signing == Signing::Expired {
        sign.args(["-i", "20200101", "-e", "20200201"]);
    }
    let (zone, signed) = (format!("{origin}.zone"), format!("{origin}.signed"));
    run(sign.args(["-f", &signed, &zone, &key]));
    key
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn send(tern: &Tern, subject: &str) {
    harness::tls::send(
        tern,
        "bob@b.test",
        &format!("Subject: {subject}\r\n"),
        false,
    );
}

/// How the MX host's TLSA record stands.
#[derive(Clone, Copy, PartialEq)]
enum Record {
    Matching,
    /// The key of another certificate for the same name.
    Wrong,
    Absent,
}

/// The delivery log line of the first message sent.
fn sent_line(tern: &Tern) -> String {
    wait_for("the delivery in the log", Duration::from_secs(30), || {
        tern.log()
            .lines()
            .find(|l| l.contains("status=\"sent\""))
            .map(str::to_string)
    })
}

/// Waits for bob@b.test to be deferred for `reason` under the DANE policy,
/// and checks that the MX host received no mail transaction.
fn deferred_under_dane(tern: &Tern, peer: &SmtpPeer, reason: &str) {
    let show = harness::tls::deferred_with(tern, "bob@b.test", reason);
    assert!(show.contains("state=Pending"), "{show}");
    assert!(show.contains("tls policy: DANE"), "{show}");
    assert!(
        peer.messages().is_empty(),
        "delivered: {:?}",
        peer.messages()
    );
    let commands = peer.commands();
    assert!(!commands.contains("MAIL FROM"), "{commands}");
}

fn setup(signing: Signing, record: Record) -> (SmtpPeer, SignedZone, Tern, TestCa) {
    let ca = TestCa::new();
    let cert = ca.issue("mx", &["mx.b.test"]);
    let other = ca.issue("other", &["mx.b.test"]);
    let peer = SmtpPeer::start("starttls", &cert);
    let tlsa = match record {
        Record::Matching => Some(spki_sha256(&cert)),
        Record::Wrong => Some(spki_sha256(&other)),
        Record::Absent => None,
    };
    let zone = SignedZone::start(peer.port, tlsa.as_deref(), signing, "");
    let tern = zone.tern(&peer, "");
    (peer, zone, tern, ca)
}

#[test]
fn a_matching_tlsa_record_delivers_over_verified_tls() {
    let (peer, _zone, tern, _ca) = setup(Signing::Good, Record::Matching);
    send(&tern, "dane");
    delivered(&peer, 1);
    let messages = peer.messages();
    assert!(messages[0].contains("Subject: dane"), "{messages:?}");
    assert!(peer.commands().contains("-- TLS"), "{}", peer.commands());
    let line = sent_line(&tern);
    assert!(
        line.contains("tls_policy=\"DANE\"") && line.contains(" verified\""),
        "{line}"
    );
}

#[test]
fn a_wrong_tlsa_record_defers_and_sends_nothing() {
    let (peer, _zone, tern, _ca) = setup(Signing::Good, Record::Wrong);
    send(&tern, "wrong tlsa");
    deferred_under_dane(
        &tern,
        &peer,
        "no certificate of the chain matches a TLSA record (TLSA: 3 1 1 ",
    );
    // The handshake happened, and then nothing of the transaction.
    assert!(peer.commands().contains("EHLO"), "{}", peer.commands());
}

#[test]
fn a_tlsa_record_altered_after_signing_is_bogus_and_defers() {
    let (peer, _zone, tern, _ca) = setup(Signing::TlsaAltered, Record::Matching);
    send(&tern, "bogus");
    deferred_under_dane(
        &tern,
        &peer,
        &format!("_{}._tcp.mx.b.test is bogus", peer.port),
    );
    assert!(peer.commands().is_empty(), "contacted: {}", peer.commands());
}

#[test]
fn expired_signatures_are_bogus_and_defer() {
    let (peer, _zone, tern, _ca) = setup(Signing::Expired, Record::Matching);
    send(&tern, "expired");
    deferred_under_dane(&tern, &peer, "the MX records of b.test are bogus");
    assert!(peer.commands().is_empty(), "contacted: {}", peer.commands());
}

#[test]
fn a_secure_absence_of_tlsa_records_falls_back_to_opportunistic_tls() {
    let (peer, _zone, tern, _ca) = setup(Signing::Good, Record::Absent);
    send(&tern, "no tlsa");
    delivered(&peer, 1);
    assert!(peer.messages()[0].contains("Subject: no tlsa"));
    let line = sent_line(&tern);
    assert!(line.contains("tls_policy=\"opportunistic\""), "{line}");
}

#[test]
fn requiretls_is_delivered_over_a_dane_verified_hop() {
    // MTA-STS is off and the peer's CA is not trusted: only DANE verifies.
    let (peer, _zone, tern, _ca) = setup(Signing::Good, Record::Matching);
    harness::tls::send(&tern, "bob@b.test", "Subject: sealed\r\n", true);
    harness::tls::delivered_under_requiretls(&peer);
}

/// The failures of the TLS-RPT reports POSTed to `https` (gunzipped JSON,
/// checked against RFC 8460's fields): (result type, receiving MX host).
const REPORT: &str = r#"
import gzip, json, sys
found = []
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        report = json.loads(gzip.decompress(f.read()))
    for key in ("organization-name", "date-range", "contact-info", "report-id", "policies"):
        assert key in report, (key, report)
    [entry] = report["policies"]
    policy = entry["policy"]
    assert policy["policy-type"] == "tlsa", policy
    assert policy["policy-domain"] == "b.test", policy
    # The records of the hosts DANE applied to (none when they were bogus).
    expected = [] if sys.argv[1] == "-" else ["3 1 1 " + sys.argv[1]]
    assert policy["policy-string"] == expected, policy
    summary = entry["summary"]
    assert summary["total-successful-session-count"] == 0, summary
    details = entry["failure-details"]
    assert summary["total-failure-session-count"] == sum(d["failed-session-count"] for d in details)
    found += sorted({(d["result-type"], d["receiving-mx-hostname"]) for d in details})
print(json.dumps(sorted(set(found))))
"#;

/// A zone asking for TLS-RPT reports by HTTPS, and the failures reported.
fn reported_failures(signing: Signing) -> Vec<(String, String)> {
    let ca = TestCa::new();
    let https = HttpsServer::start(&ca.issue("rpt", &["rpt.b.test"]), &serde_json::json!({}));
    // The peer's certificate chains to a CA Tern trusts (for the report
    // host): DANE still refuses it when no TLSA record matches.
    let cert = ca.issue("mx", &["mx.b.test"]);
    let other = ca.issue("other", &["mx.b.test"]);
    let peer = SmtpPeer::start("starttls", &cert);
    let tlsa = match signing {
        Signing::Good => spki_sha256(&other),
        _ => spki_sha256(&cert),
    };
    let records = format!(
        "rpt IN A 127.0.0.1\n_smtp._tls IN TXT \"v=TLSRPTv1; rua=https://rpt.b.test:{}/tlsrpt\"\n",
        https.port
    );
    let zone = SignedZone::start(peer.port, Some(&tlsa), signing, &records);
    let tern = zone.tern(
        &peer,
        &format!(
            "tls_ca = \"{}\"\ntls_rpt_period = \"3s\"\n",
            path(&ca.ca_file())
        ),
    );
    send(&tern, "reported");
    let found = wait_for("the TLS-RPT report", Duration::from_secs(60), || {
        let posts: Vec<String> = https.posts().iter().map(|p| path(p)).collect();
        if posts.is_empty() {
            return None;
        }
        let mut args = vec![if signing == Signing::Good {
            tlsa.as_str()
        } else {
            "-"
        }];
        args.extend(posts.iter().map(String::as_str));
        let found: Vec<(String, String)> =
            serde_json::from_str(python(REPORT, &args).trim()).expect("failures");
        Some(found)
    });
    assert!(
        peer.messages().is_empty(),
        "delivered: {:?}",
        peer.messages()
    );
    found
}

#[test]
fn tls_rpt_reports_a_wrong_tlsa_record_as_tlsa_invalid() {
    let found = reported_failures(Signing::Good);
    assert_eq!(
        found,
        [("tlsa-invalid".to_string(), "mx.b.test".to_string())]
    );
}

#[test]
fn tls_rpt_reports_a_bogus_tlsa_record_as_dnssec_invalid() {
    let found = reported_failures(Signing::TlsaAltered);
    assert_eq!(
        found,
        [("dnssec-invalid".to_string(), "mx.b.test".to_string())]
    );
}

#[test]
fn check_config_refuses_a_trust_anchor_that_does_not_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let anchor = dir.path().join("anchor.key");
    std::fs::write(&anchor, "b.test. IN DNSKEY 257 3 13 !!not-base64!!\n").expect("anchor");
    let dns = |anchor: &Path| {
        format!(
            "[dns]\ndnssec = \"validate\"\ntrust_anchor = \"{}\"\n",
            path(anchor)
        )
    };
    let tern = Tern::new(&config("mx.a.test", "a.test", &dns(&anchor)));
    let out = tern.cli(&["check-config"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    assert!(stderr.contains("dns.trust_anchor"), "{stderr}");
    // A real key file passes.
    let key = run(Command::new("ldns-keygen")
        .args(["-a", "ECDSAP256SHA256", "-k", "b.test"])
        .current_dir(dir.path()));
    let good = dir.path().join(format!("{}.key", key.trim()));
    let tern = Tern::new(&config("mx.a.test", "a.test", &dns(&good)));
    let out = tern.cli(&["check-config"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_insecure_mx_answer_falls_back_to_opportunistic_tls() {
    let ca = TestCa::new();
    let peer = SmtpPeer::start("starttls", &ca.issue("mx", &["mx.b.test"]));
    let zone = SignedZone::insecure();
    let tern = zone.tern(&peer, "");
    send(&tern, "unsigned");
    delivered(&peer, 1);
    let line = sent_line(&tern);
    assert!(line.contains("tls_policy=\"opportunistic\""), "{line}");
}
