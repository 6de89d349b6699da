//! Tern as a relay: two (or more) servers on different loopback addresses
//! and a real DNS server (dnslib) for their domains. Lisa submits to A for
//! bob@b.test; A looks up b.test's MX and relays to B; Bob downloads it over
//! POP3. Also: the destination down (A retries until B is back; the same
//! with A killed in between), an unknown user (a DSN back to Lisa, its
//! fields as Postfix writes them), null MX, implicit MX, MX preference
//! fallback, expiry and delay warnings.

mod harness;
use harness::{DnsServer, Tern, config, python, wait_for};
use serde_json::json;
use std::time::Duration;

const PY: &str = r#"
import poplib, smtplib, ssl, sys, time, email
from email import policy
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
def submit(host, port, user, to, msg):
    s = smtplib.SMTP(host, port); s.starttls(context=CTX); s.login(user, "pw")
    s.sendmail(user, to, msg); s.quit()
def fetch_all(host, port, user, want, bound=60):
    deadline = time.time() + bound
    while True:
        p = poplib.POP3_SSL(host, port, context=CTX); p.user(user); p.pass_("pw")
        n = p.stat()[0]
        if n >= want or time.time() > deadline:
            msgs = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, n + 1)]
            p.quit()
            return msgs
        p.quit(); time.sleep(0.1)
def report(msg):
    m = email.message_from_bytes(msg, policy=policy.default)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "delivery-status"
    assert m["From"].addresses[0].username == "MAILER-DAEMON", m["From"]
    parts = list(m.iter_parts())
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    fields = {}
    for block in status.get_payload():
        for k, v in block.items():
            fields.setdefault(k.lower(), []).append(str(v))
    return m, fields
"#;

fn zone(mx_b: &str) -> serde_json::Value {
    json!({
        "a.test": {"MX": [[10, "mx.a.test"]]},
        "mx.a.test": {"A": ["127.0.0.2"]},
        "b.test": {"MX": [[10, mx_b]]},
        "mx.b.test": {"A": ["127.0.0.3"]},
        "implicit.test": {"A": ["127.0.0.3"]},
        "pref.test": {"MX": [[10, "mx.b.test"], [5, "dead.pref.test"]]},
        "dead.pref.test": {"A": ["127.0.0.9"]},
        "nullmx.test": {"MX": [[0, "."]]},
        "down.test": {"MX": [[10, "dead.pref.test"]]},
    })
}

fn server_b() -> Tern {
    let text = config(
        "mx.b.test",
        "b.test",
        "[aliases]\n\"bob@implicit.test\" = [\"bob@b.test\"]\n\"bob@pref.test\" = [\"bob@b.test\"]\n",
    )
    .replace(
        "local_domains = [\"b.test\"]",
        "local_domains = [\"b.test\", \"implicit.test\", \"pref.test\"]",
    );
    let b = Tern::start_on("127.0.0.3", &text);
    b.add_user("bob@b.test", "pw");
    b
}

fn server_a(dns: &DnsServer, mx_port: u16, queue: &str) -> Tern {
    let extra = format!(
        "[relay]\nmx_port = {mx_port}\n[dns]\nnameservers = [\"{}\"]\n[queue]\nretry_intervals = [\"1s\"]\n{queue}\n",
        dns.address()
    );
    let a = Tern::start_on("127.0.0.2", &config("mx.a.test", "a.test", &extra));
    a.add_user("lisa@a.test", "pw");
    a
}

fn py(a: &Tern, b: Option<&Tern>, body: &str) -> String {
    let mut head = format!(
        "{PY}\nA_SUB={}\nA_POPS={}\n",
        a.port("submission"),
        a.port("pop3s")
    );
    if let Some(b) = b {
        head.push_str(&format!("B_POPS={}\n", b.port("pop3s")));
    }
    python(&(head + body), &[])
}

