//! The shipped `rate-limit` plugin (plugins/rate-limit) in the real
//! server, with smtplib: each limit lets exactly N through and refuses the
//! (N+1)th — messages per client address (451 4.7.1 at MAIL FROM, other
//! addresses unaffected), messages per authenticated user on submission,
//! recipients per sender (452 4.5.3 at RCPT TO).

mod harness;
use harness::{Tern, config, python};

#[test]
fn limits_trip_at_n_plus_one() {
    let extra = format!(
        r#"[tls]
allow_plaintext_auth = true

[[plugin]]
name = "rate-limit"
path = "{}"
timeout = "2s"
config = {{ messages_per_client = "3/1h", messages_per_user = "2/1h", recipients_per_sender = "2/1h" }}
"#,
        test_plugins::shipped::RATE_LIMIT
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    for user in ["bob", "carol", "dave"] {
        t.add_user(&format!("{user}@example.test"), "pw");
    }
    let script = format!(
        "SMTP = {}\nSUBMISSION = {}\n{}",
        t.port("smtp"),
        t.port("submission"),
        RATE_PY
    );
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
    assert!(
        t.log().contains("message limit reached for 127.0.0.1/32"),
        "{}",
        t.log()
    );
}

const RATE_PY: &str = r#"
import smtplib

def connect(port, source):
    s = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0))
    s.ehlo("client.test")
    return s

def message(s, sender, rcpts):
    code, msg = s.mail(sender)
    if code != 250:
        s.rset()
        return code, msg.decode()
    for r in rcpts:
        code, msg = s.rcpt(r)
        if code != 250:
            s.rset()
            return code, msg.decode()
    code, msg = s.data(b"Subject: rate\r\n\r\nhello\r\n")
    return code, msg.decode()

# Messages per client: 3 pass from 127.0.0.1 (three senders, so the
# per-sender recipient limit stays out of it), the 4th is refused.
s = connect(SMTP, "127.0.0.1")
for i in range(3):
    code, msg = message(s, "s%d@outside.test" % i, ["bob@example.test"])
    assert code == 250, (i, code, msg)
code, msg = message(s, "s9@outside.test", ["bob@example.test"])
assert code == 451 and msg.startswith("4.7.1 Rate limit reached") and "127.0.0.1/32" in msg, (code, msg)
s.quit()
# Another client address is counted apart.
s = connect(SMTP, "127.0.0.4")
code, msg = message(s, "s5@outside.test", ["bob@example.test"])
assert code == 250, (code, msg)
s.quit()

# Messages per user on submission: carol may send 2, the 3rd is refused.
s = connect(SUBMISSION, "127.0.0.2")
s.login("carol@example.test", "pw")
for i in range(2):
    code, msg = message(s, "carol@example.test", ["bob@example.test"])
    assert code == 250, (i, code, msg)
code, msg = message(s, "carol@example.test", ["bob@example.test"])
assert code == 451 and "carol@example.test" in msg, (code, msg)
s.quit()

# Recipients per sender: 2 pass, the 3rd gets 452 4.5.3.
s = connect(SMTP, "127.0.0.3")
s.mail("many@outside.test")
for r in ("bob@example.test", "carol@example.test"):
    code, msg = s.rcpt(r)
    assert code == 250, (r, code, msg)
code, msg = s.rcpt("dave@example.test")
assert code == 452 and msg.decode().startswith("4.5.3 ") and "many@outside.test" in msg.decode(), (code, msg)
s.quit()
print("ok")
"#;
