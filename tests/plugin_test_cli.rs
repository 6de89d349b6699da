//! `tern plugin test`: a plugin's hooks run on a message outside a server,
//! with the exit status DESIGN.md gives (0 accepted, 1 refused, 2 error),
//! through the real binary and real guest components.

use std::process::{Command, Output};

fn message(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("m.eml");
    // Unix line ends, as a file on disk has them.
    std::fs::write(
        &path,
        "From: Lisa <lisa@outside.test>\nTo: bob@example.test\nCc: nobody@example.test\n\
         Subject: trying a plugin\n\nHello.\n",
    )
    .unwrap();
    path
}

fn plugin_test(plugin: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mail = message(dir.path());
    let out: Output = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["plugin", "test", plugin, "--mail"])
        .arg(&mail)
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run tern");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_policy_refusing_the_only_recipient_exits_1_with_its_reply() {
    let (code, out, err) = plugin_test(test_plugins::NO_NOBODY, &["--to", "nobody@example.test"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("plugin: no_nobody (hooks: on-rcpt-to)"),
        "{out}"
    );
    assert!(
        out.contains("refused: 550 5.1.1 <nobody@example.test>: nobody lives here no more"),
        "{out}"
    );
    // The plugin's own log line is shown.
    assert!(out.contains("refusing nobody@example.test"), "{out}");
}

#[test]
fn recipients_come_from_the_headers_and_one_refusal_leaves_the_rest() {
    let (code, out, err) = plugin_test(test_plugins::NO_NOBODY, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("<bob@example.test>"), "{out}");
    assert!(out.contains("accepted for <bob@example.test>"), "{out}");
    // --set reaches the plugin's config: now bob is the banned one.
    let (code, out, _) = plugin_test(
        test_plugins::NO_NOBODY,
        &["--set", "local=bob", "--to", "bob@example.test"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bob lives here no more"), "{out}");
}

/// A verdict the plugin says holds for the client is reported: the
/// shipped greylist passes an allow-listed client's first recipient and
/// says so for an hour; the second recipient is then not called.
#[test]
fn a_verdict_kept_for_the_client_is_reported() {
    let (code, out, err) = plugin_test(
        test_plugins::shipped::GREYLIST,
        &[
            "--set",
            "allow_networks=192.0.2.0/24",
            "--client",
            "192.0.2.7",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let rcpts: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("on-rcpt-to "))
        .collect();
    assert_eq!(rcpts.len(), 2, "{out}");
    assert!(
        rcpts[0].contains("<bob@example.test>")
            && rcpts[0]
                .contains("continue (the plugin says this holds for this client for 3600 s)"),
        "{out}"
    );
    assert!(
        rcpts[1].contains("<nobody@example.test>")
            && rcpts[1]
                .contains("continue (not called: remembered from an earlier call for this client)"),
        "{out}"
    );
}

#[test]
fn a_filter_shows_its_header_edits_on_the_message() {
    let (code, out, err) = plugin_test(test_plugins::ADD_HEADER, &["--from", "lisa@outside.test"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("on-data"), "{out}");
    assert!(
        out.contains("add headers: X-Tern-Filter: add_header"),
        "{out}"
    );
    assert!(out.contains("subject=trying a plugin"), "{out}");
    assert!(out.contains("rcpts=2"), "{out}");
}

#[test]
fn a_plugin_that_traps_or_bad_input_exits_2() {
    let (code, out, err) = plugin_test(test_plugins::HOSTILE, &["--to", "trap@example.test"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("the plugin failed 1 time"), "{out}");
    let (code, _, err) = plugin_test(test_plugins::HOSTILE, &["--set", "novalue"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("KEY=VALUE"), "{err}");
    let (code, _, err) = plugin_test("/nonexistent/plugin.wasm", &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_delivery_hook_runs_a_sieve_script_for_each_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bob.sieve");
    std::fs::write(
        &script,
        "require [\"fileinto\", \"imap4flags\"];\n\
         if header :contains \"subject\" \"plugin\" {\n  fileinto :flags \"\\\\Flagged\" \"Tests\";\n}\n",
    )
    .unwrap();
    let script = script.display().to_string();
    let (code, out, err) = plugin_test(
        test_plugins::shipped::SIEVE,
        &["--to", "bob@example.test", "--sieve", &script],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("deliver"), "{out}");
    assert!(
        out.contains("keep in Tests with \\Flagged"),
        "the script's fileinto and flag: {out}"
    );
    // Without a script the plugin has nothing to say: the default folder.
    let (code, out, _) = plugin_test(test_plugins::shipped::SIEVE, &["--to", "bob@example.test"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no answer: the default folder"), "{out}");
    // A script that does not compile is the input's error.
    std::fs::write(dir.path().join("bad.sieve"), "fileinto \"x\";\n").unwrap();
    let bad = dir.path().join("bad.sieve").display().to_string();
    let (code, out, err) = plugin_test(
        test_plugins::shipped::SIEVE,
        &["--to", "bob@example.test", "--sieve", &bad],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("--sieve"), "{err}");
}
