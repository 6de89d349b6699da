//! A router plugin demanding verified TLS (issue 20): the test router
//! (`tests/plugins/tls_router`) calls `routing.require-verified-tls` for
//! the domains its config names, and Tern relays to real TLS next hops
//! (`fixtures/tls_smtp.py`) with certificates from a CA made here. A
//! demanded destination with a certificate the CA vouches for gets the
//! mail over verified STARTTLS (to hosts the router chose, given as an
//! address with the certificate's name pinned, and to the MX hosts the
//! built-in route finds); one with a self-signed certificate never sees
//! MAIL FROM — the recipient stays queued with the demand and the reason
//! in `tern queue show`, and bounces with that reason when it expires; a
//! destination the router does not demand it for is delivered over
//! opportunistic TLS as before.

mod harness;
use harness::tls::{SmtpPeer, TestCa, deferred_with, delivered, send};
use harness::{DnsServer, Tern, config, wait_for};
use serde_json::json;
use std::time::Duration;

/// Three next hops: `good` (CA-issued for mx.good.test), `bad`
/// (self-signed for mx.bad.test), `plain` (self-signed for mx.plain.test).
struct Setup {
    ca: TestCa,
    dns: DnsServer,
    good: SmtpPeer,
    bad: SmtpPeer,
    plain: SmtpPeer,
}

impl Setup {
    fn new() -> Setup {
        let ca = TestCa::new();
        let good = SmtpPeer::start("starttls", &ca.issue("good", &["mx.good.test"]));
        let bad = SmtpPeer::start("starttls", &ca.self_signed("bad", &["mx.bad.test"]));
        let plain = SmtpPeer::start("starttls", &ca.self_signed("plain", &["mx.plain.test"]));
        let dns = DnsServer::start(&json!({
            "mx.good.test": {"A": ["127.0.0.1"]},
            "mx.bad.test": {"A": ["127.0.0.1"]},
            "mx.plain.test": {"A": ["127.0.0.1"]},
            "viamx.test": {"MX": [[10, "mx.good.test"]]},
        }));
        Setup {
            ca,
            dns,
            good,
            bad,
            plain,
        }
    }

    /// Tern on 127.0.0.2 with the router; MX delivery on the good peer's port.
    fn tern(&self, queue: &str) -> Tern {
        let router = format!(
            "[[plugin]]\nname = \"tls-router\"\npath = \"{}\"\ntimeout = \"2s\"\n\
             [plugin.config]\n\
             \"hosts.good.test\" = \"127.0.0.1:{}\"\n\"verified.good.test\" = \"mx.good.test\"\n\
             \"hosts.bad.test\" = \"mx.bad.test:{}\"\n\"verified.bad.test\" = \"yes\"\n\
             \"hosts.plain.test\" = \"mx.plain.test:{}\"\n\
             \"verified.viamx.test\" = \"yes\"\n",
            test_plugins::TLS_ROUTER,
            self.good.port,
            self.bad.port,
            self.plain.port,
        );
        let extra = format!(
            "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nmx_port = {}\ntls_ca = \"{}\"\n\
             [dns]\nnameservers = [\"{}\"]\n[queue]\n{queue}\n{router}",
            self.good.port,
            self.ca.ca_file().display(),
            self.dns.address()
        );
        Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra))
    }
}

/// STARTTLS came before the transaction.
fn over_tls(peer: &SmtpPeer) {
    let commands = peer.commands();
    let tls = commands.find("-- TLS").expect("STARTTLS happened");
    let mail = commands.find("MAIL FROM").expect("MAIL FROM");
    assert!(tls < mail, "{commands}");
}

#[test]
fn demanded_destinations_get_mail_only_over_verified_tls() {
    let s = Setup::new();
    let tern = s.tern("retry_intervals = [\"1s\"]");

    // Demanded, the router's host given as an address, the name pinned.
    send(&tern, "ann@good.test", "Subject: pinned\r\n", false);
    delivered(&s.good, 1);
    over_tls(&s.good);
    assert!(s.good.messages()[0].contains("Subject: pinned"));

    // Demanded, routed by MX (the router answers `default`).
    send(&tern, "max@viamx.test", "Subject: by mx\r\n", false);
    delivered(&s.good, 2);
    assert!(s.good.messages()[1].contains("Subject: by mx"));

    // Not demanded: opportunistic TLS takes a self-signed certificate, as before.
    send(&tern, "pat@plain.test", "Subject: plain\r\n", false);
    delivered(&s.plain, 1);
    over_tls(&s.plain);

    wait_for("the queue to empty", Duration::from_secs(60), || {
        tern.queue_list().contains("empty").then_some(())
    });

    // Demanded, a self-signed certificate: deferred, never sent.
    send(&tern, "bob@bad.test", "Subject: bad\r\n", false);
    let show = deferred_with(&tern, "bob@bad.test", "UnknownIssuer");
    assert!(show.contains("state=Pending"), "{show}");
    assert!(
        show.contains("tls demand: verified TLS required by router plugin tls-router"),
        "{show}"
    );
    assert!(
        show.contains("tls policy: verified TLS required by router plugin tls-router"),
        "{show}"
    );
    let commands = s.bad.commands();
    assert!(commands.contains("-- TLS"), "TLS was tried: {commands}");
    assert!(!commands.contains("MAIL FROM"), "{commands}");
    assert!(s.bad.messages().is_empty());
    // The deferral is repeated, never turned into plain or unverified delivery.
    wait_for("a second attempt", Duration::from_secs(60), || {
        let l = tern.queue_list();
        (l.contains("bob@bad.test (pending, 2 attempt(s)") && l.contains("UnknownIssuer"))
            .then_some(())
    });
    assert!(!s.bad.commands().contains("MAIL FROM"));

    let log = tern.log();
    assert!(log.contains("plugin route"), "{log}");
    assert_eq!(s.good.messages().len(), 2);
}

#[test]
fn a_demanded_destination_that_never_verifies_bounces_with_the_reason() {
    let s = Setup::new();
    let mut tern = s.tern("retry_intervals = [\"1s\"]\nmax_lifetime = \"3s\"");
    tern.add_user("lisa@a.test", "pw");
    send(&tern, "bob@bad.test", "Subject: doomed\r\n", false);
    wait_for("the queue to empty", Duration::from_secs(60), || {
        tern.queue_list().contains("empty").then_some(())
    });
    assert!(!s.bad.commands().contains("MAIL FROM"));
    let inbox = tern.mailbox("lisa@a.test");
    let bounce = inbox
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("bob@bad.test"))
        .expect("a bounce for bob@bad.test");
    assert!(
        bounce.contains("verified TLS required by router plugin tls-router"),
        "{bounce}"
    );
}

#[test]
fn a_router_built_before_the_routing_interface_still_routes() {
    let s = Setup::new();
    let old = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/plugins/smarthost_router-before-routing.wasm"
    );
    let extra = format!(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n[dns]\nnameservers = [\"{}\"]\n\
         [queue]\nretry_intervals = [\"1s\"]\n\
         [[plugin]]\nname = \"old-router\"\npath = \"{old}\"\ntimeout = \"2s\"\n\
         config = {{ domain = \"old.test\", smarthost = \"mx.plain.test:{}\" }}\n",
        s.dns.address(),
        s.plain.port
    );
    let tern = Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra));
    send(&tern, "olga@old.test", "Subject: old router\r\n", false);
    delivered(&s.plain, 1);
    assert!(s.plain.messages()[0].contains("Subject: old router"));
}
