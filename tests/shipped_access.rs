//! The shipped `access` plugin (plugins/access) in the real server, with
//! smtplib: a denied client network gets 554 5.7.1 at connect; a denied
//! HELO name, a sender domain, a sender glob and a recipient address get
//! 550 5.7.1; an allowed sender inside a denied domain passes; an allowed
//! client is accepted at RCPT and so skips a later plugin that would have
//! refused the recipient (the `no_nobody` test plugin).

mod harness;
use harness::{Tern, config, python};

#[test]
fn allow_and_deny_lists_of_each_kind() {
    let extra = format!(
        r#"[[plugin]]
name = "access"
path = "{}"
timeout = "2s"
config = {{ client_allow = "127.0.0.7", client_deny = "127.0.0.64/30, 2001:db8::/32", helo_deny = "*.dyn.test", sender_allow = "friend@spam.test", sender_deny = "@spam.test, *@*.bulk.test", recipient_deny = "secret@example.test" }}

[[plugin]]
name = "no-nobody"
path = "{}"
"#,
        test_plugins::shipped::ACCESS,
        test_plugins::NO_NOBODY
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    for user in ["bob", "secret", "nobody"] {
        t.add_user(&format!("{user}@example.test"), "pw");
    }
    let out = python(&format!("SMTP = {}\n{}", t.port("smtp"), ACCESS_PY), &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
}

const ACCESS_PY: &str = r#"
import smtplib

def session(source="127.0.0.1", helo="client.test"):
    s = smtplib.SMTP("127.0.0.1", SMTP, source_address=(source, 0))
    code, msg = s.ehlo(helo)
    return s, code, msg.decode()

def rcpt(sender, to, source="127.0.0.1"):
    s, code, msg = session(source)
    assert code == 250, (code, msg)
    code, msg = s.mail(sender)
    if code == 250:
        code, msg = s.rcpt(to)
    s.quit()
    return code, msg.decode()

# Client network deny: 554 5.7.1 before the banner.
for source in ("127.0.0.64", "127.0.0.67"):
    try:
        smtplib.SMTP("127.0.0.1", SMTP, source_address=(source, 0))
        raise AssertionError("denied client let in")
    except smtplib.SMTPConnectError as e:
        assert e.smtp_code == 554 and e.smtp_error.decode().startswith("5.7.1 Access denied: client " + source), e
# 127.0.0.68 is outside the /30.
s, code, msg = session("127.0.0.68"); s.quit()
assert code == 250, (code, msg)

# HELO glob deny.
s, code, msg = session(helo="host-7.dyn.test"); s.quit()
assert code == 550 and msg.startswith("5.7.1 Access denied: HELO host-7.dyn.test"), (code, msg)

# Sender: domain deny, glob deny, an allowed address inside the denied domain.
code, msg = rcpt("x@spam.test", "bob@example.test")
assert code == 550 and "sender <x@spam.test>" in msg, (code, msg)
code, msg = rcpt("x@mx1.bulk.test", "bob@example.test")
assert code == 550 and "sender <x@mx1.bulk.test>" in msg, (code, msg)
code, msg = rcpt("friend@spam.test", "bob@example.test")
assert code == 250, (code, msg)

# Recipient address deny; others pass.
code, msg = rcpt("lisa@outside.test", "secret@example.test")
assert code == 550 and "recipient <secret@example.test>" in msg, (code, msg)
code, msg = rcpt("lisa@outside.test", "bob@example.test")
assert code == 250, (code, msg)

# The plugin after access refuses nobody@ ... unless access accepted first.
code, msg = rcpt("lisa@outside.test", "nobody@example.test")
assert code == 550 and "nobody lives here" in msg, (code, msg)
code, msg = rcpt("lisa@outside.test", "nobody@example.test", source="127.0.0.7")
assert code == 250, ("allowed client should skip later plugins", code, msg)
print("ok")
"#;
