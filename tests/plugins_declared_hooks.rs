//! Hooks a plugin does not implement are never called: a component built
//! with `#[tern_sdk::hooks]` declares `on-rcpt-to` alone in its
//! `tern:hooks` section and is called once per RCPT TO, while the same
//! plugin built before the section existed (a fixture kept as built)
//! still loads, still refuses `nobody@`, and is called at every policy
//! hook as before. Counted by the server's own metric
//! (`tern_plugin_calls_total`) through the real binary; `tern plugin
//! inspect` shows the declaration. Hooks a plugin's configuration turns
//! off (`config.skip-hooks`) are not called either, and a plugin left
//! with on-connect alone gives its instance back as soon as that returns.

mod harness;

use harness::*;
use std::process::Command;

/// `no_nobody` as built before `tern:hooks` (tests/plugins/no_nobody, tern-sdk 0.1.0).
const UNDECLARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/plugins/no_nobody-0.1.0-undeclared.wasm"
);

fn calls(port: u16, plugin: &str) -> f64 {
    counter(port, "tern_plugin_calls_total", plugin)
}

/// The metrics endpoint's `NAME{plugin="PLUGIN"}`.
fn counter(port: u16, name: &str, plugin: &str) -> f64 {
    let out = python_with_prelude(
        r#"
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=30)
want = '%s{plugin="%s"} ' % (sys.argv[2], sys.argv[3])
print(sum(float(l.split()[-1]) for l in r.read().decode().splitlines() if l.startswith(want)))
"#,
        &[&port.to_string(), name, plugin],
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
    // `deliver` is declarable too: a delivery component (the shipped
    // sieve) that declares it gets it called.
    let sieve = dir.path().join("sieve.wasm");
    std::fs::copy(test_plugins::shipped::SIEVE, &sieve).expect("copy");
    let out = Command::new(declare)
        .arg(&sieve)
        .arg("deliver")
        .output()
        .expect("declare-hooks");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let delivery = inspect(&sieve.to_string_lossy());
    assert!(
        delivery.contains("calls: deliver (declared in tern:hooks)"),
        "{delivery}"
    );
    let out = Command::new(declare)
        .args([copy.as_str(), "on-everything"])
        .output()
        .expect("declare-hooks");
    assert!(!out.status.success() && text(&out.stderr).contains("unknown hook(s): on-everything"));
}

