//! The smarthost's TLS (issue 20): Tern relays through a smarthost that
//! speaks real TLS with certificates from a CA made here (rcgen). With
//! `relay.smarthost_ca` trusting that CA, a good certificate gets the
//! credentials and the mail; an expired, wrong-name or self-signed one gets
//! neither — the peer's own log shows it never saw AUTH or MAIL — and the
//! mail stays queued with the reason in `tern queue show` and the log.
//! Also implicit TLS (RFC 8314) and check-config's refusal to send
//! credentials without verified TLS.

mod harness;
use harness::tls::{CertFiles, SmtpPeer, TestCa, delivered};
use harness::{DnsServer, Tern, config, wait_for};
use serde_json::json;
use std::time::Duration;

const SMARTHOST: &str = "smarthost.test";
const RCPT: &str = "bob@far.test";

fn dns() -> DnsServer {
    DnsServer::start(&json!({ SMARTHOST: {"A": ["127.0.0.1"]} }))
}

/// Tern on 127.0.0.2 relaying everything through the peer with credentials.
fn relay(dns: &DnsServer, ca: &TestCa, peer: &SmtpPeer, extra_relay: &str) -> Tern {
    let extra = format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nsmarthost = \"{SMARTHOST}:{}\"\n\
         smarthost_user = \"relay-user\"\nsmarthost_password = \"relay-secret\"\n\
         smarthost_ca = \"{}\"\n{extra_relay}\n\
         [dns]\nnameservers = [\"{}\"]\n[queue]\nretry_intervals = [\"1s\"]\n",
        peer.port,
        ca.ca_file().display(),
        dns.address()
    );
    Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra))
}

fn send(tern: &Tern, subject: &str) {
    harness::tls::send(tern, RCPT, &format!("Subject: {subject}\r\n"), false);
}

#[test]
fn a_trusted_smarthost_gets_the_credentials_over_verified_starttls() {
    let dns = dns();
    let ca = TestCa::new();
    let peer = SmtpPeer::start("starttls", &ca.issue("good", &[SMARTHOST]));
    let tern = relay(&dns, &ca, &peer, "");
    send(&tern, "good");
    wait_for(
        "the smarthost to take the message",
        Duration::from_secs(60),
        || (peer.messages().len() == 1).then_some(()),
    );
    let commands = peer.commands();
    let tls_at = commands.find("-- TLS").expect("STARTTLS happened");
    let auth_at = commands.find("AUTH PLAIN").expect("AUTH was sent");
    assert!(tls_at < auth_at, "AUTH only after TLS: {commands}");
    assert!(peer.messages()[0].contains("Subject: good"));
    wait_for("the queue to empty", Duration::from_secs(30), || {
        tern.queue_list().contains("empty").then_some(())
    });
}

/// A smarthost presenting `cert` gets nothing: no AUTH, no MAIL, and the
/// mail waits in the queue saying why.
fn refused(cert: impl Fn(&TestCa) -> CertFiles, reason: &str) {
    let dns = dns();
    let ca = TestCa::new();
    let peer = SmtpPeer::start("starttls", &cert(&ca));
    let tern = relay(&dns, &ca, &peer, "");
    send(&tern, "refused");
    let show = harness::tls::deferred_with(&tern, RCPT, reason);
    assert!(
        show.contains("state=Pending") && show.contains("certificate not trusted"),
        "{show}"
    );
    assert!(show.contains("tls policy: smarthost starttls"), "{show}");
    assert!(
        tern.log().contains(reason),
        "the log says why: {}",
        tern.log()
    );
    let commands = peer.commands();
    assert!(commands.contains("-- TLS"), "TLS was tried: {commands}");
    assert!(!commands.contains("AUTH"), "credentials leaked: {commands}");
    assert!(!commands.contains("relay-secret"));
    assert!(!commands.contains("MAIL FROM"), "{commands}");
    assert!(peer.messages().is_empty());
}

#[test]
fn an_expired_certificate_defers_and_sees_no_auth() {
    refused(
        |ca| ca.issue_expired("expired", &[SMARTHOST]),
        "certificate expired",
    );
}

#[test]
fn a_certificate_for_another_name_defers_and_sees_no_auth() {
    refused(
        |ca| ca.issue("wrong", &["other.test"]),
        "not valid for name \"smarthost.test\"",
    );
}

#[test]
fn a_self_signed_certificate_defers_and_sees_no_auth() {
    refused(|ca| ca.self_signed("self", &[SMARTHOST]), "UnknownIssuer");
}

#[test]
fn a_smarthost_without_starttls_never_gets_the_mail_in_clear() {
    let dns = dns();
    let ca = TestCa::new();
    let cert = ca.issue("good", &[SMARTHOST]);
    let real = SmtpPeer::start("starttls", &cert);
    let mitm = SmtpPeer::stripping(&real, &cert);
    let tern = relay(&dns, &ca, &mitm, "");
    send(&tern, "stripped");
    let show = harness::tls::deferred_with(&tern, RCPT, "does not offer STARTTLS");
    assert!(show.contains("TLS required (smarthost starttls)"), "{show}");
    let seen = mitm.commands();
    assert!(seen.contains("EHLO"), "{seen}");
    assert!(
        !seen.contains("AUTH") && !seen.contains("MAIL FROM"),
        "{seen}"
    );
    assert!(real.messages().is_empty());
}

