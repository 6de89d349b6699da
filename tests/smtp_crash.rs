//! Durability and the server's life cycle: a message acknowledged with 250
//! survives an immediate SIGKILL; SIGTERM lets a transaction in flight finish
//! and tells idle clients 421; the store comes back after restarts; `tern
//! user add|list|passwd|del` work with the server stopped and while it runs.

mod harness;

use harness::*;

#[test]
fn accepted_message_survives_sigkill() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let mut sent = Vec::new();
    for round in 0..3 {
        let body =
            format!("Subject: durable {round}\r\n\r\nmust survive kill -9, round {round}\r\n")
                .into_bytes();
        let mut s = Smtp::ready(server.port("smtp"));
        let r = s.send_message("lisa@outside.test", &["bob@example.test"], &body);
        // Kill the moment the 250 is read: no QUIT, no drain, no flush.
        server.kill9();
        r.expect(250, "2.0.0");
        sent.push((queue_id(&r.text()), body));
        server.spawn();
    }
    // One more after the last restart, so the store still takes mail.
    let mut s = Smtp::ready(server.port("smtp"));
    s.send_message(
        "lisa@outside.test",
        &["bob@example.test"],
        b"Subject: after\r\n\r\nx\r\n",
    )
    .expect(250, "2.0.0");
    s.cmd("QUIT");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(
        mail.len(),
        4,
        "every acknowledged message must be in the mailbox"
    );
    for (i, (qid, body)) in sent.iter().enumerate() {
        let added = added_headers(&mail[i], body);
        assert!(added.contains(&format!("id {qid}")), "message {i}: {added}");
    }
    let mut uids_unique = sent.iter().map(|(q, _)| q.clone()).collect::<Vec<_>>();
    uids_unique.dedup();
    assert_eq!(
        uids_unique.len(),
        3,
        "queue ids must not repeat across restarts: {sent:?}"
    );
}

#[test]
fn sigkill_mid_data_keeps_nothing_and_restarts_clean() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    s.cmd("DATA").expect(354, "2.0.0");
    let mut half = b"Subject: never finished\r\n\r\n".to_vec();
    half.resize(200_000, b'z');
    s.send(&half);
    s.send(b"\r\nmore\r\n"); // no end of data: the transaction is still open
    server.kill9();
    server.spawn();
    let mut s = Smtp::ready(server.port("smtp"));
    s.send_message(
        "lisa@outside.test",
        &["bob@example.test"],
        b"Subject: next\r\n\r\nx\r\n",
    )
    .expect(250, "2.0.0");
    s.cmd("QUIT");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(mail.len(), 1, "only the finished message");
    added_headers(&mail[0], b"Subject: next\r\n\r\nx\r\n");
}

#[test]
fn sigterm_finishes_the_transaction_in_flight_and_tells_idle_clients() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let mut idle = Smtp::ready(server.port("smtp"));
    let mut busy = Smtp::ready(server.port("smtp"));
    busy.cmd("MAIL FROM:<lisa@outside.test>")
        .expect(250, "2.1.0");
    busy.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    server.signal("TERM");
    // The idle session is told the service is closing.
    idle.reply().expect(421, "4.3.2");
    assert!(idle.closed());
    // The one in the middle of a transaction may finish it.
    busy.cmd("DATA").expect(354, "2.0.0");
    busy.send(b"Subject: in flight\r\n\r\nfinished during drain\r\n.\r\n");
    busy.reply().expect(250, "2.0.0");
    let after = busy.try_reply();
    assert!(
        after.as_ref().is_none_or(|r| r.code == 421),
        "after the transaction: {after:?}"
    );
    let mail = server.mailbox("bob@example.test"); // waits for a clean exit (status 0)
    assert_eq!(mail.len(), 1);
    added_headers(
        &mail[0],
        b"Subject: in flight\r\n\r\nfinished during drain\r\n",
    );
}

#[test]
fn user_admin_with_server_stopped_and_running() {
    let mut server = Tern::new(BASE_CONFIG);
    server.add_user("carol@example.test", "first"); // no server: straight to the store
    let dup = server.cli(
        &["user", "add", "carol@example.test", "--password-stdin"],
        "again\n",
    );
    assert!(!dup.status.success(), "adding a user twice must fail");
    server.spawn();
    let list = server.cli(&["user", "list"], "");
    assert!(list.status.success());
    assert_eq!(
        text(&list.stdout).lines().collect::<Vec<_>>(),
        ["carol@example.test"]
    );
    let pw = server.cli(
        &["user", "passwd", "carol@example.test", "--password-stdin"],
        "second\n",
    );
    assert!(pw.status.success(), "{}", text(&pw.stderr));
    let v = python_json(
        r#"
s = smtplib.SMTP_SSL("127.0.0.1", PORT, timeout=30, context=CTX)
s.ehlo("laptop.example.test")
ok = r(s.login("carol@example.test", "second"))
s.quit()
out(ok=ok)
"#,
        &[&server.port_arg("submissions")],
    );
    assert_eq!(v["ok"][0], 235, "the new password must work: {v}");
    let del = server.cli(&["user", "del", "carol@example.test"], "");
    assert!(del.status.success(), "{}", text(&del.stderr));
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("RCPT TO:<carol@example.test>").expect(550, "5.1.1");
    s.cmd("QUIT");
    server.stop();
    let list = server.cli(&["user", "list"], "");
    assert!(
        list.status.success() && text(&list.stdout).trim().is_empty(),
        "{}",
        text(&list.stdout)
    );
}
