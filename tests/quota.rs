//! Per-user quotas through the real binary (DESIGN.md, `tern user quota`):
//! `[users] default_quota` and the per-user override set with the CLI
//! while the server runs; SMTP and LMTP refusing a full mailbox per
//! recipient (452 4.2.2 at RCPT or at the end of data, 552 5.2.2 for a
//! message larger than the whole quota) with the other recipients
//! served, and SMTP's queued copy delivered once there is room; IMAP's
//! QUOTA (GETQUOTAROOT, GETQUOTA, STORAGE) and `NO [OVERQUOTA]` for
//! APPEND and COPY while MOVE and POP3 go on; web mail's usage line.

mod harness;
mod imap_common;
use harness::{Smtp, Tern, python};
use imap_common::{imap_config, run};
use std::path::Path;
use std::time::Duration;

/// A message of about `size` bytes (before the headers Tern adds).
fn message(subject: &str, size: usize) -> Vec<u8> {
    let mut m = format!("From: lisa@outside.test\r\nSubject: {subject}\r\n\r\n").into_bytes();
    while m.len() + 80 < size {
        m.extend_from_slice(&[b'x'; 78]);
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// `tern user quota ARGS…`: its output, which must be a success.
fn quota_cli(t: &Tern, args: &[&str]) -> String {
    let mut all = vec!["user", "quota"];
    all.extend_from_slice(args);
    let out = t.cli(&all, "");
    assert!(
        out.status.success(),
        "tern user quota {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn server(extra: &str) -> Tern {
    let t = Tern::start(&imap_config(&format!(
        "[users]\ndefault_quota = \"8KiB\"\n{extra}"
    )));
    for user in ["bob", "carol", "dave"] {
        t.add_user(&format!("{user}@example.test"), "pw");
    }
    t
}

#[test]
fn smtp_and_lmtp_refuse_full_mailboxes_per_recipient_and_lose_nothing() {
    let mut t = server("");
    // The override, set through the running server; "none" lifts the default.
    let shown = quota_cli(&t, &["carol@example.test", "1MiB"]);
    assert!(
        shown.contains("quota 1 MiB (1048576 bytes) (own)"),
        "{shown}"
    );
    let shown = quota_cli(&t, &["dave@example.test", "none"]);
    assert!(shown.contains("quota unlimited (own)"), "{shown}");
    let shown = quota_cli(&t, &["bob@example.test"]);
    assert!(
        shown.contains("quota 8 KiB (8192 bytes) (default), using 0 B (0 bytes) in 0 messages"),
        "{shown}"
    );
    for bad in [
        ["bob@example.test", "lots"],
        ["nobody@example.test", "1MiB"],
    ] {
        let out = t.cli(&["user", "quota", bad[0], bad[1]], "");
        assert!(!out.status.success(), "{bad:?} accepted");
    }

    let mut s = Smtp::ready(t.port("smtp"));
    // At RCPT: a SIZE larger than the whole quota, then one that no longer fits.
    s.cmd("MAIL FROM:<lisa@outside.test> SIZE=9000")
        .expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(552, "5.2.2");
    s.cmd("RCPT TO:<carol@example.test>").expect(250, "2.1.5");
    s.cmd("RCPT TO:<dave@example.test>").expect(250, "2.1.5");
    s.cmd("RSET").expect(250, "2.0.0");
    s.send_message(
        "lisa@outside.test",
        &["bob@example.test"],
        &message("first", 5000),
    )
    .expect(250, "2.0.0");
    let shown = quota_cli(&t, &["bob@example.test"]);
    assert!(shown.contains("in 1 messages"), "{shown}");
    s.cmd("MAIL FROM:<lisa@outside.test> SIZE=4000")
        .expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(452, "4.2.2");
    s.cmd("RCPT TO:<carol@example.test>").expect(250, "2.1.5");
    s.cmd("RSET").expect(250, "2.0.0");
    // At the end of data (no SIZE given): SMTP's one answer refuses only
    // when every recipient is refused...
    let reply = s.send_message(
        "lisa@outside.test",
        &["bob@example.test"],
        &message("second", 4000),
    );
    reply.expect(452, "4.2.2");
    // ...else it accepts, and bob's copy waits in the queue.
    s.send_message(
        "lisa@outside.test",
        &["bob@example.test", "carol@example.test"],
        &message("third", 4000),
    )
    .expect(250, "2.0.0");
    let queue = t.queue_list();
    assert!(queue.contains("bob@example.test"), "{queue}");

    // LMTP answers each recipient.
    let (mut l, _) = Smtp::connect(t.port("lmtp"));
    assert_eq!(l.cmd("LHLO client.outside.test").code, 250);
    let mut lmtp = |to: [&str; 2], msg: Vec<u8>| -> Vec<(u16, String)> {
        l.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
        for rcpt in to {
            l.cmd(&format!("RCPT TO:<{rcpt}>")).expect(250, "2.1.5");
        }
        l.cmd("DATA").expect(354, "2.0.0");
        l.send(&[msg, b".\r\n".to_vec()].concat());
        to.iter()
            .map(|_| l.reply())
            .map(|r| (r.code, r.enhanced().unwrap_or("").to_string()))
            .collect()
    };
    let replies = lmtp(
        ["bob@example.test", "carol@example.test"],
        message("fourth", 4000),
    );
    assert_eq!(replies, [(452, "4.2.2".into()), (250, "2.0.0".into())]);
    let replies = lmtp(
        ["bob@example.test", "dave@example.test"],
        message("fifth", 9000),
    );
    assert_eq!(replies, [(552, "5.2.2".into()), (250, "2.0.0".into())]);

    // Room made: the queued copy is delivered, nothing was lost.
    quota_cli(&t, &["bob@example.test", "1MiB"]);
    let out = t.cli(&["queue", "flush"], "");
    assert!(out.status.success());
    t.wait_queue_empty(Duration::from_secs(60));
    let subjects = |mail: Vec<Vec<u8>>| -> Vec<String> {
        mail.iter()
            .filter_map(|m| {
                String::from_utf8_lossy(m)
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect()
    };
    assert_eq!(subjects(t.mailbox("bob@example.test")), ["first", "third"]);
    assert_eq!(
        subjects(t.mailbox("carol@example.test")),
        ["third", "fourth"]
    );
    assert_eq!(subjects(t.mailbox("dave@example.test")), ["fifth"]);
}

#[test]
fn imap_reports_the_quota_and_refuses_append_and_copy_over_it() {
    let t = server("");
    quota_cli(&t, &["dave@example.test", "none"]);
    let out = run(
        &t,
        r#"
import poplib
r = Raw()
caps = r.ok("CAPABILITY")[0].split()
assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps, caps
got = r.ok("GETQUOTAROOT INBOX")
assert got == ['* QUOTAROOT "INBOX" ""', '* QUOTA "" (STORAGE 0 8)'], got
msg = b"Subject: five\r\n\r\n" + (b"x" * 98 + b"\r\n") * 49
assert len(msg) == 4917
def append(data):
    return r.cmd("APPEND INBOX {%d+}\r\n%s" % (len(data), data.decode()))[1]
assert append(msg).startswith("OK [APPENDUID"), "first append"
assert r.ok('GETQUOTA ""') == ['* QUOTA "" (STORAGE 5 8)']
t = append(msg)
assert t.startswith("NO [OVERQUOTA]"), t
t = append(b"Subject: big\r\n\r\n" + b"y" * 9000 + b"\r\n")
assert t.startswith("NO [OVERQUOTA]"), t
r.ok("SELECT INBOX")
t = r.cmd("COPY 1 Archive")[1]
assert t.startswith("NO [OVERQUOTA]"), t
r.ok("MOVE 1 Archive")
r.ok("SELECT Archive")
assert r.ok('GETQUOTA ""') == ['* QUOTA "" (STORAGE 5 8)']
assert r.cmd('SETQUOTA "" (STORAGE 100)')[1].startswith("NO"), "setquota"
assert r.cmd('GETQUOTA "other"')[1].startswith("NO [NONEXISTENT]")
# An account without a limit has no quota root.
d = Raw("dave@example.test")
assert d.ok("GETQUOTAROOT INBOX") == ['* QUOTAROOT "INBOX"']
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    // Over quota (the limit lowered under the usage), POP3 still reads and
    // deletes, and what it deletes makes room for APPEND again.
    quota_cli(&t, &["bob@example.test", "4KiB"]);
    let out = run(
        &t,
        r#"
import poplib
r = Raw()
r.ok("SELECT Archive")
r.ok("MOVE 1 INBOX")
t = r.cmd("APPEND INBOX {3+}\r\nx\r\n")[1]
assert t.startswith("NO [OVERQUOTA]"), t
p = poplib.POP3("127.0.0.1", POP); p.stls(CTX)
p.user("bob@example.test"); p.pass_("pw")
assert p.stat()[0] == 1
assert b"Subject: five" in b"\r\n".join(p.retr(1)[1])
p.dele(1); p.quit()
assert r.ok('GETQUOTA ""') == ['* QUOTA "" (STORAGE 0 4)']
assert r.cmd("APPEND INBOX {3+}\r\nx\r\n")[1].startswith("OK")
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn web_mail_shows_the_usage() {
    let t = server(
        "[tls]\nallow_plaintext_auth = true\n[[listen]]\nprotocol = \"http\"\naddress = \"{ip}:0\"\n",
    );
    quota_cli(&t, &["dave@example.test", "none"]);
    let mut s = Smtp::ready(t.port("smtp"));
    s.send_message(
        "lisa@outside.test",
        &["bob@example.test", "dave@example.test"],
        &message("hello", 3000),
    )
    .expect(250, "2.0.0");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = python(
        &format!(
            "import sys, re\nsys.path.insert(0, {:?})\nfrom webmail import *\nHTTP={}\n{}",
            fixtures.display().to_string(),
            t.port("http"),
            r#"
def usage(user):
    c = Client(HTTP)
    assert c.login(user, "pw").status == 303
    r = c.get("/folder?name=INBOX")
    assert r.status == 200, r.status
    m = re.search(r'<p class="quota">([^<]*)', r.text)
    assert m, r.text
    return m.group(1).strip(), r.text
line, page = usage("bob@example.test")
assert re.fullmatch(r"Using 3\.\d KiB of 8 KiB \(\d\d%\)", line), line
assert '<meter min="0" max="8192" value="' in page, page
line, _ = usage("dave@example.test")
assert re.fullmatch(r"Using 3\.\d KiB \(no quota\)", line), line
print("ok")
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok");
}