#[test]
fn implicit_tls_delivers_to_a_port_465_style_smarthost() {
    let dns = dns();
    let ca = TestCa::new();
    let peer = SmtpPeer::start("implicit", &ca.issue("good", &[SMARTHOST]));
    let tern = relay(&dns, &ca, &peer, "smarthost_tls = \"implicit\"");
    send(&tern, "implicit");
    wait_for(
        "the smarthost to take the message",
        Duration::from_secs(60),
        || (peer.messages().len() == 1).then_some(()),
    );
    let commands = peer.commands();
    assert!(
        commands.starts_with("-- TLS\n"),
        "TLS before any command: {commands}"
    );
    assert!(!commands.contains("STARTTLS"), "{commands}");
    assert!(commands.contains("AUTH PLAIN"), "{commands}");
}

#[test]
fn implicit_tls_with_an_untrusted_certificate_defers() {
    let dns = dns();
    let ca = TestCa::new();
    let peer = SmtpPeer::start("implicit", &ca.self_signed("self", &[SMARTHOST]));
    let tern = relay(&dns, &ca, &peer, "smarthost_tls = \"implicit\"");
    send(&tern, "implicit refused");
    let show = harness::tls::deferred_with(&tern, RCPT, "UnknownIssuer");
    assert!(show.contains("tls policy: smarthost implicit"), "{show}");
    let commands = peer.commands();
    assert!(
        !commands.contains("EHLO") && !commands.contains("AUTH"),
        "{commands}"
    );
}

#[test]
fn check_config_refuses_credentials_without_verified_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    // (config name, [relay] lines beyond the smarthost, accepted?)
    let cases = [
        ("opportunistic", "smarthost_tls = \"opportunistic\"", false),
        ("none", "smarthost_tls = \"none\"", false),
        ("starttls", "smarthost_tls = \"starttls\"", true),
        ("implicit", "smarthost_tls = \"implicit\"", true),
        // A CA file that does not load is refused too.
        ("bad-ca", "smarthost_ca = \"missing.pem\"", false),
    ];
    for (name, line, ok) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[relay]\nsmarthost = \"{SMARTHOST}:587\"\n{line}\n\
                 smarthost_user = \"u\"\nsmarthost_password = \"p\"\n"
            ),
        )
        .expect("config");
        let out = std::process::Command::new(harness::tern_bin())
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("check-config");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{name}: {stderr}");
        let named = if name == "bad-ca" {
            "missing.pem"
        } else {
            "relay.smarthost_tls"
        };
        assert!(ok || stderr.contains(named), "{name}: {stderr}");
    }
}

fn send_requiretls(tern: &Tern) {
    harness::tls::send(tern, RCPT, "Subject: sealed\r\n", true);
}

#[test]
fn requiretls_leaves_through_a_verified_smarthost() {
    let dns = dns();
    let ca = TestCa::new();
    let peer = SmtpPeer::start("starttls", &ca.issue("good", &[SMARTHOST]));
    let tern = relay(&dns, &ca, &peer, "");
    send_requiretls(&tern);
    delivered(&peer, 1);
    let commands = peer.commands();
    assert!(
        commands
            .lines()
            .any(|l| l.starts_with("MAIL FROM") && l.ends_with(" REQUIRETLS")),
        "{commands}"
    );
}

#[test]
fn requiretls_through_an_unverified_smarthost_is_bounced() {
    let dns = dns();
    let ca = TestCa::new();
    let peer = SmtpPeer::start("starttls", &ca.issue("good", &[SMARTHOST]));
    // No credentials, no smarthost_tls: "opportunistic", so unverified.
    let extra = format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nsmarthost = \"{SMARTHOST}:{}\"\n\
         [dns]\nnameservers = [\"{}\"]\n",
        peer.port,
        dns.address()
    );
    let tern = Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra));
    send_requiretls(&tern);
    let line = wait_for("the bounce in the log", Duration::from_secs(60), || {
        tern.log()
            .lines()
            .find(|l| l.contains("status=\"bounced\"") && l.contains("bob@far.test"))
            .map(str::to_string)
    });
    assert!(line.contains("REQUIRETLS"), "{line}");
    assert!(
        !peer.commands().contains("MAIL FROM"),
        "{}",
        peer.commands()
    );
}

#[test]
fn serve_refuses_to_start_when_the_smarthost_ca_does_not_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tern.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"data\"\n[[listen]]\nprotocol = \"smtp\"\naddress = \"127.0.0.2:0\"\n\
             [relay]\nsmarthost = \"{SMARTHOST}:587\"\nsmarthost_ca = \"missing.pem\"\n\
             smarthost_user = \"u\"\nsmarthost_password = \"p\"\n"
        ),
    )
    .expect("config");
    let out = std::process::Command::new(harness::tern_bin())
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("serve");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.pem"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
