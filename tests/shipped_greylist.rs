//! The shipped `greylist` plugin (plugins/greylist) in the real server,
//! with Python's smtplib as the client: a new triplet gets 451 4.7.1, a
//! retry before the delay is still refused, a retry once the delay has
//! passed is accepted; allow-listed networks and sender domains pass at
//! once; a network that passed `auto_allow` times is no longer greylisted,
//! whichever host of its /24 connects.

mod harness;
use harness::{Tern, config, python};

#[test]
fn greylisting_refuses_then_accepts_after_the_delay() {
    let plugin = format!(
        r#"[[plugin]]
name = "greylist"
path = "{}"
timeout = "2s"
config = {{ delay = "2s", allow_networks = "127.0.1.0/24", allow_domains = "friends.test", auto_allow = "1" }}
"#,
        test_plugins::shipped::GREYLIST
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
