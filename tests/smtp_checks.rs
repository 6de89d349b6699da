//! The built-in `[checks]` that need no DNS, and `check-config`: a local
//! sender from an untrusted unauthenticated client (550 5.7.1) and from a
//! trusted network (allowed); on submission a user sending as another user
//! (553 5.7.1), as an alias of their own (allowed), a forged `From:` header
//! (550 5.7.1 at end of data, nothing stored), the null sender; and
//! `tern check-config` naming a misspelt key.

mod harness;

use harness::*;

#[test]
fn local_sender_needs_auth_unless_trusted() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<alice@example.test>").expect(550, "5.7.1");
    s.cmd("MAIL FROM:<Bob@EXAMPLE.test>").expect(550, "5.7.1");
    // A stranger's domain is fine.
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("QUIT");
    assert!(server.mailbox("bob@example.test").is_empty());

    let mut trusted = Tern::start(&smtp_config(
        "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\n",
    ));
    trusted.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(trusted.port("smtp"));
    let r = s.send_message(
        "alice@example.test",
        &["bob@example.test"],
        b"Subject: from a trusted host\r\n\r\nok\r\n",
    );
    r.expect(250, "2.0.0");
    s.cmd("QUIT");
    assert_eq!(trusted.mailbox("bob@example.test").len(), 1);
}

#[test]
fn local_sender_check_can_be_switched_off() {
    let mut server = Tern::start(&smtp_config("[checks]\nlocal_sender_needs_auth = false\n"));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.send_message(
        "alice@example.test",
        &["bob@example.test"],
        b"Subject: x\r\n\r\nx\r\n",
    )
    .expect(250, "2.0.0");
    s.cmd("QUIT");
    assert_eq!(server.mailbox("bob@example.test").len(), 1);
}

/// smtplib on submission as bob: one transaction per (MAIL FROM, From: header).
const AS_BOB: &str = r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("laptop.example.test")
s.starttls(context=CTX)
s.ehlo("laptop.example.test")
s.login("bob@example.test", "bob-pw")
res = []
for i in range(2, len(sys.argv), 2):
    env_from, hdr_from = sys.argv[i], sys.argv[i + 1]
    step = [r(s.mail(env_from))]
    if step[0][0] == 250:
        step.append(r(s.rcpt("alice@example.test")))
        msg = ("From: %s\r\nTo: alice@example.test\r\nSubject: as %s / %s\r\n\r\nbody\r\n" % (hdr_from, env_from, hdr_from)).encode()
        step.append(r(s.data(msg)))
    else:
        s.rset()
    res.append(step)
s.quit()
out(res=res)
"#;

fn submission_server() -> Tern {
    let server = Tern::start(&smtp_config(
        r#"[aliases]
"sales@example.test" = ["bob@example.test"]
"team@example.test" = ["alice@example.test"]
"#,
    ));
    server.add_user("bob@example.test", "bob-pw");
    server.add_user("alice@example.test", "alice-pw");
    server
}

#[test]
fn authenticated_user_may_send_only_as_own_addresses() {
    let mut server = submission_server();
    let v = python_json(
        AS_BOB,
        &[
            &server.port_arg("submission"),
            "alice@example.test",
            "bob@example.test", // 0: another user: 553 5.7.1
            "team@example.test",
            "bob@example.test", // 1: someone else's alias: 553 5.7.1
            "lisa@outside.test",
            "bob@example.test", // 2: a foreign address: 553 5.7.1
            "sales@example.test",
            "Sales <sales@example.test>", // 3: own alias: allowed
            "BOB@example.test",
            "Bob <bob@example.test>", // 4: own address, case aside: allowed
            "",
            "bob@example.test", // 5: the null sender: allowed
        ],
    );
    let res = &v["res"];
    for i in 0..3 {
        assert_eq!(res[i][0][0], 553, "case {i}: {v}");
        assert!(
            res[i][0][1].as_str().unwrap().starts_with("5.7.1"),
            "case {i}: {v}"
        );
    }
    for i in 3..6 {
        assert_eq!(res[i][0][0], 250, "case {i} MAIL: {v}");
        assert_eq!(res[i][1][0], 250, "case {i} RCPT: {v}");
        assert_eq!(res[i][2][0], 250, "case {i} DATA: {v}");
    }
    let mail = server.mailbox("alice@example.test");
    assert_eq!(mail.len(), 3);
    assert!(contains(&mail[0], b"Subject: as sales@example.test"));
}

