//! The shipped `dnsbl` plugin (plugins/dnsbl) in the real server, against
//! the test DNS server: a client listed on the reject list gets 554 5.7.1
//! naming the list at connect; a client listed on a tagging list gets its
//! mail in with an `X-DNSBL` header (read back over POP3); a list that
//! answers SERVFAIL is skipped by default and answered 451 4.4.3 where
//! `on_temporary_error = "tempfail"`; an unlisted client gets no header,
//! and its pass is remembered by the server for `pass_ttl` (a listed
//! client's refusal never is).

mod harness;
use harness::{DnsServer, Tern, config, python};
use serde_json::json;

/// The `[dns]` section for `dns` and two entries of the shipped dnsbl:
/// "rbl" refusing on zen.test, and `name` with `config` (the inside of
/// its config table).
fn rbl_and(dns: &DnsServer, name: &str, config: &str) -> String {
    format!(
        r#"[dns]
nameservers = ["{}"]

[[plugin]]
name = "rbl"
path = "{wasm}"
timeout = "5s"
config = {{ zones = "zen.test" }}

[[plugin]]
name = "{name}"
path = "{wasm}"
timeout = "5s"
config = {{ {config} }}
"#,
        dns.address(),
        wasm = test_plugins::shipped::DNSBL
    )
}

#[test]
fn listed_clients_are_refused_or_tagged() {
    let dns = DnsServer::start(&json!({
        "1.0.0.127.zen.test": {"A": ["127.0.0.2"], "TXT": ["spam source, see https://zen.test/q?127.0.0.1"]},
        "2.0.0.127.tag.test": {"A": ["127.0.0.4"]},
        "3.0.0.127.zen.test": {"SERVFAIL": true},
        "3.0.0.127.other.test": {"SERVFAIL": true},
    }));
    let extra = rbl_and(
        &dns,
        "tagger",
        r#"zones = "tag.test, other.test", action = "tag", on_temporary_error = "tempfail""#,
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let script = format!(
        "SMTP = {}\nPOPS = {}\n{}",
        t.port("smtp"),
        t.port("pop3s"),
        DNSBL_PY
    );
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
    let log = t.log();
    assert!(log.contains("127.0.0.1 is listed on zen.test"), "{log}");
    assert!(
        log.contains("zen.test: lookup of 3.0.0.127.zen.test failed"),
        "{log}"
    );
}

const DNSBL_PY: &str = r#"
import poplib, smtplib, ssl
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE

# Listed on zen.test (reject): 554 at connect, naming the list and its reason.
try:
    smtplib.SMTP("127.0.0.1", SMTP, source_address=("127.0.0.1", 0))
    raise AssertionError("a listed client was let in")
except smtplib.SMTPConnectError as e:
    assert e.smtp_code == 554, e
    text = e.smtp_error.decode()
    assert text.startswith("5.7.1 ") and "blocked using zen.test" in text and "spam source" in text, text

def send(source, subject):
    s = smtplib.SMTP("127.0.0.1", SMTP, source_address=(source, 0))
    try:
        s.sendmail("lisa@outside.test", ["bob@example.test"], "Subject: %s\r\n\r\nhello\r\n" % subject)
        return None
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        s.close()

# Listed on tag.test only: accepted and tagged.
assert send("127.0.0.2", "tagged") is None
# Not listed anywhere: accepted, no tag.
assert send("127.0.0.5", "clean") is None
# SERVFAIL on zen.test (skipped, logged) and on other.test (tempfail at the end of data).
code, text = send("127.0.0.3", "unknown")
assert code == 451 and text.startswith("4.4.3 ") and "other.test" in text, (code, text)

p = poplib.POP3_SSL("127.0.0.1", POPS, context=CTX); p.user("bob@example.test"); p.pass_("pw")
assert p.stat()[0] == 2, p.stat()
heads = {}
for i in (1, 2):
    lines = p.retr(i)[1]
    head = lines[: lines.index(b"")]
    subject = [l for l in head if l.startswith(b"Subject: ")][0][9:].decode()
    heads[subject] = [l.decode() for l in head if l.lower().startswith(b"x-dnsbl:")]
p.quit()
assert heads["tagged"] == ["X-DNSBL: listed on tag.test"], heads
assert heads["clean"] == [], heads
print("ok")
"#;

/// A client on no list passes for `pass_ttl` (postscreen's cache): its
/// next session on the same listener is let through without calling the
/// plugin, and the trace says the verdict was remembered; another client
/// is still looked up; a listed client is refused at every session; and
/// `pass_ttl = "0"` asks at every session.
#[test]
fn a_client_on_no_list_passes_for_pass_ttl() {
    let dns = DnsServer::start(&json!({
        "1.0.0.127.zen.test": {"A": ["127.0.0.2"]},
    }));
    let extra = rbl_and(&dns, "always", r#"zones = "zen.test", pass_ttl = "0""#);
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let script = format!("SMTP = {}\n{}", t.port("smtp"), PASS_PY);
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");

    let remembered = |lines: &[String]| lines.iter().any(|l| l.contains("remembered"));
    let holds = |lines: &[String]| {
        lines
            .iter()
            .any(|l| l.contains("holds for this client for 300 s"))
    };
    // The first session of 127.0.0.5: looked up, and the pass is kept.
    let first = t.plugin_trace("first@outside.test", "rbl");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].contains("continue") && holds(&first) && !remembered(&first),
        "{first:?}"
    );
    // Its second session: not called, the pass remembered.
    let second = t.plugin_trace("second@outside.test", "rbl");
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(
        second[0].contains("continue") && remembered(&second),
        "{second:?}"
    );
    // Another client: looked up.
    let other = t.plugin_trace("other@outside.test", "rbl");
    assert!(holds(&other) && !remembered(&other), "{other:?}");
    // pass_ttl = "0": asked at every session, nothing kept.
    for id in [
        "first@outside.test",
        "second@outside.test",
        "other@outside.test",
    ] {
        let lines = t.plugin_trace(id, "always");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("continue") && !remembered(&lines) && !lines[0].contains("holds"),
            "{lines:?}"
        );
    }
    // The listed client was refused twice, each time by a look-up.
    let refused = t.client_trace("127.0.0.1");
    assert_eq!(
        refused.matches("plugin rbl: reject").count(),
        2,
        "{refused}"
    );
    assert!(!refused.contains("remembered"), "{refused}");
}

const PASS_PY: &str = r#"
import smtplib

for attempt in (1, 2):
    try:
        smtplib.SMTP("127.0.0.1", SMTP, source_address=("127.0.0.1", 0))
        raise AssertionError("a listed client was let in")
    except smtplib.SMTPConnectError as e:
        assert e.smtp_code == 554, e

def send(source, mid):
    s = smtplib.SMTP("127.0.0.1", SMTP, source_address=(source, 0))
    s.sendmail("lisa@outside.test", ["bob@example.test"],
               "Subject: pass\r\nMessage-ID: <%s>\r\n\r\nhello\r\n" % mid)
    s.quit()

send("127.0.0.5", "first@outside.test")
send("127.0.0.5", "second@outside.test")
send("127.0.0.6", "other@outside.test")
print("ok")
"#;
