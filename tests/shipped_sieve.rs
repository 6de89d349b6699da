//! The delivery hook with the shipped `sieve` and `subaddress` plugins in
//! the real server, mail sent with smtplib from an untrusted client, the
//! outside world an aiosmtpd sink (the smarthost): Sieve's fileinto with
//! imap4flags lands in the folder with the flags, discard keeps nothing,
//! reject is 550 5.7.1 at DATA for a sole recipient and a DSN to the
//! sender beside another recipient, vacation answers a sender once (with
//! Auto-Submitted and In-Reply-To) and never a list or the null sender, a
//! script failing at run time means the implicit keep, and `bob+lists@`
//! is filed into `lists` by the subaddress example. A Sieve redirect of
//! outside mail leaves from an SRS0 address, and a bounce to it is relayed
//! back to the original sender (a forged one refused). Over LMTP a reject
//! is the refusing recipient's own 550 5.7.1 among the others' 250s. Mailboxes are read
//! from the store once the server has stopped. Beside quotas and traces:
//! every copy Sieve files counts in the quota (copies that do not all fit
//! are queued, as plain copies are), LMTP answers a quota refusal and a
//! Sieve reject each in its recipient's reply, and `tern trace` tells the
//! plugin's decisions and each copy's folder.

mod harness;
use harness::{READY_BOUND, Sink, Tern, block_on, config, python, wait_for};

const BOB: &str = r#"require ["fileinto", "imap4flags", "reject", "mailbox"];
if header :contains "subject" "news" {
    fileinto :create :flags ["\\Seen", "$label1"] "lists";
} elsif header :contains "subject" "spam" {
    discard;
} elsif header :contains "subject" "unwanted" {
    reject "I do not want this";
} elsif header :contains "subject" "forward" {
    redirect "dave@remote.test";
}
"#;

const CAROL: &str = r#"require "vacation";
vacation :days 1 :subject "Away" "I am away until Monday.";
"#;

/// Compiles, but conflicts at run time (reject after fileinto).
const DAN: &str = r#"require ["fileinto", "reject"];
if header :contains "subject" "boom" {
    fileinto "x";
    reject "no";
}
"#;

