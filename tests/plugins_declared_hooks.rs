//! Hooks a plugin does not implement are never called: a component built
//! with `#[tern_sdk::hooks]` declares `on-rcpt-to` alone in its
//! `tern:hooks` section and is called once per RCPT TO, while the same
//! plugin built before the section existed (a fixture kept as built)
//! still loads, still refuses `nobody@`, and is called at every policy
//! hook as before. Counted by the server's own metric
//! (`tern_plugin_calls_total`) through the real binary; `tern plugin
//! inspect` shows the declaration.

mod harness;

use harness::*;
use std::process::Command;

/// `no_nobody` as built before `tern:hooks` (tests/plugins/no_nobody, tern-sdk 0.1.0).
const UNDECLARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/plugins/no_nobody-0.1.0-undeclared.wasm"
);

fn calls(port: u16, plugin: &str) -> f64 {
    let out = python_with_prelude(
        r#"
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=30)
want = 'tern_plugin_calls_total{plugin="%s"} ' % sys.argv[2]
print(sum(float(l.split()[-1]) for l in r.read().decode().splitlines() if l.startswith(want)))
"#,
        &[&port.to_string(), plugin],
    );
    assert!(out.status.success(), "scrape: {}", text(&out.stderr));
    text(&out.stdout).trim().parse().expect("a number")
}

#[test]
fn only_declared_hooks_are_called_and_old_components_keep_every_hook() {
    let plugins = format!(
        "[[plugin]]\nname = \"declared\"\npath = \"{}\"\n[[plugin]]\nname = \"undeclared\"\npath = \"{UNDECLARED}\"\n[metrics]\naddress = \"127.0.0.1:0\"\n",
        test_plugins::NO_NOBODY
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugins));
    t.add_user("bob@example.test", "pw");
    t.add_user("nobody@example.test", "pw");
    let metrics = t.port("metrics");
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("client.test")
assert s.mail("lisa@outside.test")[0] == 250
code, msg = s.rcpt("bob@example.test")
assert code == 250, (code, msg)
code, msg = s.rcpt("carol@example.test")
assert code == 550, (code, msg)
s.quit()
print("ok")
"#,
        &[&t.port("smtp").to_string()],
    );
    assert_eq!(out.trim(), "ok");
    // One session: the declared plugin at its one hook for the one
    // recipient that passed the built-in checks; the undeclared one at
    // connect, EHLO, MAIL FROM and that RCPT TO.
    assert_eq!(calls(metrics, "declared"), 1.0);
    assert_eq!(calls(metrics, "undeclared"), 4.0);

    // The old component still refuses on its own when it decides.
    let t2 = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!("[[plugin]]\nname = \"old\"\npath = \"{UNDECLARED}\"\n"),
    ));
    t2.add_user("nobody@example.test", "pw");
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.ehlo("client.test")
s.mail("lisa@outside.test")
code, msg = s.rcpt("nobody@example.test")
assert code == 550 and b"nobody lives here" in msg, (code, msg)
s.quit()
print("ok")
"#,
        &[&t2.port("smtp").to_string()],
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn inspect_shows_the_declared_hooks() {
    let inspect = |file: &str| {
        let out = Command::new(tern_bin())
            .args(["plugin", "inspect", file])
            .output()
            .expect("tern");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let declared = inspect(test_plugins::NO_NOBODY);
    assert!(
        declared.contains("calls: on-rcpt-to (declared in tern:hooks)"),
        "{declared}"
    );
    let shipped = inspect(test_plugins::shipped::DNSBL);
    assert!(shipped.contains("hooks: policy, filter"), "{shipped}");
    assert!(
        shipped.contains("calls: on-connect, on-rcpt-to, on-data (declared"),
        "{shipped}"
    );
    let old = inspect(UNDECLARED);
    assert!(
        old.contains("calls: every hook of those interfaces (no tern:hooks section)"),
        "{old}"
    );
    // A trait impl without #[hooks] declares all of its trait's hooks.
    let hostile = inspect(test_plugins::HOSTILE);
    assert!(
        hostile.contains("calls: on-connect, on-helo, on-mail-from, on-rcpt-to"),
        "{hostile}"
    );
    // Other tool chains declare after the build; the top-level section
    // overrides the one the SDK wrote inside.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("hostile.wasm");
    std::fs::copy(test_plugins::HOSTILE, &copy).expect("copy");
    let copy = copy.to_string_lossy().into_owned();
    let declare = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk/declare-hooks");
    for hooks in [&["on-rcpt-to"][..], &["on-helo", "on-rcpt-to"]] {
        let out = Command::new(declare)
            .arg(&copy)
            .args(hooks)
            .output()
            .expect("declare-hooks");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let redeclared = inspect(&copy);
    assert!(
        redeclared.contains("calls: on-helo, on-rcpt-to (declared in tern:hooks)"),
        "{redeclared}"
    );
    let out = Command::new(declare)
        .args([copy.as_str(), "on-everything"])
        .output()
        .expect("declare-hooks");
    assert!(!out.status.success() && text(&out.stderr).contains("unknown hook(s): on-everything"));
}
