//! IMAP sessions seeing changes made elsewhere, against the real binary:
//! IDLE woken by SMTP delivery, two sessions on one folder (EXISTS,
//! EXPUNGE, FETCH FLAGS), a POP3 deletion reported as EXPUNGE, and mail
//! delivered over LMTP (Python's smtplib.LMTP) read over IMAP. Waits are
//! polls with generous bounds, never sleeps.

mod harness;
mod imap_common;
use imap_common::{run, server};

#[test]
fn idle_wakes_when_mail_arrives_over_smtp() {
    let t = server("");
    let out = run(
        &t,
        r#"
c = client()
c.select_folder("INBOX")
c.idle()
start = time.time()
send("bob@example.test", b"Subject: wake up\r\n\r\nnow\r\n")
seen = []
while time.time() - start < 30:
    seen += c.idle_check(timeout=5)
    if (1, b"EXISTS") in seen:
        break
c.idle_done()
assert (1, b"EXISTS") in seen, seen
print("ok %.3f" % (time.time() - start))
r = c.fetch([1], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
assert r[1][b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: wake up\r\n\r\n", r
c.logout()
"#,
    );
    assert!(out.starts_with("ok"), "{out}");
    eprintln!("IDLE saw the delivery: {}", out.trim());
}

#[test]
fn two_sessions_see_each_others_changes() {
    let t = server("");
    let out = run(
        &t,
        r#"
a = client(); b = client()
for i in range(3):
    a.append("INBOX", b"Subject: %d\r\n\r\nx\r\n" % i)
a.select_folder("INBOX"); b.select_folder("INBOX")
a.add_flags([2], [b"\\Flagged"])
resp = b.noop()[1]
assert (2, b"FETCH", (b"FLAGS", (b"\\Flagged",), b"UID", 2)) in resp, resp
a.append("INBOX", b"Subject: new\r\n\r\ny\r\n")
resp = b.noop()[1]
assert (4, b"EXISTS") in resp, resp
a.delete_messages([1])
a.expunge()
resp = b.noop()[1]
assert (1, b"EXPUNGE") in resp, resp
assert b.search(["ALL"]) == [2, 3, 4]  # UIDs
# A FETCH by sequence number must not see expunges (RFC 3501 7.4.1); a NOOP then does.
a.delete_messages([3]); a.expunge()
b.use_uid = False
r = b.fetch([1, 2, 3], ["FLAGS"])
assert sorted(r) == [1, 2, 3], r
resp = b.noop()[1]
assert (2, b"EXPUNGE") in resp, resp
b.use_uid = True
assert b.search(["ALL"]) == [2, 4]
a.logout(); b.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn a_pop3_deletion_is_an_expunge_imap_sessions_see() {
    let t = server("");
    let out = run(
        &t,
        r#"
import poplib
send("bob@example.test", b"Subject: one\r\n\r\n1\r\n")
send("bob@example.test", b"Subject: two\r\n\r\n2\r\n")
c = client()
c.select_folder("INBOX")
c.idle()
p = poplib.POP3("127.0.0.1", POP); p.stls(CTX); p.user("bob@example.test"); p.pass_("pw")
p.dele(1); p.quit()
seen = []
start = time.time()
while time.time() - start < 30 and (1, b"EXPUNGE") not in seen:
    seen += c.idle_check(timeout=5)
c.idle_done()
assert (1, b"EXPUNGE") in seen, seen
r = c.fetch(c.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
assert list(r.values())[0][b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: two\r\n\r\n", r
c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn mail_delivered_over_lmtp_is_read_over_imap() {
    let t = server("");
    t.add_user("carol@example.test", "pw2");
    let out = run(
        &t,
        r#"
l = smtplib.LMTP("127.0.0.1", LMTP)
msg = b"From: relay@outside.test\r\nSubject: via lmtp\r\n\r\ndelivered by the front MTA\r\n"
refused = l.sendmail("relay@outside.test", ["bob@example.test", "carol@example.test", "nobody@example.test"], msg)
assert list(refused) == ["nobody@example.test"], refused
l.quit()
for user, pw in [("bob@example.test", "pw"), ("carol@example.test", "pw2")]:
    c = client(user, pw)
    c.select_folder("INBOX")
    r = c.fetch(c.search(["ALL"]), ["BODY.PEEK[]"])
    assert len(r) == 1, r
    body = list(r.values())[0][b"BODY[]"]
    assert body.endswith(msg), body
    c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}
