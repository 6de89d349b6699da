//! Reloading plugins with SIGHUP while a session is open: the open session
//! keeps the plugins it started with, a new session gets the new ones, and
//! a reload that fails leaves the running set in place.

mod harness;
use harness::{PY_SIGHUP, Tern, config, python};

const PY: &str = r#"
import os, poplib, signal, smtplib, ssl, sys, time
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
SMTP, POPS, PID, CONFIG, LOG = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def reload(old, new, marker):
    text = open(CONFIG).read()
    assert old in text
    open(CONFIG, "w").write(text.replace(old, new))
    sighup(PID, LOG, marker)
def session():
    s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("client.test")
    assert s.mail("lisa@outside.test")[0] == 250
    return s
def messages():
    p = poplib.POP3_SSL("127.0.0.1", POPS, context=CTX); p.user("bob@example.test"); p.pass_("pw")
    n = p.stat()[0]
    msgs = [b"\r\n".join(p.retr(i)[1]) for i in range(1, n + 1)]
    p.quit()
    return msgs
"#;

#[test]
fn sighup_swaps_plugins_for_new_sessions_only() {
    let plugins = format!(
        "[[plugin]]\nname = \"swappable\"\npath = \"{}\"\n",
        test_plugins::NO_NOBODY
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugins));
    t.add_user("bob@example.test", "pw");
    t.add_user("nobody@example.test", "pw");
    let pid = t.pid().expect("running").to_string();
    let script = format!(
        "{PY}{PY_SIGHUP}\nOLD_PATH = {:?}\nNEW_PATH = {:?}\n{}",
        test_plugins::NO_NOBODY,
        test_plugins::ADD_HEADER,
        r#"
old = session()                      # opened with the policy plugin
reload(OLD_PATH, NEW_PATH, "plugins reloaded")
new = session()                      # opened with the filter plugin
code, msg = old.rcpt("nobody@example.test")
assert code == 550 and b"lives here no more" in msg, ("the open session lost its plugins", code, msg)
assert old.rcpt("bob@example.test")[0] == 250
assert old.data(b"Subject: old\r\n\r\nx\r\n")[0] == 250
old.quit()
code, msg = new.rcpt("nobody@example.test")
assert code == 250, ("the new session still has the old plugins", code, msg)
assert new.data(b"Subject: new\r\n\r\nx\r\n")[0] == 250
new.quit()
got = messages()
assert len(got) == 1, len(got)
assert b"Subject: old" in got[0] and b"X-Tern-Filter" not in got[0], got[0]
# nobody@ got the new session's message, tagged by the filter.

# A reload that fails keeps the running set.
reload(NEW_PATH, "/nonexistent/plugin.wasm", "reload failed, plugins unchanged")
s = session()
assert s.rcpt("bob@example.test")[0] == 250
assert s.data(b"Subject: after a failed reload\r\n\r\nx\r\n")[0] == 250
s.quit()
got = messages()
assert len(got) == 2 and b"X-Tern-Filter" in got[1], got
print("ok")
"#
    );
    let log = t.dir.path().join("tern.log");
    let out = python(
        &script,
        &[
            &t.port("smtp").to_string(),
            &t.port("pop3s").to_string(),
            &pid,
            &t.config.display().to_string(),
            &log.display().to_string(),
        ],
    );
    assert_eq!(out.trim(), "ok", "{}", t.log());

    // `tern plugin reload` goes through the control socket; with the broken
    // path still in the config it fails, says why, and keeps the set.
    let out = t.cli(&["plugin", "reload"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reload failed, plugins unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&t.config)
        .expect("config")
        .replace("/nonexistent/plugin.wasm", test_plugins::NO_NOBODY);
    std::fs::write(&t.config, text).expect("config");
    let out = t.cli(&["plugin", "reload"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "reloaded: 1 plugin(s)"
    );
}
