//! MTA-STS (RFC 8461) for MX delivery, with real parts: the dnslib server
//! publishes `_mta-sts` records and MX hosts, an HTTPS server with a
//! certificate from a CA made here (rcgen) serves the policy files, and the
//! MX host is an SMTP peer with real TLS (or a man in the middle that
//! strips STARTTLS). Tern trusts the test CA through `relay.tls_ca` and
//! reaches the policy host on `relay.mta_sts_port`.

mod harness;
use harness::tls::{CertFiles, HttpsServer, SmtpPeer, TestCa, delivered};
use harness::{DnsServer, Tern, config, python, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const POLICY_URL: &str = "mta-sts.b.test/.well-known/mta-sts.txt";

fn zone(mx: &str, id: &str) -> Value {
    json!({
        "b.test": {"MX": [[10, mx]], "TTL": 0},
        "mx.b.test": {"A": ["127.0.0.1"]},
        "mx2.b.test": {"A": ["127.0.0.1"]},
        "c.test": {"MX": [[10, "mx.b.test"]]},
        "_mta-sts.b.test": {"TXT": [format!("v=STSv1; id={id}")], "TTL": 0},
        "mta-sts.b.test": {"A": ["127.0.0.1"]},
    })
}

fn policy(mode: &str, mx: &str) -> Value {
    json!({ POLICY_URL: {
        "type": "text/plain",
        "body": format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"),
    }})
}

struct Setup {
    dns: DnsServer,
    https: HttpsServer,
    ca: TestCa,
}

impl Setup {
    fn new(routes: Value) -> Setup {
        let ca = TestCa::new();
        let https = HttpsServer::start(&ca.issue("policy-host", &["mta-sts.b.test"]), &routes);
        let dns = DnsServer::start(&zone("mx.b.test", "1"));
        Setup { dns, https, ca }
    }

    fn mx_cert(&self) -> CertFiles {
        self.ca.issue("mx", &["mx.b.test", "mx2.b.test"])
    }

    /// Tern on 127.0.0.2 delivering to MX hosts on the peer's port.
    fn tern(&self, peer: &SmtpPeer) -> Tern {
        let extra = format!(
            "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nmx_port = {}\ntls_ca = \"{}\"\n\
             mta_sts_port = {}\n[dns]\nnameservers = [\"{}\"]\n[queue]\nretry_intervals = [\"1s\"]\n",
            peer.port,
            self.ca.ca_file().display(),
            self.https.port,
            self.dns.address()
        );
        Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra))
    }
}

fn send(tern: &Tern, subject: &str) {
    harness::tls::send(
        tern,
        "bob@b.test",
        &format!("Subject: {subject}\r\n"),
        false,
    );
}

fn deferred_with(tern: &Tern, reason: &str) -> String {
    harness::tls::deferred_with(tern, "bob@b.test", reason)
}

#[test]
fn enforce_with_a_valid_certificate_delivers() {
    let s = Setup::new(policy("enforce", "mx.b.test"));
    let peer = SmtpPeer::start("starttls", &s.mx_cert());
    let tern = s.tern(&peer);
    send(&tern, "enforced");
    delivered(&peer, 1);
    assert!(peer.commands().contains("-- TLS"));
    assert!(
        s.https.requests().contains(POLICY_URL),
        "{}",
        s.https.requests()
    );
    let line = wait_for("the delivery in the log", Duration::from_secs(30), || {
        let log = tern.log();
        log.lines()
            .find(|l| l.contains("status=\"sent\""))
            .map(str::to_string)
    });
    assert!(
        line.contains("verified") && line.contains("MTA-STS enforce (policy 1)"),
        "{line}"
    );
    assert!(tern.log().contains("MTA-STS policy fetched"));
    // The policy is cached: the next message needs no fetch.
    let before = s.https.requests().lines().count();
    send(&tern, "cached");
    delivered(&peer, 2);
    assert_eq!(s.https.requests().lines().count(), before);
}

#[test]
fn enforce_never_uses_an_mx_the_policy_does_not_list() {
    let s = Setup::new(policy("enforce", "*.elsewhere.test"));
    let peer = SmtpPeer::start("starttls", &s.mx_cert());
    let tern = s.tern(&peer);
    send(&tern, "unlisted");
    let show = deferred_with(&tern, "not listed in the MTA-STS policy");
    assert!(show.contains("state=Pending"), "{show}");
    assert!(
        show.contains("tls policy: MTA-STS enforce (policy 1)"),
        "{show}"
    );
    assert!(
        peer.commands().is_empty(),
        "the unlisted MX was contacted: {}",
        peer.commands()
    );
}