#[test]
fn sieve_and_subaddress_at_the_delivery_hook() {
    let sink = Sink::start();
    let extra = format!(
        r#"[relay]
smarthost = "127.0.0.1:{}"
srs_secret = "a test secret, not for production"

[aliases]
"erin+lists@example.test" = ["erin@example.test"]

[[listen]]
protocol = "lmtp"
address = "{{ip}}:0"
[[listen]]
protocol = "managesieve"
address = "{{ip}}:0"

[[plugin]]
name = "sieve"
path = "{}"
timeout = "5s"
on_error = "continue"

[[plugin]]
name = "subaddress"
path = "{}"
config = {{ create = "yes" }}
"#,
        sink.port,
        test_plugins::shipped::SIEVE,
        test_plugins::shipped::SUBADDRESS,
    );
    let mut t = Tern::new(&config("mx.example.test", "example.test", &extra));
    for (user, script) in [
        ("bob", Some(BOB)),
        ("carol", Some(CAROL)),
        ("dan", Some(DAN)),
        ("erin", None),
    ] {
        let user = format!("{user}@example.test");
        t.add_user(&user, "pw");
        if let Some(script) = script {
            let file = t.dir.path().join("script.sieve");
            std::fs::write(&file, script).expect("script");
            for args in [
                vec!["sieve", "put", &user, "main", file.to_str().expect("path")],
                vec!["sieve", "activate", &user, "main"],
            ] {
                let out = t.cli(&args, "");
                assert!(
                    out.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    t.spawn();
    let out = python(&format!("SMTP = {}\n{}", t.port("smtp"), SEND_PY), &[]);
    assert!(out.trim().ends_with("ok"), "{out}");

    // The sink gets the one vacation reply, the one DSN and the redirected
    // copy, nothing else.
    let got = wait_for(
        "a vacation reply, a DSN and a redirect",
        READY_BOUND,
        || {
            let r = sink.received();
            (r.len() >= 3).then_some(r)
        },
    );
    t.wait_queue_empty(READY_BOUND);
    assert_eq!(sink.received().len(), 3, "{:?}", sink.received());
    let redirected = got
        .iter()
        .find(|(_, m)| m.contains("Subject: forward this"))
        .expect("redirected copy");
    assert_eq!(redirected.0, vec!["dave@remote.test".to_string()]);
    let reply = got
        .iter()
        .find(|(_, m)| m.contains("Subject: Away"))
        .expect("vacation reply");
    assert_eq!(reply.0, vec!["lisa@outside.test".to_string()]);
    for want in [
        "Auto-Submitted: auto-replied",
        "In-Reply-To: <first@outside.test>",
        "I am away until Monday.",
    ] {
        assert!(reply.1.contains(want), "{want} missing:\n{}", reply.1);
    }
    assert!(
        reply
            .1
            .lines()
            .any(|l| l.starts_with("From:") && l.contains("carol@example.test")),
        "{}",
        reply.1
    );
    let dsn = got
        .iter()
        .find(|(_, m)| m.contains("message/delivery-status"))
        .expect("DSN");
    assert_eq!(dsn.0, vec!["lisa@outside.test".to_string()]);
    for want in [
        "Final-Recipient: rfc822; bob@example.test",
        "Status: 5.7.1",
        "I do not want this",
    ] {
        assert!(dsn.1.contains(want), "{want} missing:\n{}", dsn.1);
    }
    let mut srs = String::new();
    for n in 1..=3 {
        let json =
            std::fs::read_to_string(sink.mail_dir().join(format!("{n}.json"))).expect("envelope");
        let eml =
            std::fs::read_to_string(sink.mail_dir().join(format!("{n}.eml"))).expect("message");
        let env: serde_json::Value = serde_json::from_str(&json).expect("json");
        let from = env["from"].as_str().unwrap_or_default().to_string();
        if eml.contains("forward this") {
            // Redirected mail from outside leaves from an SRS0 address of ours.
            assert!(
                from.starts_with("SRS0=") && from.ends_with("=outside.test=lisa@example.test"),
                "{from}"
            );
            srs = from;
        } else {
            assert_eq!(from, "<>", "replies and DSNs go from <>");
        }
    }
    // A bounce to the SRS address goes back to lisa; a forged one is refused.
    let forged = srs.replacen("SRS0=", "SRS0=X", 1);
    let out = python(
        &format!(
            "SMTP = {}\nSRS = {srs:?}\nFORGED = {forged:?}\n{}",
            t.port("smtp"),
            BOUNCE_PY
        ),
        &[],
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    // Over LMTP a refusal is that recipient's own reply, and no DSN.
    let out = python(
        &format!("LMTP = {}\n{LMTP_CLIENT_PY}{LMTP_PY}", t.port("lmtp")),
        &[],
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    let back = wait_for("the bounce relayed back", READY_BOUND, || {
        sink.received()
            .into_iter()
            .find(|(_, m)| m.contains("Subject: bounce back"))
    });
    assert_eq!(back.0, vec!["lisa@outside.test".to_string()]);
    t.wait_queue_empty(READY_BOUND);
    assert_eq!(sink.received().len(), 4);

    t.stop();
    let subjects = |user: &str, folder: &str| stored(&t, user, folder);
    let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        subjects("bob@example.test", "lists"),
        vec![("news today".to_string(), flags(&["\\Seen", "$label1"]))]
    );
    assert_eq!(
        subjects("bob@example.test", "INBOX"),
        vec![("hello bob".to_string(), flags(&[]))]
    );
    let carol: Vec<String> = subjects("carol@example.test", "INBOX")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(carol, ["first", "second", "list post", "bounce"]);
    assert_eq!(
        subjects("dan@example.test", "INBOX"),
        vec![("boom".to_string(), flags(&[]))]
    );
    assert_eq!(
        subjects("erin@example.test", "lists"),
        vec![("to erin+lists".to_string(), flags(&[]))]
    );
    let erin: Vec<String> = subjects("erin@example.test", "INBOX")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(erin, ["unwanted too", "unwanted lmtp"]);
    let log = t.log();
    assert!(
        log.contains("failed at run time"),
        "the broken script is logged:\n{log}"
    );
    assert!(
        !log.contains("but not run"),
        "the sieve plugin runs the scripts:\n{log}"
    );
}

/// The subjects and flags of `user`'s messages in `folder`, read from the
/// store of the stopped server.
fn stored(t: &Tern, user: &str, folder: &str) -> Vec<(String, Vec<String>)> {
    block_on(async {
        let store = t.open_store().await;
        let mut out = Vec::new();
        for m in store.messages(user, folder).await.unwrap_or_default() {
            let blob = store.read_blob(m.blob).await.expect("blob");
            let text = String::from_utf8_lossy(&blob).into_owned();
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_string();
            out.push((subject, m.flags.clone()));
        }
        out
    })
}

const SEND_PY: &str = r#"
import smtplib
s = smtplib.SMTP("127.0.0.1", SMTP)
s.ehlo("client.test")
def msg(to, subject, extra=""):
    return "From: lisa@outside.test\r\nTo: %s\r\nSubject: %s\r\n%s\r\nhello\r\n" % (to, subject, extra)
def send(sender, to, subject, extra=""):
    return s.sendmail(sender, to, msg(", ".join(to), subject, extra))

L = "lisa@outside.test"
assert send(L, ["bob@example.test"], "news today") == {}
assert send(L, ["bob@example.test"], "spam spam") == {}
assert send(L, ["bob@example.test"], "hello bob") == {}
assert send(L, ["bob@example.test"], "forward this") == {}
# Reject, bob the only recipient: refused at DATA with the script's reason.
try:
    send(L, ["bob@example.test"], "unwanted")
    raise SystemExit("reject was accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 550 and e.smtp_error.decode().startswith("5.7.1 I do not want this"), e
# Beside erin: accepted, erin keeps it, lisa gets a DSN about bob.
assert send(L, ["bob@example.test", "erin@example.test"], "unwanted too") == {}
# Vacation: the first message is answered, the second (same sender) not,
# nor a list post, nor mail from the null sender.
assert send(L, ["carol@example.test"], "first", "Message-ID: <first@outside.test>\r\n") == {}
assert send(L, ["carol@example.test"], "second") == {}
assert send("news@lists.test", ["carol@example.test"], "list post", "List-Id: <news.lists.test>\r\n") == {}
assert send("", ["carol@example.test"], "bounce") == {}
# A script failing at run time: the implicit keep.
assert send(L, ["dan@example.test"], "boom") == {}
# No script: the subaddress plugin files it.
assert send(L, ["erin+lists@example.test"], "to erin+lists") == {}
s.quit()
print("ok")
"#;

const BOUNCE_PY: &str = r#"
import smtplib
s = smtplib.SMTP("127.0.0.1", SMTP)
s.ehlo("bouncer.test")
s.mail("")
code, msg = s.rcpt(FORGED)
assert code == 550 and msg.decode().startswith("5.1.1"), (code, msg)
s.rset()
assert s.sendmail("", [SRS], "From: MAILER-DAEMON@remote.test\r\nSubject: bounce back\r\n\r\nundeliverable\r\n") == {}
s.quit()
print("ok")
"#;

/// An LMTP client: `reply()` reads one reply, `cmd(line)` sends a line and
/// reads its reply.
const LMTP_CLIENT_PY: &str = r#"
import socket
s = socket.create_connection(("127.0.0.1", LMTP))
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode()
        if line[3:4] != "-":
            return line.strip()
def cmd(line):
    s.sendall(line.encode() + b"\r\n")
    return reply()
"#;

const LMTP_PY: &str = r#"
assert reply().startswith("220")
assert cmd("LHLO client.test").startswith("250")
assert cmd("MAIL FROM:<lisa@outside.test>").startswith("250")
assert cmd("RCPT TO:<bob@example.test>").startswith("250")
assert cmd("RCPT TO:<erin@example.test>").startswith("250")
assert cmd("DATA").startswith("354")
s.sendall(b"From: lisa@outside.test\r\nSubject: unwanted lmtp\r\n\r\nhello\r\n.\r\n")
bob, erin = reply(), reply()
assert bob.startswith("550 5.7.1 I do not want this"), bob
assert erin.startswith("250"), erin
cmd("QUIT")
print("ok")
"#;

/// Files twice (lists and INBOX) or refuses, for the quota test.
const TWICE: &str = r#"require ["fileinto", "reject", "mailbox"];
if header :contains "subject" "twice" {
    fileinto :create "lists";
    keep;
} elsif header :contains "subject" "unwanted" {
    reject "not for me";
}
"#;

/// `tern ARGS…`: its standard output, after it succeeded.
fn cli_ok(t: &Tern, args: &[&str]) -> String {
    let out = t.cli(args, "");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bytes `user` uses, from `tern user quota`.
fn used_bytes(t: &Tern, user: &str) -> (u64, String) {
    let shown = cli_ok(t, &["user", "quota", user]);
    let bytes = shown
        .split("using ")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no usage in {shown}"));
    (bytes, shown)
}

/// A message of `size` bytes or a little more.
fn sized(subject: &str, mid: &str, size: usize) -> String {
    let mut m =
        format!("From: lisa@outside.test\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\r\n");
    while m.len() < size {
        m.push_str(&"y".repeat(78));
        m.push_str("\r\n");
    }
    m
}

/// The delivery hook beside quotas and decision traces: each copy Sieve
/// files counts in the user's quota, copies that do not all fit are
/// queued as main's plain copies are (and delivered once there is room
/// for one), over LMTP a Sieve reject and a quota refusal are each their
/// recipient's own reply among a 250, and the trace tells the plugin's
/// decisions and every copy's folder.
#[test]
fn sieve_copies_count_in_quotas_and_are_traced() {
    let extra = format!(
        r#"[users]
default_quota = "8KiB"

[[listen]]
protocol = "lmtp"
address = "{{ip}}:0"

[[plugin]]
name = "sieve"
path = "{}"
timeout = "5s"
"#,
        test_plugins::shipped::SIEVE,
    );
    let mut t = Tern::new(&config("mx.example.test", "example.test", &extra));
    for user in ["bob", "carol", "dave", "frank"] {
        let user = format!("{user}@example.test");
        t.add_user(&user, "pw");
        if user.starts_with("bob") || user.starts_with("frank") {
            let file = t.dir.path().join("script.sieve");
            std::fs::write(&file, TWICE).expect("script");
            cli_ok(
                &t,
                &["sieve", "put", &user, "main", file.to_str().expect("path")],
            );
            cli_ok(&t, &["sieve", "activate", &user, "main"]);
        }
    }
    t.spawn();
    cli_ok(&t, &["user", "quota", "carol@example.test", "1KiB"]);

    // Filed twice: two copies counted.
    let first = sized("twice", "twice-1@outside.test", 2500);
    let out = python(
        &format!("SMTP = {}\nMSG = {first:?}\n{SEND_ONE_PY}", t.port("smtp")),
        &[],
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    let (used, shown) = used_bytes(&t, "bob@example.test");
    assert!(shown.contains("in 2 messages"), "{shown}");
    // One copy of the next fits, two do not: queued, then delivered once
    // (as a plain copy is when it is over quota).
    let prefix = used / 2 - first.len() as u64;
    let room = 8192 - used;
    let size = (room * 3 / 4).saturating_sub(prefix) as usize;
    let second = sized("twice again", "twice-2@outside.test", size);
    let out = python(
        &format!("SMTP = {}\nMSG = {second:?}\n{SEND_ONE_PY}", t.port("smtp")),
        &[],
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    t.wait_queue_empty(READY_BOUND);
    let (_, shown) = used_bytes(&t, "bob@example.test");
    assert!(shown.contains("in 3 messages"), "{shown}");

    // LMTP: carol's quota (552), frank's script (550) and dave's 250.
    let out = python(
        &format!("LMTP = {}\n{LMTP_CLIENT_PY}{LMTP_MIXED_PY}", t.port("lmtp")),
        &[],
    );
    assert!(out.trim().ends_with("ok"), "{out}");

    let trace = |id: &str| cli_ok(&t, &["trace", id]);
    let one = trace("<twice-1@outside.test>");
    for want in [
        "store    plugin sieve: fileinto <bob@example.test> [bob@example.test] — lists",
        "store    plugin sieve: keep <bob@example.test> [bob@example.test] — INBOX",
        "store    folder: lists [bob@example.test]",
        "store    folder: inbox [bob@example.test]",
    ] {
        assert!(one.contains(want), "{want} missing:\n{one}");
    }
    let two = trace("<twice-2@outside.test>");
    for want in [
        "store    plugin sieve: fileinto",
        "store    queue: queued <bob@example.test>",
        "delivery ",
    ] {
        assert!(two.contains(want), "{want} missing:\n{two}");
    }
    assert!(!two.contains("folder: lists"), "{two}");
    let mixed = trace("<mixed-1@outside.test>");
    for want in [
        "store    plugin sieve: reject <frank@example.test> [frank@example.test] \"550 5.7.1 not for me\"",
        "store    folder: inbox [dave@example.test]",
    ] {
        assert!(mixed.contains(want), "{want} missing:\n{mixed}");
    }
    assert!(
        mixed.contains(
            "data     quota: reject <carol@example.test> [carol@example.test] \"552 5.2.2"
        ),
        "{mixed}"
    );
    assert!(!mixed.contains("folder: inbox [carol"), "{mixed}");

    t.stop();
    let subjects = |user: &str, folder: &str| -> Vec<String> {
        stored(&t, user, folder)
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    };
    assert_eq!(subjects("bob@example.test", "lists"), ["twice"]);
    assert_eq!(
        subjects("bob@example.test", "INBOX"),
        ["twice", "twice again"]
    );
    assert_eq!(subjects("dave@example.test", "INBOX"), ["unwanted mixed"]);
    assert!(subjects("carol@example.test", "INBOX").is_empty());
    assert!(subjects("frank@example.test", "INBOX").is_empty());
}

const SEND_ONE_PY: &str = r#"
import smtplib
s = smtplib.SMTP("127.0.0.1", SMTP)
s.ehlo("client.test")
assert s.sendmail("lisa@outside.test", ["bob@example.test"], MSG) == {}
s.quit()
print("ok")
"#;

const LMTP_MIXED_PY: &str = r#"
assert reply().startswith("220")
assert cmd("LHLO client.test").startswith("250")
assert cmd("MAIL FROM:<lisa@outside.test>").startswith("250")
for to in ["carol", "frank", "dave"]:
    assert cmd("RCPT TO:<%s@example.test>" % to).startswith("250")
assert cmd("DATA").startswith("354")
body = b"y" * 78 + b"\r\n"
s.sendall(b"From: lisa@outside.test\r\nSubject: unwanted mixed\r\nMessage-ID: <mixed-1@outside.test>\r\n\r\n" + body * 20 + b".\r\n")
carol, frank, dave = reply(), reply(), reply()
assert carol.startswith("552 5.2.2"), carol
assert frank.startswith("550 5.7.1 not for me"), frank
assert dave.startswith("250"), dave
cmd("QUIT")
print("ok")
"#;
