//! "Why did this message go there?" (issue 21) through the real server:
//! a refused RCPT, a message the shipped `content` filter sends to Junk
//! and a message relayed through a smarthost (the aiosmtpd sink) each
//! leave a trace that `tern trace` prints (by queue id, Message-ID, or
//! client and window; `--json` parses), web mail's "Why is this here?"
//! shows a reader only their own part, `tern trace` reads the store of a
//! stopped server too, and `[trace] keep` forgets refused attempts. The
//! server's own refusals (a full mailbox at RCPT, too many recipients, a
//! connection limit, a protocol error and the 421 after too many, AUTH
//! required, a failed AUTH, REQUIRETLS without TLS, a filter that cannot
//! start) are traced, and a message's story stays within its bound
//! however many recipients it has.

mod harness;
use harness::{Sink, Tern, wait_for, webmail_run as run, webmail_server as server};
use std::time::Duration;

/// `tern trace ARGS`: its standard output, after it succeeded.
fn trace(t: &Tern, args: &[&str]) -> String {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    let out = t.cli(&all, "");
    assert!(
        out.status.success(),
        "tern trace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SEND: &str = r#"
def msg(mid, subject, to, sender="lisa@outside.test"):
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{mid}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nhello\r\n").encode()
# A refused RCPT (no such user), then QUIT: a refused attempt.
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("spammer.test"); s.mail("x@outside.test")
code, _ = s.rcpt("nobody@example.test"); assert code == 550, code
s.quit()
# To bob and carol (To: names bob only): the content filter junks it.
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("mx.outside.test")
s.sendmail("lisa@outside.test", ["bob@example.test", "carol@example.test"],
           msg("junk-1@outside.test", "You are a LOTTERY winner", "bob@example.test"))
s.quit()
# Relayed: bob submits to a far address; the smarthost takes it.
s = smtplib.SMTP("127.0.0.1", SUB); s.ehlo("laptop"); s.login("bob@example.test", "bob-pw")
s.sendmail("bob@example.test", ["alice@far.test"], msg("relay-1@example.test", "hello far", "alice@far.test", "bob@example.test"))
s.quit()
print("sent")
"#;

#[test]
fn refused_junked_and_relayed_mail_is_explained() {
    let sink = Sink::start();
    let content = test_plugins::shipped::CONTENT;
    let mut t = server(&format!(
        "[relay]\nsmarthost = \"127.0.0.1:{}\"\nsmarthost_tls = \"none\"\n\n\
         [[plugin]]\nname = \"content\"\npath = \"{content}\"\ntimeout = \"5s\"\n\
         config = {{ subject_contains = \"lottery winner\" }}\n",
        sink.port
    ));
    let out = run(&t, SEND);
    assert!(out.trim().ends_with("sent"), "{out}");
    t.wait_queue_empty(Duration::from_secs(60));
    assert_eq!(sink.received().len(), 1, "the smarthost took the message");

    // The refused attempt, by client and window.
    let refused = trace(&t, &["--client", "127.0.0.1", "--since", "1h"]);
    assert!(
        refused.contains("refused attempt (nothing kept)"),
        "{refused}"
    );
    assert!(refused.contains("helo spammer.test"), "{refused}");
    assert!(
        refused.contains("rcpt     recipient check: reject <nobody@example.test> \"550 5.1.1"),
        "{refused}"
    );

    // The junked message, by Message-ID: the filter's verdict and each
    // recipient's folder.
    let junked = trace(&t, &["<junk-1@outside.test>"]);
    assert!(
        junked.contains("data     plugin content: quarantine"),
        "{junked}"
    );
    assert!(
        junked.contains("store    folder: junk [bob@example.test]"),
        "{junked}"
    );
    assert!(
        junked.contains("store    folder: junk [carol@example.test]"),
        "{junked}"
    );
    let qid = junked
        .split_whitespace()
        .nth(1)
        .expect("message QUEUE-ID")
        .to_string();
    assert_eq!(trace(&t, &[&qid]), junked, "by queue id, the same story");

    // The relayed message: the route, the queue, the attempt that sent it.
    let relayed = trace(&t, &["relay-1@example.test"]);
    assert!(
        relayed.contains("mail     sender check: accept"),
        "{relayed}"
    );
    assert!(
        relayed.contains("rcpt     router: route <alice@far.test>"),
        "{relayed}"
    );
    assert!(
        relayed.contains("store    queue: queued <alice@far.test>"),
        "{relayed}"
    );
    assert!(
        relayed.contains("delivery queue: sent <alice@far.test>"),
        "{relayed}"
    );
    assert!(relayed.contains("attempt 1, via "), "{relayed}");

    // --json is for tools: an array of traces with their events in order.
    let json: serde_json::Value =
        serde_json::from_str(&trace(&t, &["relay-1@example.test", "--json"])).expect("JSON");
    let events = json[0]["events"].as_array().expect("events");
    let verdicts: Vec<&str> = events
        .iter()
        .filter_map(|e| e["verdict"].as_str())
        .collect();
    assert_eq!(verdicts.last(), Some(&"sent"), "{json}");
    assert_eq!(json[0]["message_id"], "relay-1@example.test");
    // The id as `tern queue list` and the text show it.
    let relayed_id = relayed.split_whitespace().nth(1).expect("message QUEUE-ID");
    assert_eq!(json[0]["queue_id"], relayed_id, "{json}");
    assert!(json[0]["id"].is_u64(), "{json}");

    // An unknown id is an error naming it.
    let out = t.cli(&["trace", "0000FFFFFF"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no trace of 0000FFFFFF"));

    // Web mail: bob sees why the message is in Junk — his part only.
    let out = run(
        &t,
        r#"
c = Client(HTTP); c.login("bob", "bob-pw")
uid = c.uids("Junk")[0]
page = c.get(f"/message?folder=Junk&uid={uid}").text
why = page[page.index('<details class="why"'):]
why = why[:why.index("</details>")]
assert "Why is this here?" in why, why
assert "plugin content" in why and "quarantine" in why, why
assert "folder" in why and "junk" in why, why
assert "carol" not in why, why          # never another recipient's part
assert "reason:" not in why, why        # never a plugin's details
assert "nobody" not in why and "spammer" not in why, why
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");

    // With the server stopped, tern trace reads the store itself.
    t.stop();
    assert_eq!(trace(&t, &[&qid]), junked);
}

#[test]
fn refused_attempts_are_forgotten_after_trace_keep() {
    let t = server("[trace]\nkeep = \"5s\"\n");
    let out = run(
        &t,
        r#"
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("x.test"); s.mail("x@outside.test")
code, _ = s.rcpt("nobody@example.test"); assert code == 550, code
s.quit()
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    // Kept once the session has ended; then forgotten.
    wait_for(
        "the refused attempt's trace",
        Duration::from_secs(30),
        || {
            let text = trace(&t, &["--client", "127.0.0.1"]);
            text.contains("recipient check: reject").then_some(())
        },
    );
    wait_for(
        "the refused attempt to expire",
        Duration::from_secs(60),
        || {
            trace(&t, &["--client", "127.0.0.1"])
                .contains("no decisions recorded")
                .then_some(())
        },
    );
}

/// The lines of `text` that tell one decision (they start with a time).
fn event_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("  20")).collect()
}

#[test]
fn the_servers_own_refusals_are_traced() {
    let t = server("[limits]\nmax_recipients = 2\nmax_errors = 2\n");
    // carol holds a message, then her quota is below what she holds.
    let out = run(
        &t,
        r#"
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("mx.outside.test")
s.sendmail("lisa@outside.test", ["carol@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
s.quit()
print("sent")
"#,
    );
    assert!(out.trim().ends_with("sent"), "{out}");
    let out = t.cli(&["user", "quota", "carol@example.test", "1B"], "");
    assert!(out.status.success(), "{out:?}");
    let out = run(
        &t,
        r#"
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("full.test"); s.mail("x@outside.test")
code, _ = s.rcpt("carol@example.test"); assert code == 452, code
s.quit()
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("many.test"); s.mail("y@outside.test")
for who in ["bob", "bob", "carol"]:
    code, _ = s.rcpt(f"{who}@example.test")
assert code == 452, code
s.quit()
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("confused.test")
code, _ = s.docmd("RCPT TO:<bob@example.test>"); assert code == 503, code
s.quit()
s = smtplib.SMTP("127.0.0.1", SUB); s.ehlo("anon.test")
code, _ = s.docmd("MAIL FROM:<z@example.test>"); assert code == 530, code
s.quit()
s = smtplib.SMTP("127.0.0.1", SUB); s.ehlo("guess.test")
wrong = base64.b64encode(b"\0bob@example.test\0wrong").decode()
code, _ = s.docmd("AUTH PLAIN " + wrong); assert code == 535, code
s.quit()
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("plain.test")
code, _ = s.docmd("MAIL FROM:<x@outside.test> REQUIRETLS"); assert code == 530, code
s.quit()
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("noisy.test")
code, _ = s.docmd("FOO"); assert code == 500, code
code, _ = s.docmd("BAR"); assert code == 500, code
code, _ = s.getreply(); assert code == 421, code
s.close()
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    let wanted = [
        "helo full.test",
        "rcpt     quota: tempfail <carol@example.test> [carol@example.test] \"452 4.2.2",
        "helo many.test",
        "rcpt     recipient limit: tempfail <carol@example.test> \"452 4.5.3 Error: too many recipients\" — limits.max_recipients = 2",
        "helo confused.test",
        "rcpt     protocol: reject \"503 5.5.1 Error: need MAIL command\"",
        "helo anon.test",
        "mail     submission auth: reject \"530 5.7.0 Authentication required\"",
        "helo guess.test",
        "helo     auth: reject \"535 5.7.8 Authentication credentials invalid\"",
        "helo plain.test",
        "mail     requiretls: reject \"530 5.7.10 REQUIRETLS needs a TLS session\"",
        "helo noisy.test",
        "helo     protocol: reject \"500 5.5.2 Error: command not recognized\"",
        "helo     error limit: disconnect \"421 4.7.0 mx.example.test Error: too many errors\"",
    ];
    // Each is kept when its session has ended, which the client does not
    // wait for.
    wait_for(
        "the seven refused attempts",
        Duration::from_secs(30),
        || {
            let refused = t.client_trace("127.0.0.1");
            wanted.iter().all(|w| refused.contains(w)).then_some(())
        },
    );
    let refused = t.client_trace("127.0.0.1");
    // In the order they happened.
    let at: Vec<usize> = wanted.iter().filter_map(|w| refused.find(w)).collect();
    assert!(at.windows(2).all(|p| p[0] < p[1]), "{refused}");
}

#[test]
fn a_connection_over_the_limit_is_traced() {
    for (limit, why) in [
        (
            "max_connections_per_client",
            "too many connections from this address",
        ),
        ("max_connections", "too many connections"),
    ] {
        let t = server(&format!("[limits]\n{limit} = 1\n"));
        // The first session holds the one place while the second
        // connects.
        let out = run(
            &t,
            r#"
import socket
first = smtplib.SMTP("127.0.0.1", SMTP); first.ehlo("first.test")
second = socket.create_connection(("127.0.0.1", SMTP))
line = second.makefile("rb").readline()
assert line.startswith(b"421 "), line
second.close(); first.quit()
print("ok")
"#,
        );
        assert!(out.trim().ends_with("ok"), "{limit}: {out}");
        let wanted = format!(
            "connect  limits.{limit}: tempfail \"421 4.7.0 Too many connections, try again later\" — {why}"
        );
        // Kept after the 421 is sent, which the client does not wait for.
        wait_for("the refused connection", Duration::from_secs(30), || {
            t.client_trace("127.0.0.1").contains(&wanted).then_some(())
        });
        let refused = t.client_trace("127.0.0.1");
        assert!(
            refused.contains("refused attempt (nothing kept)"),
            "{limit}: {refused}"
        );
    }
}

#[test]
fn a_message_to_many_recipients_keeps_a_bounded_story() {
    let sink = Sink::start();
    let mut t = server(&format!(
        "[relay]\nsmarthost = \"127.0.0.1:{}\"\nsmarthost_tls = \"none\"\n",
        sink.port
    ));
    let out = run(
        &t,
        r#"
to = [f"r{i}@far.test" for i in range(90)]
s = smtplib.SMTP("127.0.0.1", SUB); s.ehlo("laptop"); s.login("bob@example.test", "bob-pw")
s.sendmail("bob@example.test", to, b"Message-ID: <many-1@example.test>\r\nSubject: hi\r\n\r\nhello\r\n")
s.quit()
print("sent")
"#,
    );
    assert!(out.trim().ends_with("sent"), "{out}");
    t.wait_queue_empty(Duration::from_secs(60));
    let story = trace(&t, &["many-1@example.test"]);
    let lines = event_lines(&story);
    // The first half (the session's start) and the newest (the last
    // deliveries); the rest counted.
    assert_eq!(lines.len(), 64, "{story}");
    assert!(
        lines[0].contains("mail     sender check: accept"),
        "{story}"
    );
    assert!(lines[63].contains("delivery queue: sent <r"), "{story}");
    let sent = lines
        .iter()
        .filter(|l| l.contains("delivery queue: sent"))
        .count();
    assert_eq!(sent, 32, "{story}");
    assert!(
        story.contains("events left out to keep the trace small"),
        "{story}"
    );
    t.stop();
    assert_eq!(
        trace(&t, &["many-1@example.test"]),
        story,
        "read from the store, the same"
    );
}

#[test]
fn a_filter_that_cannot_start_is_traced_with_its_on_error_verdict() {
    // Less memory than the component starts with: every instance fails
    // before its on-data is called. (The second plugin, the same with its
    // memory, makes the instance pool large enough to load the first.)
    let content = test_plugins::shipped::CONTENT;
    let t = server(&format!(
        "[[plugin]]\nname = \"content\"\npath = \"{content}\"\ntimeout = \"5s\"\n\
         max_memory = \"64KiB\"\non_error = \"reject\"\n\
         [[plugin]]\nname = \"roomy\"\npath = \"{content}\"\ntimeout = \"5s\"\n"
    ));
    let out = run(
        &t,
        r#"
s = smtplib.SMTP("127.0.0.1", SMTP); s.ehlo("mx.outside.test")
try:
    s.sendmail("lisa@outside.test", ["bob@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
    raise AssertionError("accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 550, e
s.quit()
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    let wanted = "data     plugin content: reject \"550 5.7.1 Rejected by local policy\" — the plugin failed: cannot instantiate";
    wait_for("the refused message", Duration::from_secs(30), || {
        t.client_trace("127.0.0.1").contains(wanted).then_some(())
    });
}
