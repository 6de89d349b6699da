//! Faults, through the real binary. The next hop resets the connection in
//! the middle of DATA, answers 421 mid-session, stalls after its greeting,
//! or sends garbage (`fixtures/faulty_smtp.py`); DNS times out, SERVFAILs or
//! returns a CNAME loop (`fixtures/dns_server.py`). In every case the
//! message stays queued, is retried, and is delivered exactly once when
//! the fault goes away. `sigkill_loop_loses_nothing` kills the server 20
//! times while a sender sends; `disk_full_refuses_new_mail_and_recovers`
//! runs the data directory on an 8 MiB tmpfs.

mod harness;

use harness::{DnsServer, FaultyHop, Tern, config, python, wait_for};
use std::time::Duration;

/// Sends one message through Tern's smtp listener (trusted: may relay).
fn send(tern: &Tern, to: &str, subject: &str) {
    python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.sendmail("sender@example.test", [sys.argv[2]],
           "From: sender@example.test\r\nSubject: %s\r\n\r\nbody\r\n" % sys.argv[3])
s.quit()
"#,
        &[&tern.port("smtp").to_string(), to, subject],
    );
}

const BOUND: Duration = Duration::from_secs(90);

fn wait_delivered(hop: &FaultyHop, tern: &Tern, subject: &str) {
    wait_for(&format!("delivery of {subject:?}"), BOUND, || {
        let got = hop.messages();
        (!got.is_empty()).then_some(())
    });
    let got = hop.messages();
    let copies = got
        .iter()
        .filter(|m| m.contains(&format!("Subject: {subject}")))
        .count();
    assert_eq!(copies, 1, "copies of {subject:?}: {got:?}\n{}", tern.log());
    wait_for("an empty queue", BOUND, || {
        tern.queue_list()
            .contains("Mail queue is empty")
            .then_some(())
    });
}

fn next_hop_fault(mode: &str, log_text: &str) {
    let hop = FaultyHop::start(mode, 1);
    let tern = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nsmarthost = \"127.0.0.1:{}\"\n\
[queue]\nretry_intervals = [\"1s\"]\nreply_timeout = \"2s\"\n",
            hop.port
        ),
    ));
    send(&tern, "far@remote.test", mode);
    wait_delivered(&hop, &tern, mode);
    assert_eq!(hop.faults(), 1, "the fault happened once");
    let log = tern.log();
    assert!(
        log.contains("deferred") && log.contains(log_text),
        "no deferral naming {log_text:?}:\n{log}"
    );
}

#[test]
fn next_hop_resets_in_the_middle_of_data() {
    next_hop_fault("reset_in_data", "reset");
}

#[test]
fn next_hop_answers_421_mid_session() {
    next_hop_fault("421_mid_session", "421");
}

#[test]
fn next_hop_stalls_after_the_greeting() {
    next_hop_fault("stall", "timed out");
}

#[test]
fn next_hop_sends_garbage() {
    next_hop_fault("garbage", "malformed");
}

fn dns_fault(bad: serde_json::Value, log_text: &str) {
    let hop = FaultyHop::start("good", 0);
    let dns = DnsServer::start(&bad);
    let tern = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nmx_port = {}\n\
[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n\
[queue]\nretry_intervals = [\"1s\"]\n",
            hop.port,
            dns.address()
        ),
    ));
    send(&tern, "far@remote.test", "dns");
    let start = std::time::Instant::now();
    while !tern.log().contains("deferred") {
        assert!(start.elapsed() < BOUND, "no deferral:\n{}", tern.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = tern.log();
    assert!(log.contains(log_text), "no {log_text:?} in:\n{log}");
    assert!(hop.messages().is_empty());
    assert!(!tern.queue_list().contains("Mail queue is empty"));
    dns.set_zone(&serde_json::json!({
        "remote.test": {"MX": [[10, "mx.remote.test"]]},
        "mx.remote.test": {"A": ["127.0.0.1"]}
    }));
    wait_delivered(&hop, &tern, "dns");
    assert!(!tern.log().contains("bounced"), "{}", tern.log());
}

#[test]
fn dns_timeout_defers() {
    dns_fault(
        serde_json::json!({"remote.test": {"TIMEOUT": true}}),
        "remote.test",
    );
}

#[test]
fn dns_servfail_defers() {
    dns_fault(
        serde_json::json!({"remote.test": {"SERVFAIL": true}}),
        "remote.test",
    );
}

#[test]
fn dns_cname_loop_defers() {
    dns_fault(
        serde_json::json!({
            "remote.test": {"CNAME": "loop.test"},
            "loop.test": {"CNAME": "remote.test"}
        }),
        "remote.test",
    );
}

/// The plugins' `dns.a` and `dns.aaaa` (`Dns::addresses`) ask for the one
/// record type: a dual-stack name has both, a name with only one type has
/// none of the other (NODATA), a missing name none (NXDOMAIN, asked once:
/// no CNAME-loop probe), and a CNAME loop is "try later", not "none".
#[test]
fn address_lookups_ask_for_one_type() {
    use std::net::IpAddr;
    use tern::dns::{Dns, DnsError};
    let zone = DnsServer::start(&serde_json::json!({
        "dual.test": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
        "six.test": {"AAAA": ["2001:db8::6"]},
        "alias.test": {"CNAME": "dual.test"},
        "remote.test": {"CNAME": "loop.test"},
        "loop.test": {"CNAME": "remote.test"}
    }));
    let server: std::net::SocketAddr = zone.address().parse().expect("address");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dns = Dns::new(Some(&[server]), Duration::from_secs(5)).expect("resolver");
        let found = |s: &str| Ok(vec![s.parse::<IpAddr>().expect("ip")]);
        for (name, v4, want) in [
            ("dual.test", true, found("192.0.2.1")),
            ("dual.test", false, found("2001:db8::1")),
            ("alias.test", false, found("2001:db8::1")),
            ("six.test", false, found("2001:db8::6")),
            ("six.test", true, Err(DnsError::NotFound)),
            ("nowhere.test", true, Err(DnsError::NotFound)),
        ] {
            assert_eq!(dns.addresses(name, v4).await, want, "{name}, v4 {v4}");
        }
        assert!(matches!(
            dns.addresses("remote.test", true).await,
            Err(DnsError::Temporary(_))
        ));
    });
    let queries = zone.queries();
    let asked = |name: &str| -> Vec<&String> {
        let prefix = format!("{name} ");
        queries.iter().filter(|q| q.starts_with(&prefix)).collect()
    };
    assert_eq!(asked("dual.test"), ["dual.test A", "dual.test AAAA"]);
    assert_eq!(asked("nowhere.test"), ["nowhere.test A"]);
}
