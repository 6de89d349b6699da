//! A real sync client: mbsync (Debian's `isync`) mirrors a user's folders
//! to a local Maildir over imaps and back, with changes on both sides
//! between runs (new mail, flags, deletions), and a run with no changes at
//! the end. Both sides must then hold the same messages (by Message-ID),
//! with no duplicates and nothing lost.

mod harness;
mod imap_common;
use imap_common::{run, server};

#[test]
fn mbsync_round_trips_without_duplicates_or_losses() {
    let t = server("");
    let local = tempfile::tempdir().expect("tempdir");
    let cert = t.data_dir().join("tls-cert.pem");
    let rc = local.path().join("mbsyncrc");
    let mail = local.path().join("mail");
    std::fs::create_dir_all(&mail).expect("mkdir");
    // mbsync trusts a certificate listed in CertificateFile as it is (the
    // generated one names mx.example.test, not 127.0.0.1).
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount tern\nHost 127.0.0.1\nPort {port}\nUser bob@example.test\nPass pw\n\
             SSLType IMAPS\nCertificateFile {cert}\n\n\
             IMAPStore remote\nAccount tern\n\n\
             MaildirStore local\nPath {mail}/\nInbox {mail}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n\
             Expunge Both\nSyncState *\n",
            port = t.port("imaps"),
            cert = cert.display(),
            mail = mail.display(),
        ),
    )
    .expect("mbsyncrc");
    let out = run(
        &t,
        &format!(
            r#"
import subprocess, mailbox, os
RC = {rc:?}; MAIL = {mail:?}
def sync():
    r = subprocess.run(["mbsync", "-c", RC, "-a"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
def msg(mid, subject):
    return (f"From: lisa@outside.test\r\nTo: bob@example.test\r\nSubject: {{subject}}\r\n"
            f"Message-ID: <{{mid}}@test>\r\n\r\nbody of {{mid}}\r\n").encode()
def local(folder):
    md = mailbox.Maildir(os.path.join(MAIL, folder), create=False)
    return {{m["Message-ID"]: m for m in md.values()}}, len(md)
def remote(c, folder):
    c.select_folder(folder, readonly=True)
    uids = c.search("ALL")
    data = c.fetch(uids, ["ENVELOPE", "FLAGS"]) if uids else {{}}
    ids = {{d[b"ENVELOPE"].message_id.decode(): d[b"FLAGS"] for d in data.values()}}
    return ids, len(uids)
def same(c, folder, expected):
    near, n_near = local(folder)
    far, n_far = remote(c, folder)
    want = {{f"<{{m}}@test>" for m in expected}}
    assert set(near) == want and n_near == len(want), (folder, "local", sorted(near), n_near)
    assert set(far) == want and n_far == len(want), (folder, "server", sorted(far), n_far)
    return near, far

c = client()
c.append("INBOX", msg("m1", "one"), flags=[b"\\Seen"])
c.append("INBOX", msg("m2", "two"))
c.append("INBOX", msg("m3", "three"))
c.create_folder("Work"); c.subscribe_folder("Work")
c.append("Work", msg("m4", "four"))
c.append("Work", msg("m5", "five"))

sync()
near, _ = same(c, "INBOX", ["m1", "m2", "m3"])
same(c, "Work", ["m4", "m5"])
assert "S" in near["<m1@test>"].get_flags() and "S" not in near["<m2@test>"].get_flags()

# Changes on both sides between runs.
md = mailbox.Maildir(os.path.join(MAIL, "INBOX"), create=False)
md.add(mailbox.MaildirMessage(msg("l1", "local one")))
for key, m in md.items():
    if m["Message-ID"] == "<m2@test>":
        m.set_subdir("cur"); m.add_flag("S"); md[key] = m
    if m["Message-ID"] == "<m3@test>":
        md.remove(key)
c.append("Work", msg("r1", "remote one"))
c.select_folder("Work")
c.add_flags(c.search(["HEADER", "Message-ID", "m4@test"]), [b"\\Flagged"])

sync()
near, far = same(c, "INBOX", ["m1", "m2", "l1"])
assert b"\\Seen" in far["<m2@test>"], far
near, far = same(c, "Work", ["m4", "m5", "r1"])
assert "F" in near["<m4@test>"].get_flags(), near["<m4@test>"].get_flags()

# Nothing changed: a third run must not copy anything again.
sync()
same(c, "INBOX", ["m1", "m2", "l1"])
same(c, "Work", ["m4", "m5", "r1"])
c.select_folder("INBOX", readonly=True)
body = c.fetch(c.search(["HEADER", "Message-ID", "l1@test"]), ["BODY.PEEK[]"])
# mbsync tags what it uploads with an X-TUID header; the rest is as written.
got = re.sub(rb"X-TUID: [^\r]*\r\n", b"", list(body.values())[0][b"BODY[]"])
assert got == msg("l1", "local one"), body
print("ok")
"#,
            rc = rc.display().to_string(),
            mail = mail.display().to_string(),
        ),
    );
    assert_eq!(out.trim(), "ok");
}