/// A plugin turns off the hooks its configuration leaves with nothing to
/// do (`config.skip-hooks`): the shipped `dnsbl` refusing at connect is
/// not called at RCPT TO or DATA, and tagging at the end of data is not
/// called at connect or RCPT TO, from its first call on; `access` with
/// recipient lists only is called at RCPT TO alone, and `rate-limit` with
/// recipient limits only likewise. Without that, in these two sessions,
/// each `dnsbl` would be called 6 times (connect, RCPT TO and DATA,
/// twice), `access` 8 and `rate-limit` 4. (The reject list's second
/// connect is not called at all: it said its pass holds for the client,
/// `verdicts.same-for-client`.) `tern plugin test` reports a hook so
/// turned off.
#[test]
fn a_plugin_turns_off_the_hooks_its_configuration_leaves_idle() {
    let dns = DnsServer::start(&serde_json::json!({}));
    let plugins = format!(
        "[dns]\nnameservers = [\"{}\"]\n[metrics]\naddress = \"127.0.0.1:0\"\n\
         [[plugin]]\nname = \"rbl\"\npath = \"{wasm}\"\nconfig = {{ zones = \"zen.test\" }}\n\
         [[plugin]]\nname = \"tagger\"\npath = \"{wasm}\"\nconfig = {{ zones = \"tag.test\", action = \"tag\" }}\n\
         [[plugin]]\nname = \"access\"\npath = \"{access}\"\nconfig = {{ recipient_deny = \"nobody@example.test\" }}\n\
         [[plugin]]\nname = \"limits\"\npath = \"{limits}\"\nconfig = {{ recipients_per_client = \"100/1h\" }}\n",
        dns.address(),
        wasm = test_plugins::shipped::DNSBL,
        access = test_plugins::shipped::ACCESS,
        limits = test_plugins::shipped::RATE_LIMIT,
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugins));
    t.add_user("bob@example.test", "pw");
    let metrics = t.port("metrics");
    let session = || {
        let out = python(
            r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.sendmail("lisa@outside.test", ["bob@example.test"], "Subject: hi\r\n\r\nhello\r\n")
s.quit()
print("ok")
"#,
            &[&t.port("smtp").to_string()],
        );
        assert_eq!(out.trim(), "ok");
    };
    session();
    // The reject list: its one call at connect read the config and
    // turned RCPT TO and DATA off. The tagger: that first call (at
    // connect) turned connect and RCPT TO off; then DATA.
    // The same for the access lists (first called at connect) and the
    // limits (first called at MAIL FROM), then RCPT TO.
    assert_eq!(calls(metrics, "rbl"), 1.0);
    assert_eq!(calls(metrics, "tagger"), 2.0);
    assert_eq!(calls(metrics, "access"), 2.0);
    assert_eq!(calls(metrics, "limits"), 2.0);
    session();
    // The reject list found the client on no list and said so for its
    // `pass_ttl`: the server answers its second connect without a call.
    assert_eq!(calls(metrics, "rbl"), 1.0);
    assert_eq!(counter(metrics, "tern_plugin_remembered_total", "rbl"), 1.0);
    assert_eq!(calls(metrics, "tagger"), 3.0);
    assert_eq!(calls(metrics, "access"), 3.0);
    assert_eq!(calls(metrics, "limits"), 3.0);
    let log = t.log();
    assert!(
        log.contains("the plugin's configuration turns these hooks off"),
        "{log}"
    );
    // Both plugins looked the client up and found it unlisted.
    let asked = dns.queries();
    assert!(
        asked.contains(&"1.0.0.127.zen.test A".to_string()),
        "{asked:?}"
    );
    assert!(
        asked.contains(&"1.0.0.127.tag.test A".to_string()),
        "{asked:?}"
    );

    // `tern plugin test` shows the hooks the tagger turned off.
    let dir = tempfile::tempdir().expect("tempdir");
    let mail = dir.path().join("m.eml");
    std::fs::write(
        &mail,
        "From: lisa@outside.test\nTo: bob@example.test\nSubject: hi\n\nhello\n",
    )
    .expect("message");
    let cfg = dir.path().join("tern.toml");
    std::fs::write(
        &cfg,
        format!("[dns]\nnameservers = [\"{}\"]\n", dns.address()),
    )
    .expect("config");
    let out = Command::new(tern_bin())
        .args([
            "plugin",
            "test",
            test_plugins::shipped::DNSBL,
            "--set",
            "zones=tag.test",
        ])
        .args(["--set", "action=tag", "--client", "192.0.2.7", "--mail"])
        .arg(&mail)
        .arg("--config")
        .arg(&cfg)
        .output()
        .expect("tern");
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}\n{}", text(&out.stderr));
    assert!(
        shown.contains("not called: the plugin's configuration turns this hook off"),
        "{shown}"
    );
    assert!(shown.contains("on-data"), "{shown}");
}

/// The `connect N on this instance` counts `plugin` logged, in order.
fn connects_logged(t: &Tern, plugin: &str, want: usize) -> Vec<u32> {
    let tag = format!("plugin=\"{plugin}\"");
    wait_for("the plugin's connect lines", READY_BOUND, || {
        let counts: Vec<u32> = t
            .log()
            .lines()
            .filter(|l| l.contains(&tag))
            .filter_map(|l| {
                let rest = l.split("connect ").nth(1)?;
                rest.split(" on this instance").next()?.parse().ok()
            })
            .collect();
        (counts.len() >= want).then_some(counts)
    })
}

#[test]
fn an_instance_needed_only_at_connect_serves_the_next_session_at_once() {
    // The same component twice: "released" turns its on-helo off, so once
    // it has answered on-connect a session has nothing more for it; "kept"
    // is still called at HELO and stays with its session to the end.
    let plugin = test_plugins::CONNECT_COUNTER;
    let plugins = format!(
        "[[plugin]]\nname = \"released\"\npath = \"{plugin}\"\nconfig = {{ helo = \"off\" }}\n\
         [[plugin]]\nname = \"kept\"\npath = \"{plugin}\"\n"
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugins));
    let port = t.port("smtp");
    // Two sessions open at once: the second connects while the first is
    // still open (both greetings came after their on-connect calls).
    let (mut first, banner) = Smtp::connect(port);
    assert_eq!(banner.code, 220, "{banner:?}");
    let (mut second, banner) = Smtp::connect(port);
    assert_eq!(banner.code, 220, "{banner:?}");
    // The released instance answered both connects; the kept one was
    // still the first session's, so the second got an instance of its own.
    assert_eq!(connects_logged(&t, "released", 2), vec![1, 2]);
    assert_eq!(connects_logged(&t, "kept", 2), vec![1, 1]);
    // Both sessions go on as usual.
    for s in [&mut first, &mut second] {
        let r = s.cmd("EHLO client.test");
        assert_eq!(r.code, 250, "{r:?}");
        let r = s.cmd("QUIT");
        assert_eq!(r.code, 221, "{r:?}");
    }
}