#[test]
fn forged_from_header_refused_at_end_of_data() {
    let mut server = submission_server();
    let v = python_json(
        AS_BOB,
        &[
            &server.port_arg("submission"),
            "bob@example.test",
            "Alice <alice@example.test>", // 0: forged From:
            "bob@example.test",
            "bob@example.test, alice@example.test", // 1: one of two forged
            "bob@example.test",
            "Bob <bob@example.test>", // 2: fine
        ],
    );
    let res = &v["res"];
    for i in 0..2 {
        assert_eq!(res[i][0][0], 250, "case {i}: {v}");
        assert_eq!(res[i][1][0], 250, "case {i}: {v}");
        assert_eq!(
            res[i][2][0], 550,
            "case {i}: forged From: must be refused at end of data: {v}"
        );
        assert!(
            res[i][2][1].as_str().unwrap().starts_with("5.7.1"),
            "case {i}: {v}"
        );
    }
    assert_eq!(res[2][2][0], 250, "{v}");
    let mail = server.mailbox("alice@example.test");
    assert_eq!(mail.len(), 1, "refused messages must not be stored");
    assert!(contains(&mail[0], b"From: Bob <bob@example.test>"));
}

#[test]
fn null_sender_accepted_on_mx() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let out = swaks(&[
        "--server",
        &server.addr("smtp"),
        "--from",
        "<>",
        "--to",
        "bob@example.test",
        "--helo",
        "mx.outside.test",
        "--header",
        "Subject: Delivery Status Notification",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed ({}):\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(stdout.contains("-> MAIL FROM:<>"), "{stdout}");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(mail.len(), 1);
    assert!(contains(&mail[0], b"Subject: Delivery Status Notification"));
}

#[test]
fn check_config_names_a_misspelt_key() {
    let server = Tern::new(&format!(
        "{BASE_CONFIG}\n[limits]\nmax_message_size = \"10MiB\"\n"
    ));
    let ok = server.cli(&["check-config"], "");
    assert!(
        ok.status.success(),
        "a good config must pass: {}",
        text(&ok.stderr)
    );

    let bad = config_file(
        &server,
        "typo.toml",
        &format!("{BASE_CONFIG}\n[limits]\nmax_mesage_size = \"10MiB\"\n"),
    );
    let (passed, stderr) = check_config(&bad);
    assert!(!passed, "a typo must fail check-config");
    assert!(
        stderr.contains("max_mesage_size"),
        "stderr must name the key: {stderr}"
    );
    assert!(stderr.trim().lines().count() >= 1, "{stderr}");

    // `tern serve` refuses the same file rather than running on a guess.
    let out = output_within(
        std::process::Command::new(tern_bin())
            .args(["serve", "--config"])
            .arg(&bad),
        READY_BOUND,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("max_mesage_size"),
        "{}",
        text(&out.stderr)
    );

    let top = config_file(
        &server,
        "top.toml",
        &format!("hostnme = \"x\"\n{BASE_CONFIG}"),
    );
    let (passed, stderr) = check_config(&top);
    assert!(!passed);
    assert!(stderr.contains("hostnme"), "{stderr}");

    // A duration too long for a clock (found by fuzzing: it overflowed)
    // is an error that names the key and its line, not a panic.
    let long = config_file(
        &server,
        "long.toml",
        &format!("{BASE_CONFIG}\n[limits]\ncommand_timeout = \"3333333300000000515h\"\n"),
    );
    let (passed, stderr) = check_config(&long);
    assert!(!passed, "{stderr}");
    assert!(
        stderr.contains("command_timeout: duration \"3333333300000000515h\" is too long"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Writes `contents` to `name` in the server's folder.
fn config_file(server: &Tern, name: &str, contents: &str) -> std::path::PathBuf {
    let path = server.dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// `tern check-config --config path`: did it pass, and what it said.
fn check_config(path: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(tern_bin())
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .unwrap();
    (out.status.success(), text(&out.stderr))
}
