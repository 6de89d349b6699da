//! Policy plugins against the real binary, with Python's smtplib as the
//! client: a policy refusing `nobody@` (its 550 reaches the client), a
//! greylisting plugin whose key-value store survives sessions and a
//! restart, and a DNSBL/MX plugin asking the test DNS server.

mod harness;
use harness::{DnsServer, Tern, config, python};
use serde_json::json;

const PY: &str = r#"
import smtplib, sys
def rcpt(port, to, sender="lisa@outside.test"):
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo("client.test")
    code, msg = s.mail(sender)
    if code != 250:
        s.quit()
        return code, msg.decode()
    code, msg = s.rcpt(to)
    s.quit()
    return code, msg.decode()
"#;

fn plugin(name: &str, path: &str, extra: &str) -> String {
    format!("[[plugin]]\nname = \"{name}\"\npath = \"{path}\"\ntimeout = \"2s\"\n{extra}\n")
}

fn run(t: &Tern, body: &str) -> String {
    python(&format!("{PY}\nSMTP={}\n{body}", t.port("smtp")), &[])
}

#[test]
fn policy_rejects_nobody_with_its_own_reply() {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &plugin("no-nobody", test_plugins::NO_NOBODY, ""),
    ));
    t.add_user("nobody@example.test", "pw");
    t.add_user("bob@example.test", "pw");
    let out = run(
        &t,
        r#"
code, msg = rcpt(SMTP, "nobody@example.test")
assert code == 550, (code, msg)
assert msg.startswith("5.1.1 ") and "nobody lives here no more" in msg, msg
code, msg = rcpt(SMTP, "bob@example.test")
assert code == 250, (code, msg)
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    assert!(
        t.log().contains("refusing nobody@example.test"),
        "the plugin's log line reaches the server log"
    );
}

#[test]
fn greylisting_remembers_across_sessions_and_a_restart() {
    let mut t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &plugin("greylist", test_plugins::GREYLIST, ""),
    ));
    t.add_user("bob@example.test", "pw");
    t.add_user("carol@example.test", "pw");
    let out = run(
        &t,
        r#"
code, msg = rcpt(SMTP, "bob@example.test")
assert code == 451 and "refusal 1" in msg, (code, msg)
code, msg = rcpt(SMTP, "bob@example.test")
assert code == 250, (code, msg)
code, msg = rcpt(SMTP, "carol@example.test")
assert code == 451 and "refusal 2" in msg, (code, msg)
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    t.stop();
    t.spawn();
    let out = run(
        &t,
        r#"
code, msg = rcpt(SMTP, "bob@example.test")
assert code == 250, ("forgotten after restart", code, msg)
code, msg = rcpt(SMTP, "carol@example.test", sender="other@outside.test")
assert code == 451 and "refusal 3" in msg, ("counter not kept", code, msg)
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    // The restart took the compiled plugin from the cache in data_dir.
    let log = t.log();
    assert_eq!(log.matches("plugin compiled").count(), 1, "{log}");
    assert_eq!(log.matches("plugin loaded").count(), 2, "{log}");
    let cached = std::fs::read_dir(t.data_dir().join("plugin-cache"))
        .expect("plugin-cache")
        .count();
    assert_eq!(cached, 1);
}

#[test]
fn dns_plugin_uses_the_servers_resolver() {
    let dns = DnsServer::start(&json!({
        "1.0.0.127.bl.test": {"A": ["127.0.0.2"], "TXT": ["spam source, see bl.test"]},
        "outside.test": {"MX": [[10, "mx.outside.test"]]},
        "nomx.test": {"A": ["192.0.2.1"]},
    }));
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\n{}",
        dns.address(),
        plugin(
            "dnsbl",
            test_plugins::DNSBL,
            "config = { zone = \"bl.test\", require_mx = \"yes\" }"
        )
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let out = run(
        &t,
        r#"
try:
    smtplib.SMTP("127.0.0.1", SMTP)
    raise SystemExit("a listed client was let in")
except smtplib.SMTPConnectError as e:
    assert e.smtp_code == 554, e
    assert b"127.0.0.1 is listed in bl.test: spam source, see bl.test" in e.smtp_error, e
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");

    // A zone that does not list the client: it gets in, and the MX check at
    // MAIL FROM asks the same resolver.
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\n{}",
        dns.address(),
        plugin(
            "dnsbl",
            test_plugins::DNSBL,
            "config = { zone = \"clean.test\", require_mx = \"yes\" }"
        )
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let out = run(
        &t,
        r#"
code, msg = rcpt(SMTP, "bob@example.test")
assert code == 250, (code, msg)
code, msg = rcpt(SMTP, "bob@example.test", sender="lisa@nomx.test")
assert code == 550 and "nomx.test publishes no MX" in msg, (code, msg)
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}
