//! A storage plugin (Maildir in a directory its config grants) keeps the
//! mailboxes it claims: SMTP delivery goes to its files before the 250, and
//! POP3 lists, reads and deletes through it; other mailboxes stay in the
//! built-in store.

mod harness;
use harness::{Tern, config, python};

#[test]
fn storage_plugin_keeps_claimed_mailboxes_and_serves_pop3() {
    let maildir = tempfile::tempdir().expect("tempdir");
    let plugin = format!(
        "[[plugin]]\nname = \"maildir\"\npath = \"{}\"\ndirectory = \"{}\"\nconfig = {{ mailboxes = \"bob@example.test\" }}\n",
        test_plugins::MAILDIR_STORE,
        maildir.path().display()
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugin));
    t.add_user("bob@example.test", "pw");
    t.add_user("carol@example.test", "pw");
    let script = format!(
        "SMTP={}\nPOPS={}\n{}",
        t.port("smtp"),
        t.port("pop3s"),
        r#"
import poplib, smtplib, ssl
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
big = b"".join(b"line %06d .with a dot after a space and some padding text\r\n" % i for i in range(3000))
msgs = [b"Subject: first\r\n\r\nhello\r\n.leading dot\r\n", b"Subject: second\r\n\r\n" + big]
s = smtplib.SMTP("127.0.0.1", SMTP)
for m in msgs:
    s.sendmail("lisa@outside.test", ["bob@example.test", "carol@example.test"], m)
s.quit()
def login(user):
    p = poplib.POP3_SSL("127.0.0.1", POPS, context=CTX); p.user(user); p.pass_("pw"); return p
for user in ("bob@example.test", "carol@example.test"):
    p = login(user)
    assert p.stat()[0] == 2, (user, p.stat())
    for i, m in enumerate(msgs, 1):
        got = b"\r\n".join(p.retr(i)[1]) + b"\r\n"
        assert got.startswith(b"Received: "), got[:40]
        assert got.endswith(m), (user, i, got[-80:])
    uids = [l.split()[1] for l in p.uidl()[1]]
    print(user, b" ".join(uids).decode())
    p.dele(1)
    p.quit()
    p = login(user)
    assert p.stat()[0] == 1, (user, "deletion not kept")
    assert (b"\r\n".join(p.retr(1)[1]) + b"\r\n").endswith(msgs[1])
    p.quit()
print("ok")
"#
    );
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
    // bob's copies are the plugin's files (one left after DELE); carol's are not there.
    let bob = maildir.path().join("bob@example.test/new");
    let files: Vec<_> = std::fs::read_dir(&bob)
        .expect("bob's maildir")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let content = std::fs::read(files[0].path()).expect("file");
    assert!(content.ends_with(b"line 002999 .with a dot after a space and some padding text\r\n"));
    assert!(!maildir.path().join("carol@example.test").exists());
    // Plugin ids (time.seq) are the UIDLs for bob; carol's are the store's.
    let bob_uidl = out
        .lines()
        .find(|l| l.starts_with("bob@"))
        .expect("bob uidl");
    assert!(
        bob_uidl
            .split(' ')
            .skip(1)
            .all(|id| id.contains('.') && !id.starts_with('0')),
        "{bob_uidl}"
    );
    assert!(t.log().contains("delivered by a storage plugin"));
}
