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

/// `--dns FILE`: the shipped dnsbl asks the canned answers, not the
/// network. A client the file lists is refused at connect with the
/// list's reason; the same client passes with a file without the entry
/// (a name not in the file does not exist); a malformed line is an error
/// naming it.
#[test]
fn canned_dns_answers_decide_a_dns_list() {
    let dir = tempfile::tempdir().unwrap();
    let listed = dir.path().join("listed.zone");
    std::fs::write(
        &listed,
        "; the client 192.0.2.7 on zen.test\n\
         7.2.0.192.zen.test. 300 IN A 127.0.0.2\n\
         7.2.0.192.zen.test.     TXT \"spam source\" \", see https://zen.test/\"\n",
    )
    .unwrap();
    let unlisted = dir.path().join("unlisted.zone");
    std::fs::write(&unlisted, "8.2.0.192.zen.test. A 127.0.0.2\n").unwrap();
    let run = |zone: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "--set",
            "zones=zen.test",
            "--client",
            "192.0.2.7",
            "--dns",
            zone.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        plugin_test(test_plugins::shipped::DNSBL, &args)
    };
    let (code, out, err) = run(&listed, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("on-connect") && out.contains("blocked using zen.test"),
        "{out}"
    );
    assert!(
        out.contains("spam source, see https://zen.test/"),
        "the TXT record's strings, joined: {out}"
    );
    let (code, out, err) = run(&unlisted, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("accepted for <bob@example.test>"), "{out}");

    let bad = dir.path().join("bad.zone");
    std::fs::write(&bad, "ok.test. A 192.0.2.1\nbad.test. A 192.0.2\n").unwrap();
    let (code, out, err) = run(&bad, &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("bad.zone") && err.contains("line 2") && err.contains("not an IPv4 address"),
        "{err}"
    );
}

/// The route line: each address a recipient was rewritten to is routed,
/// as in a server (tests/plugins/session_state rewrites `alias@` to its
/// `alias_to` and relays `relay.test` through a smarthost); an address
/// left alone is routed itself.
#[test]
fn each_rewritten_address_is_routed_and_the_route_is_shown() {
    let (code, out, err) = plugin_test(
        test_plugins::SESSION_STATE,
        &[
            "--to",
            "alias@example.test",
            "--to",
            "bob@example.test",
            "--set",
            "alias_to=carol@relay.test",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let line = |hook: &str, subject: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("{hook} ")) && l.contains(subject))
            .unwrap_or_else(|| panic!("no {hook} line for {subject}: {out}"))
            .to_string()
    };
    assert!(
        line("rewrite-recipient", "<alias@example.test>")
            .ends_with("rewritten to <carol@relay.test>"),
        "{out}"
    );
    assert!(
        line("route", "<carol@relay.test>").contains("smarthost.test:2525"),
        "{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.starts_with("route ") && l.contains("<alias@example.test>")),
        "the address before rewriting is not routed: {out}"
    );
    assert!(
        line("route", "<bob@example.test>").ends_with("default (the built-in router decides)"),
        "{out}"
    );
    assert!(
        out.contains("accepted for <alias@example.test>, <bob@example.test>"),
        "{out}"
    );
    // Relayed: no delivery hook for carol; bob's sees the filter's field
    // applied (the plugin files into `Seen` and the count it added).
    assert!(out.contains("add headers: X-Recipients-Seen: 2"), "{out}");
    let delivered: Vec<&str> = out.lines().filter(|l| l.starts_with("deliver ")).collect();
    assert_eq!(delivered.len(), 1, "{out}");
    assert!(
        delivered[0].contains("<bob@example.test>") && delivered[0].ends_with("keep in Seen2"),
        "{out}"
    );
    // Rewritten to a local address: its delivery names the address the
    // sender used and the account it reached.
    let (code, out, err) =
        plugin_test(test_plugins::SESSION_STATE, &["--to", "alias@example.test"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.lines().any(|l| l.starts_with("deliver ")
            && l.contains("<alias@example.test> (bob@example.test)")
            && l.ends_with("keep in Seen1")),
        "{out}"
    );
}

/// `--helo` is the name the plugin's HELO hook judges: the shipped
/// access plugin refusing `*.dynamic.example` refuses it, and passes
/// the default name.
#[test]
fn the_helo_name_is_the_one_given() {
    let deny = ["--set", "helo_deny=*.dynamic.example"];
    let mut args = deny.to_vec();
    args.extend(["--helo", "host7.dynamic.example"]);
    let (code, out, err) = plugin_test(test_plugins::shipped::ACCESS, &args);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("on-helo ") && l.contains("host7.dynamic.example")),
        "{out}"
    );
    assert!(out.contains("refused: 5"), "{out}");
    let (code, out, err) = plugin_test(test_plugins::shipped::ACCESS, &deny);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("on-helo ") && l.contains("client.example")),
        "{out}"
    );
}

/// A filter sees the fields a server puts on top of the message: the
/// test message has 4 header fields, and add_header counts 5 with Tern's
/// `Received:`; with `--login` (a submission) Tern also adds the
/// `Message-ID:` and `Date:` the message lacks, so 7, and the filter's
/// arrival names the account.
#[test]
fn filters_see_the_trace_fields_and_the_login() {
    let (code, out, err) = plugin_test(test_plugins::ADD_HEADER, &["--to", "bob@example.test"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("fields=5;"), "{out}");
    let (code, out, err) = plugin_test(
        test_plugins::ADD_HEADER,
        &["--to", "bob@example.test", "--login", "lisa@example.test"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("fields=7;"), "{out}");
    let (code, out, err) = plugin_test(
        test_plugins::ARRIVAL_SEEN,
        &["--to", "bob@example.test", "--login", "lisa@example.test"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("X-Arrival: tls=none; cipher=none; user=lisa@example.test"),
        "{out}"
    );
}

/// Per-instance state (`tern_sdk::state::with`) lasts from hook to hook
/// of a session: session_state counts the recipients and refuses the
/// third; the other two go on.
#[test]
fn state_kept_between_hooks_decides_the_third_recipient() {
    let (code, out, err) = plugin_test(
        test_plugins::SESSION_STATE,
        &[
            "--to",
            "a@example.test",
            "--to",
            "b@example.test",
            "--to",
            "c@example.test",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("refused: 452 4.5.3 recipient 3 of this transaction: at most 2"),
        "{out}"
    );
    assert!(
        out.contains("accepted for <a@example.test>, <b@example.test>"),
        "{out}"
    );
}
