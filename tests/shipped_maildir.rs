//! The shipped `maildir` plugin (plugins/maildir) in the real server: mail
//! for the mailboxes it claims, sent with smtplib, lands as files in
//! `<domain>/<local>/new/` under its granted directory, named per the
//! Maildir spec, with LF line ends, readable by Python's `mailbox.Maildir`;
//! POP3 (poplib) lists them by that name, RETR gives back the exact bytes
//! with CRLF (a message of several 64 KiB fetches included), and DELE
//! removes the file at QUIT. Unclaimed mailboxes stay in the built-in store.

mod harness;
use harness::{Tern, config, python};

#[test]
fn maildir_delivery_is_readable_and_served_over_pop3() {
    let maildir = tempfile::tempdir().expect("tempdir");
    let plugin = format!(
        r#"[[plugin]]
name = "maildir"
path = "{}"
directory = "{}"
timeout = "5s"
config = {{ mailboxes = "bob@example.test, @other.test", hostname = "mx.example.test" }}
"#,
        test_plugins::shipped::MAILDIR,
        maildir.path().display()
    );
    let extra = format!("{plugin}\n");
    let mut cfg = config("mx.example.test", "example.test", &extra);
    cfg = cfg.replace(
        "local_domains = [\"example.test\"]",
        "local_domains = [\"example.test\", \"other.test\"]",
    );
    let t = Tern::start(&cfg);
    for user in ["bob@example.test", "carol@example.test", "zed@other.test"] {
        t.add_user(user, "pw");
    }
    let script = format!(
        "SMTP = {}\nPOPS = {}\nROOT = {:?}\n{}",
        t.port("smtp"),
        t.port("pop3s"),
        maildir.path().display().to_string(),
        MAILDIR_PY
    );
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
    assert!(!maildir.path().join("example.test/carol").exists());
}

const MAILDIR_PY: &str = r#"
import mailbox, os, poplib, re, smtplib, ssl
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE

big = b"".join(b"line %06d .with a dot after a space, padding padding padding\r\n" % i for i in range(4000))
msgs = [
    b"Subject: first\r\nFrom: lisa@outside.test\r\n\r\nhello\r\n.leading dot\r\n",
    b"Subject: second\r\nFrom: lisa@outside.test\r\n\r\n" + big,
]
s = smtplib.SMTP("127.0.0.1", SMTP)
for m in msgs:
    s.sendmail("lisa@outside.test", ["bob@example.test", "carol@example.test", "zed@other.test"], m)
s.quit()

bob = os.path.join(ROOT, "example.test", "bob")
for sub in ("tmp", "new", "cur"):
    assert os.path.isdir(os.path.join(bob, sub)), sub
# Delivery order: seconds, then microseconds, then the delivery counter
# (a plain string sort would put M119000 before M82000).
def delivered(n):
    return tuple(int(x) for x in re.match(r"(\d+)\.M(\d+)Q(\d+)", n).groups())
names = sorted(os.listdir(os.path.join(bob, "new")), key=delivered)
assert len(names) == 2 and not os.listdir(os.path.join(bob, "tmp")), names
for n in names:
    m = re.fullmatch(r"(\d+)\.M(\d+)Q(\d+)\.mx\.example\.test,S=(\d+),W=(\d+)", n)
    assert m, n
    data = open(os.path.join(bob, "new", n), "rb").read()
    assert b"\r" not in data, "CRLF in a Maildir file"
    assert int(m.group(4)) == len(data), (n, len(data))
    assert int(m.group(5)) == len(data) + data.count(b"\n"), n

box = mailbox.Maildir(bob, factory=None, create=False)
subjects = sorted(box[k]["Subject"] for k in box.keys())
assert subjects == ["first", "second"], subjects
for k in box.keys():
    if box[k]["Subject"] == "first":
        assert box[k].get_payload() == "hello\n.leading dot\n", repr(box[k].get_payload())
assert len(mailbox.Maildir(os.path.join(ROOT, "other.test", "zed"), factory=None, create=False)) == 2

# A mail reader moves the first message to cur/ and flags it: POP3 still
# knows it by the same id.
first = [k for k in box.keys() if box[k]["Subject"] == "first"][0]
msg = box[first]; msg.set_subdir("cur"); msg.add_flag("S"); box[first] = msg
assert len(os.listdir(os.path.join(bob, "cur"))) == 1

def login(user):
    p = poplib.POP3_SSL("127.0.0.1", POPS, context=CTX); p.user(user); p.pass_("pw"); return p
p = login("bob@example.test")
assert p.stat()[0] == 2, p.stat()
uids = [l.split()[1].decode() for l in p.uidl()[1]]
assert uids == names, (uids, names)
sizes = [int(l.split()[1]) for l in p.list()[1]]
for i, m in enumerate(msgs, 1):
    got = b"\r\n".join(p.retr(i)[1]) + b"\r\n"
    assert got.startswith(b"Received: "), got[:40]
    assert got.endswith(m), (i, got[-80:])
    assert len(got) == sizes[i - 1], (i, len(got), sizes[i - 1])
p.dele(1)
p.quit()
assert len(mailbox.Maildir(bob, factory=None, create=False)) == 1
p = login("bob@example.test")
assert p.stat()[0] == 1
assert (b"\r\n".join(p.retr(1)[1]) + b"\r\n").endswith(msgs[1])
p.quit()
# carol (not claimed) reads from the built-in store.
p = login("carol@example.test")
assert p.stat()[0] == 2
p.quit()
print("ok")
"#;