#[test]
fn lisa_submits_to_a_which_relays_to_b_by_mx_and_bob_downloads() {
    let dns = DnsServer::start(&zone("mx.b.test"));
    let b = server_b();
    let a = server_a(&dns, b.port("smtp"), "");
    let out = py(
        &a,
        Some(&b),
        r#"
submit("127.0.0.2", A_SUB, "lisa@a.test", ["bob@b.test"], b"From: lisa@a.test\r\nTo: bob@b.test\r\nSubject: hop\r\n\r\nover two hops\r\n")
msgs = fetch_all("127.0.0.3", B_POPS, "bob@b.test", 1)
assert len(msgs) == 1, len(msgs)
m = msgs[0]
received = [l for l in m.split(b"\r\n") if l.startswith(b"Received:")]
assert len(received) == 2, m
assert b"by mx.b.test (Tern)" in m and b"by mx.a.test (Tern) with ESMTPSA" in m, m
assert b"over two hops" in m
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    wait_for("A's queue to empty", Duration::from_secs(30), || {
        a.queue_list().contains("empty").then_some(())
    });
}

fn deferral_then_delivery(kill_a: bool) {
    let dns = DnsServer::start(&zone("mx.b.test"));
    let mut b = server_b();
    b.pin_ports();
    let port = b.port("smtp");
    b.stop();
    let mut a = server_a(&dns, port, "");
    py(
        &a,
        None,
        r#"submit("127.0.0.2", A_SUB, "lisa@a.test", ["bob@b.test"], b"Subject: patience\r\n\r\nwait for me\r\n")"#,
    );
    let listing = wait_for("the deferral in the queue", Duration::from_secs(60), || {
        let l = a.queue_list();
        (l.contains("bob@b.test")
            && l.contains("attempt(s)")
            && !l.contains("0 attempt(s)")
            && l.to_lowercase().contains("refused"))
        .then_some(l)
    });
    assert!(listing.contains("lisa@a.test"), "{listing}");
    let id = queue_id(&listing);
    let show = a.cli(&["queue", "show", &id], "");
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains("recipient: <bob@b.test> state=Pending") && show.contains("refused"),
        "{show}"
    );
    if kill_a {
        a.restart(); // SIGKILL, then start again on the same data
        assert!(
            a.queue_list().contains("bob@b.test"),
            "queue lost across SIGKILL"
        );
    }
    b.spawn();
    let flush = a.cli(&["queue", "flush"], "");
    assert!(flush.status.success(), "{flush:?}");
    let out = py(
        &a,
        Some(&b),
        r#"
msgs = fetch_all("127.0.0.3", B_POPS, "bob@b.test", 1)
assert len(msgs) == 1 and b"wait for me" in msgs[0], msgs
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    wait_for("A's queue to empty", Duration::from_secs(60), || {
        a.queue_list().contains("empty").then_some(())
    });
    // Exactly once: nothing more arrives after the queue emptied.
    let out = py(
        &a,
        Some(&b),
        r#"print(len(fetch_all("127.0.0.3", B_POPS, "bob@b.test", 99, bound=0)))"#,
    );
    assert_eq!(out.trim(), "1");
}

/// The queue id on the first line of a `tern queue list` entry.
fn queue_id(listing: &str) -> String {
    listing
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn queue_delete_removes_a_deferred_message() {
    let dns = DnsServer::start(&zone("mx.b.test"));
    let a = server_a(&dns, 2, "");
    py(
        &a,
        None,
        r#"submit("127.0.0.2", A_SUB, "lisa@a.test", ["x@down.test"], b"Subject: never\r\n\r\nmind\r\n")"#,
    );
    let listing = wait_for("the deferral", Duration::from_secs(60), || {
        let l = a.queue_list();
        l.contains("x@down.test").then_some(l)
    });
    let id = queue_id(&listing);
    let del = a.cli(&["queue", "delete", &id], "");
    assert!(del.status.success(), "{del:?}");
    assert!(a.queue_list().contains("empty"));
    let show = a.cli(&["queue", "show", &id], "");
    assert!(
        !show.status.success()
            && String::from_utf8_lossy(&show.stderr).contains("no such queue entry")
    );
}

#[test]
fn destination_down_is_retried_and_delivered_once() {
    deferral_then_delivery(false);
}

#[test]
fn destination_down_and_relay_killed_in_between() {
    deferral_then_delivery(true);
}

#[test]
fn unknown_user_null_mx_implicit_mx_and_preference_fallback() {
    let dns = DnsServer::start(&zone("mx.b.test"));
    let b = server_b();
    let a = server_a(&dns, b.port("smtp"), "");
    let out = py(
        &a,
        Some(&b),
        r#"
submit("127.0.0.2", A_SUB, "lisa@a.test", ["nobody@b.test"], b"Subject: lost\r\n\r\nto nobody\r\n")
submit("127.0.0.2", A_SUB, "lisa@a.test", ["void@nullmx.test"], b"Subject: void\r\n\r\nnull mx\r\n")
submit("127.0.0.2", A_SUB, "lisa@a.test", ["bob@implicit.test"], b"Subject: implicit\r\n\r\nvia A record\r\n")
submit("127.0.0.2", A_SUB, "lisa@a.test", ["bob@pref.test"], b"Subject: pref\r\n\r\nvia second MX\r\n")
bob = fetch_all("127.0.0.3", B_POPS, "bob@b.test", 2)
assert len(bob) == 2, bob
assert any(b"via A record" in m for m in bob) and any(b"via second MX" in m for m in bob)
lisa = fetch_all("127.0.0.2", A_POPS, "lisa@a.test", 2)
assert len(lisa) == 2, lisa
statuses = {}
for msg in lisa:
    m, f = report(msg)
    statuses[f["final-recipient"][0].split(";")[1].strip()] = (f["status"][0], f["action"][0], f.get("diagnostic-code", [""])[0])
    parts = list(m.iter_parts())
    assert parts[2].get_content_type() == "message/rfc822", parts[2].get_content_type()
    assert m["To"].addresses[0].addr_spec == "lisa@a.test"
assert statuses["nobody@b.test"][0] == "5.1.1" and statuses["nobody@b.test"][1] == "failed", statuses
assert "550" in statuses["nobody@b.test"][2], statuses
assert statuses["void@nullmx.test"][0] == "5.1.10", statuses
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn delay_warning_then_expiry_bounce() {
    let dns = DnsServer::start(&zone("mx.b.test"));
    let a = server_a(
        &dns,
        2,
        "max_lifetime = \"4s\"\ndelay_warning_after = \"1s\"",
    );
    let out = py(
        &a,
        None,
        r#"
submit("127.0.0.2", A_SUB, "lisa@a.test", ["someone@down.test"], b"Subject: doomed\r\n\r\nnever arrives\r\n")
lisa = fetch_all("127.0.0.2", A_POPS, "lisa@a.test", 2)
assert len(lisa) == 2, lisa
kinds = {}
for msg in lisa:
    m, f = report(msg)
    kinds[f["action"][0]] = f["status"][0]
assert kinds.get("delayed", "").startswith("4."), kinds
assert kinds.get("failed") == "4.4.7", kinds
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    wait_for("A's queue to empty", Duration::from_secs(30), || {
        a.queue_list().contains("empty").then_some(())
    });
}

#[test]
fn notify_success_for_a_local_delivery() {
    let dns = DnsServer::start(&zone("mx.b.test"));
    let a = server_a(&dns, 2, "");
    a.add_user("max@a.test", "pw");
    let out = py(
        &a,
        None,
        r#"
s = smtplib.SMTP("127.0.0.2", A_SUB); s.starttls(context=CTX); s.login("lisa@a.test", "pw")
s.mail("lisa@a.test", ["RET=HDRS", "ENVID=trip42"])
assert s.rcpt("max@a.test", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;max@a.test"])[0] == 250
assert s.data(b"Subject: tell me\r\n\r\nthanks\r\n")[0] == 250
s.quit()
lisa = fetch_all("127.0.0.2", A_POPS, "lisa@a.test", 1)
assert len(lisa) == 1, lisa
m, f = report(lisa[0])
assert f["action"] == ["delivered"] and f["status"] == ["2.0.0"], f
assert f["original-envelope-id"] == ["trip42"], f
assert f["original-recipient"][0].replace(" ", "") == "rfc822;max@a.test", f
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

/// The bounce for a recipient the next hop refused, field by field as
/// Postfix writes them, for parsers that read them literally: Remote-MTA is
/// the host name (RFC 3464 2.3.5), Diagnostic-Code the reply as B gave it
/// (2.3.6), without the address and port Tern connected to.
#[test]
fn a_refused_recipient_bounces_field_by_field() {
    let dns = DnsServer::start(&zone("mx.b.test"));
    let b = server_b();
    let a = server_a(&dns, b.port("smtp"), "");
    let out = py(
        &a,
        Some(&b),
        r#"
submit("127.0.0.2", A_SUB, "lisa@a.test", ["nobody@b.test"], b"Subject: lost\r\n\r\nto nobody\r\n")
m, f = report(fetch_all("127.0.0.2", A_POPS, "lisa@a.test", 1)[0])
for k in ["reporting-mta", "final-recipient", "action", "status", "remote-mta", "diagnostic-code"]:
    print(k + ": " + " ".join(f[k][0].split()))
"#,
    );
    let field = |name: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name}: {out}"))
            .to_string()
    };
    assert_eq!(field("reporting-mta"), "dns; mx.a.test", "{out}");
    assert_eq!(field("final-recipient"), "rfc822; nobody@b.test", "{out}");
    assert_eq!(field("action"), "failed", "{out}");
    assert_eq!(field("status"), "5.1.1", "{out}");
    assert_eq!(field("remote-mta"), "dns; mx.b.test", "{out}");
    let diag = field("diagnostic-code");
    assert!(diag.starts_with("smtp; 550 5.1.1 "), "{out}");
    assert!(
        !diag.contains("said:") && !diag.contains("127.0.0.3"),
        "{out}"
    );
}