#[test]
fn enforce_with_starttls_stripped_sends_nothing_in_clear() {
    let s = Setup::new(policy("enforce", "mx.b.test"));
    let real = SmtpPeer::start("starttls", &s.mx_cert());
    let mitm = SmtpPeer::stripping(&real, &s.mx_cert());
    let tern = s.tern(&mitm);
    send(&tern, "downgrade");
    let show = deferred_with(&tern, "does not offer STARTTLS");
    assert!(show.contains("TLS required (MTA-STS enforce"), "{show}");
    let seen = mitm.commands();
    assert!(seen.contains("EHLO"), "{seen}");
    assert!(
        !seen.contains("MAIL FROM") && !seen.contains("RCPT"),
        "{seen}"
    );
    assert!(real.messages().is_empty());
}

#[test]
fn enforce_with_an_expired_certificate_defers() {
    let s = Setup::new(policy("enforce", "mx.b.test"));
    let peer = SmtpPeer::start("starttls", &s.ca.issue_expired("old", &["mx.b.test"]));
    let tern = s.tern(&peer);
    send(&tern, "expired");
    let show = deferred_with(&tern, "certificate expired");
    assert!(show.contains("tls policy: MTA-STS enforce"), "{show}");
    assert!(
        !peer.commands().contains("MAIL FROM"),
        "{}",
        peer.commands()
    );
}

#[test]
fn testing_mode_delivers_and_reports_the_failure() {
    let s = Setup::new(policy("testing", "mx.b.test"));
    let peer = SmtpPeer::start("starttls", &s.ca.self_signed("self", &["mx.b.test"]));
    let tern = s.tern(&peer);
    send(&tern, "testing");
    delivered(&peer, 1);
    let log = tern.log();
    assert!(
        log.contains("UnknownIssuer") && log.contains("delivering anyway"),
        "{log}"
    );
}

#[test]
fn a_broken_update_keeps_the_cached_policy_and_no_policy_means_opportunistic() {
    let s = Setup::new(policy("enforce", "mx.b.test"));
    let peer = SmtpPeer::start("starttls", &s.mx_cert());
    let tern = s.tern(&peer);
    send(&tern, "first");
    delivered(&peer, 1);
    // A new id, but the policy host now serves HTML: the cached enforce
    // policy (mx.b.test only) stays, so the new MX is not used.
    s.https
        .set_routes(&json!({ POLICY_URL: {"type": "text/html", "body": "<html>oops</html>"} }));
    s.dns.set_zone(&zone("mx2.b.test", "2"));
    send(&tern, "second");
    let show = deferred_with(&tern, "not listed in the MTA-STS policy");
    assert!(show.contains("MTA-STS enforce (policy 1)"), "{show}");
    assert!(tern.log().contains("not text/plain"), "{}", tern.log());
    assert_eq!(peer.messages().len(), 1);
}

#[test]
fn a_malformed_policy_without_a_cached_one_means_no_policy() {
    let s = Setup::new(
        json!({ POLICY_URL: {"type": "text/plain", "body": "version: STSv1\r\nmode: strict\r\n"} }),
    );
    let peer = SmtpPeer::start("starttls", &s.ca.self_signed("self", &["mx.b.test"]));
    let tern = s.tern(&peer);
    send(&tern, "no policy");
    delivered(&peer, 1);
    assert!(tern.log().contains("malformed policy"), "{}", tern.log());
}

fn send_requiretls(tern: &Tern, rcpt: &str, subject: &str) {
    harness::tls::send(tern, rcpt, &format!("Subject: {subject}\r\n"), true);
}

/// The bounces in Lisa's mailbox, as (status, diagnostic) pairs.
fn bounces(tern: &Tern, want: usize) -> Vec<(String, String)> {
    let out = python(
        &format!(
            r#"
import poplib, ssl, time, email, json
from email import policy
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
deadline = time.time() + 60
while True:
    p = poplib.POP3_SSL("127.0.0.2", {port}, context=CTX); p.user("lisa@a.test"); p.pass_("pw")
    n = p.stat()[0]
    if n >= {want} or time.time() > deadline:
        msgs = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, n + 1)]
        p.quit()
        break
    p.quit(); time.sleep(0.1)
out = []
for raw in msgs:
    m = email.message_from_bytes(raw, policy=policy.default)
    status = list(m.iter_parts())[1]
    fields = {{}}
    for block in status.get_payload():
        for k, v in block.items():
            fields[k.lower()] = str(v)
    out.append([fields.get("status", ""), fields.get("diagnostic-code", "")])
print(json.dumps(out))
"#,
            port = tern.port("pop3s")
        ),
        &[],
    );
    serde_json::from_str(out.trim()).expect("bounce list")
}

