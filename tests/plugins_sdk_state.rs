//! The SDK's conveniences in the real server, with Python's smtplib as
//! the client, through tests/plugins/session_state: a plugin type in a
//! module exported by path (`export!(crate::inner::Plugin: …)`); its
//! policy counting a transaction's recipients in per-instance state
//! (`tern_sdk::state::with`, no static of its own), refusing the third
//! and starting again at the next MAIL FROM; and its rewrite hook,
//! written under another name for the trait (`Rewrite as Aliases`) with
//! the old method name `rewrite`, still declared by `#[tern_sdk::hooks]`
//! and so called: `alias@` reaches bob, where it would be an unknown user.

mod harness;
use harness::{Tern, config, python};

#[test]
fn per_instance_state_and_a_path_export_work_in_the_server() {
    let t = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[[plugin]]\nname = \"state\"\npath = \"{}\"\ntimeout = \"5s\"\n",
            test_plugins::SESSION_STATE
        ),
    ));
    t.add_user("bob@example.test", "pw");
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("client.test")
assert s.mail("lisa@outside.test")[0] == 250
# Rewritten to bob by the plugin: accepted (counted 1).
code, msg = s.rcpt("alias@example.test")
assert code == 250, (code, msg)
# Unknown: refused by Tern's own check before the plugin is asked.
code, msg = s.rcpt("carol@example.test")
assert code == 550, (code, msg)
code, msg = s.rcpt("bob@example.test")
assert code == 250, (code, msg)
# The third recipient the plugin is asked about.
code, msg = s.rcpt("bob@example.test")
assert code == 452 and b"recipient 3 of this transaction: at most 2" in msg, (code, msg)
# A new transaction starts from nothing.
s.rset()
assert s.mail("lisa@outside.test")[0] == 250
code, msg = s.rcpt("bob@example.test")
assert code == 250, (code, msg)
s.quit()
print("ok")
"#,
        &[&t.port("smtp").to_string()],
    );
    assert_eq!(out.trim(), "ok");
    let log = t.log();
    assert!(
        log.contains("recipient 1 of this transaction: bob@example.test"),
        "{log}"
    );
}
