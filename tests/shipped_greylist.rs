//! The shipped `greylist` plugin (plugins/greylist) in the real server,
//! with Python's smtplib as the client: a new triplet gets 451 4.7.1, a
//! retry before the delay is still refused, a retry once the delay has
//! passed is accepted; allow-listed networks and sender domains pass at
//! once; a network that passed `auto_allow` times is no longer greylisted,
//! whichever host of its /24 connects; an allow-listed client's pass is
//! remembered by the server (`verdicts.same-for-client`), a greylisted
//! one's refusal never.

mod harness;
use harness::{Tern, config, plugin_entry, python};

/// The shipped greylist's `[[plugin]]` entry with `config`.
fn greylist(config: &str) -> String {
    plugin_entry("greylist", test_plugins::shipped::GREYLIST, "2s", config)
}

#[test]
fn greylisting_refuses_then_accepts_after_the_delay() {
    let plugin = greylist(
        r#"delay = "2s", allow_networks = "127.0.1.0/24", allow_domains = "friends.test", auto_allow = "1""#,
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugin));
    t.add_user("bob@example.test", "pw");
    let script = format!("SMTP = {}\n{}", t.port("smtp"), GREYLIST_PY);
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
    assert!(t.log().contains("greylisted 127.0."), "{}", t.log());
}

const GREYLIST_PY: &str = r#"
import smtplib, time
DELAY = 2.0

def rcpt(to, sender, source):
    s = smtplib.SMTP("127.0.0.1", SMTP, source_address=(source, 0))
    s.ehlo("client.test")
    code, msg = s.mail(sender)
    assert code == 250, (code, msg)
    code, msg = s.rcpt(to)
    s.quit()
    return code, msg.decode()

# Each try uses a fresh client network (auto_allow = 1 would let a network
# through once it passed). A try counts only if at least one retry was
# answered before the delay had passed, so the test does not hinge on how
# fast this machine is; on a very slow machine it tries again.
for attempt in range(5):
    net = "127.0.%d" % (10 + attempt)
    t0 = time.time()
    code, msg = rcpt("bob@example.test", "lisa@outside.test", net + ".1")
    assert code == 451 and msg.startswith("4.7.1 Greylisted") and "2 seconds" in msg, (code, msg)
    early = 0
    while True:
        code, msg = rcpt("bob@example.test", "lisa@outside.test", net + ".1")
        answered = time.time()
        if code == 250:
            break
        assert code == 451 and msg.startswith("4.7.1 Greylisted"), (code, msg)
        if answered < t0 + DELAY:
            early += 1
        assert answered < t0 + 120, "the triplet was never accepted"
        time.sleep(0.2)
    # Accepted, and only once at least the delay had passed since the first try.
    assert answered >= t0 + DELAY, (answered - t0)
    if early:
        break
else:
    raise AssertionError("no retry was ever answered within the delay")

# The confirmed triplet passes at once from now on.
assert rcpt("bob@example.test", "lisa@outside.test", net + ".1")[0] == 250
# auto_allow = 1: the network passed once, so another host of the same /24
# with a new sender is not greylisted...
code, msg = rcpt("bob@example.test", "other@elsewhere.test", net + ".77")
assert code == 250, ("auto-allowed network greylisted", code, msg)
# ...while a new network still is.
code, msg = rcpt("bob@example.test", "other@elsewhere.test", "127.0.50.1")
assert code == 451, ("new network not greylisted", code, msg)
# Allow-listed network and sender domain pass at once.
code, msg = rcpt("bob@example.test", "new@outside.test", "127.0.1.9")
assert code == 250, ("allow_networks", code, msg)
code, msg = rcpt("bob@example.test", "news@lists.friends.test", "127.0.51.1")
assert code == 250, ("allow_domains", code, msg)
print("ok")
"#;

/// An allow-listed client's first recipient is asked and the plugin says
/// its pass holds for the client for an hour: the server lets its next
/// recipients, in that session and the next, through without calling the
/// plugin (the trace says remembered). A greylisted client is asked at
/// every attempt.
#[test]
fn an_allowed_clients_pass_is_remembered_and_a_refusal_is_not() {
    let plugin = greylist(r#"delay = "1h", allow_networks = "127.0.1.0/24""#);
    let t = Tern::start(&config("mx.example.test", "example.test", &plugin));
    t.add_user("bob@example.test", "pw");
    t.add_user("carol@example.test", "pw");
    let script = format!("SMTP = {}\n{}", t.port("smtp"), REMEMBER_PY);
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");

    let first = t.plugin_trace("first@outside.test", "greylist");
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first[0].contains("continue <bob@example.test>")
            && first[0].contains("holds for this client for 3600 s"),
        "{first:?}"
    );
    assert!(
        first[1].contains("continue <carol@example.test>") && first[1].contains("remembered"),
        "{first:?}"
    );
    let second = t.plugin_trace("second@outside.test", "greylist");
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second[0].contains("remembered"), "{second:?}");

    let refused = t.client_trace("127.0.2.1");
    assert_eq!(
        refused.matches("plugin greylist: tempfail").count(),
        2,
        "{refused}"
    );
    assert!(!refused.contains("remembered"), "{refused}");
}

const REMEMBER_PY: &str = r#"
import smtplib

def send(source, mid, rcpts):
    s = smtplib.SMTP("127.0.0.1", SMTP, source_address=(source, 0))
    s.sendmail("lisa@outside.test", rcpts, "Subject: hi\r\nMessage-ID: <%s>\r\n\r\nhello\r\n" % mid)
    s.quit()

send("127.0.1.5", "first@outside.test", ["bob@example.test", "carol@example.test"])
send("127.0.1.5", "second@outside.test", ["bob@example.test"])
for attempt in (1, 2):
    s = smtplib.SMTP("127.0.0.1", SMTP, source_address=("127.0.2.1", 0))
    s.ehlo("client.test"); s.mail("lisa@outside.test")
    code, msg = s.rcpt("bob@example.test")
    assert code == 451 and msg.decode().startswith("4.7.1 Greylisted"), (code, msg)
    s.quit()
print("ok")
"#;