#[test]
fn requiretls_is_delivered_over_verified_tls_and_passed_on() {
    let s = Setup::new(policy("enforce", "mx.b.test"));
    let peer = SmtpPeer::start("starttls", &s.mx_cert());
    let tern = s.tern(&peer);
    send_requiretls(&tern, "bob@b.test", "sealed");
    harness::tls::delivered_under_requiretls(&peer);
}

#[test]
fn requiretls_is_bounced_with_5_7_30_when_only_unverified_tls_is_on_offer() {
    // b.test's policy is only "testing" and its MX shows a self-signed
    // certificate: good enough for ordinary mail, not for REQUIRETLS.
    let s = Setup::new(policy("testing", "mx.b.test"));
    let peer = SmtpPeer::start("starttls", &s.ca.self_signed("self", &["mx.b.test"]));
    let tern = s.tern(&peer);
    tern.add_user("lisa@a.test", "pw");
    send_requiretls(&tern, "bob@b.test", "sealed");
    let got = bounces(&tern, 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "5.7.30", "{got:?}");
    assert!(got[0].1.contains("UnknownIssuer"), "{got:?}");
    assert!(
        !peer.commands().contains("MAIL FROM"),
        "{}",
        peer.commands()
    );
    assert!(peer.messages().is_empty());
    // Without any policy to verify the MX by, the same.
    send_requiretls(&tern, "bob@c.test", "sealed again");
    let got = bounces(&tern, 2);
    assert!(
        got.iter()
            .any(|(status, why)| status == "5.7.30" && why.contains("no MTA-STS policy")),
        "{got:?}"
    );
}

#[test]
fn tls_required_no_waives_the_policy() {
    // Enforced, and the only MX is not listed: deferred without the header
    // (see enforce_never_uses_an_mx_the_policy_does_not_list), delivered
    // with it (RFC 8689 section 4.3).
    let s = Setup::new(policy("enforce", "*.elsewhere.test"));
    let peer = SmtpPeer::start("starttls", &s.mx_cert());
    let tern = s.tern(&peer);
    send(&tern, "anyway\r\nTLS-Required: No");
    delivered(&peer, 1);
    assert!(tern.log().contains("TLS-Required: No"), "{}", tern.log());
}

#[test]
fn a_requiretls_message_waiting_for_its_mx_says_so_in_queue_show() {
    let s = Setup::new(policy("enforce", "mx.b.test"));
    let peer = SmtpPeer::start("starttls", &s.mx_cert());
    let tern = s.tern(&peer);
    drop(peer); // the MX is down: a deferral, not a REQUIRETLS bounce
    send_requiretls(&tern, "bob@b.test", "later");
    let show = deferred_with(&tern, "refused");
    assert!(show.contains("requiretls: yes"), "{show}");
    assert!(show.contains("tls policy: MTA-STS enforce"), "{show}");
}

#[test]
fn a_policy_past_half_its_max_age_is_refreshed_in_the_background() {
    let short = json!({ POLICY_URL: {
        "type": "text/plain",
        "body": "version: STSv1\r\nmode: enforce\r\nmx: mx.b.test\r\nmax_age: 20\r\n",
    }});
    let s = Setup::new(short);
    let peer = SmtpPeer::start("starttls", &s.mx_cert());
    let tern = s.tern(&peer);
    send(&tern, "first");
    delivered(&peer, 1);
    let fetches = || {
        s.https
            .requests()
            .lines()
            .filter(|l| *l == POLICY_URL)
            .count()
    };
    assert_eq!(fetches(), 1);
    // Past half of max_age (10 s) but well before it expires (20 s), the
    // next delivery uses the cached policy and fetches it again behind it.
    // The cache keeps whole seconds, so the wait leaves a second's margin
    // on the near side and several on the far side for a slow machine.
    let fetched_at = std::time::Instant::now();
    wait_for("half of max_age to pass", Duration::from_secs(30), || {
        (fetched_at.elapsed() > Duration::from_millis(12_000)).then_some(())
    });
    send(&tern, "second");
    delivered(&peer, 2);
    wait_for("the background refresh", Duration::from_secs(30), || {
        (fetches() == 2).then_some(())
    });
}
