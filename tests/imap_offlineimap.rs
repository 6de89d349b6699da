//! A second real sync client: OfflineIMAP (Debian's `offlineimap3`)
//! mirrors a folder tree (INBOX, Work, Work/Projects and a folder made on
//! the local side) between a local Maildir and Tern over imaps, the
//! server's certificate pinned by its SHA-256 fingerprint. Between runs
//! both sides change: new mail, deletions, and flags — on different
//! messages and on the same message from both sides at once. After the
//! second run both sides hold the same messages (by Message-ID) with the
//! union of the flags; a third run with no changes copies nothing.
//!
//! OfflineIMAP 8.0 asks for no CONDSTORE or QRESYNC: each run lists every
//! folder's UIDs and FLAGS (`FETCH 1:* (FLAGS UID INTERNALDATE)`) and compares them
//! with its own status database; new local mail goes up with APPEND and
//! UIDPLUS's APPENDUID tells it the UID. The test checks the protocol
//! trace for exactly that, so a client update that starts using them is
//! noticed.

mod harness;
mod imap_common;
use imap_common::{run, server};

#[test]
fn offlineimap_syncs_a_folder_tree_both_ways_and_converges() {
    assert!(
        std::path::Path::new("/usr/bin/offlineimap").exists(),
        "offlineimap is missing: run scripts/install-test-deps"
    );
    let t = server("");
    let local = tempfile::tempdir().expect("tempdir");
    let cert = t.data_dir().join("tls-cert.pem");
    let out = run(
        &t,
        &format!(
            r#"
import subprocess, mailbox, os, hashlib
DIR = {dir:?}; CERT = {cert:?}
MAIL = os.path.join(DIR, "mail"); os.makedirs(MAIL)
der = ssl.PEM_cert_to_DER_cert(open(CERT).read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
def rc(fingerprint):
    path = os.path.join(DIR, "offlineimaprc")
    with open(path, "w") as f:
        f.write(f"""[general]
accounts = tern
metadata = {{DIR}}/meta
maxsyncaccounts = 1

[Account tern]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {{MAIL}}
sep = /

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {{IMAPS}}
remoteuser = bob@example.test
remotepass = pw
ssl = yes
cert_fingerprint = {{fingerprint}}
maxconnections = 1
""")
    return path
PIN = hashlib.sha256(der).hexdigest()
def sync(fingerprint=PIN, ok=True):
    r = subprocess.run(["offlineimap", "-c", rc(fingerprint), "-o", "-u", "basic", "-d", "imap"],
                       capture_output=True, text=True, timeout=300)
    log = r.stdout + r.stderr
    # OfflineIMAP reports sync errors in its log and still exits 0 for some.
    failed = r.returncode != 0 or "ERROR" in log
    assert failed != ok, (r.returncode, log[-4000:])
    return log
def sent_lines(log):
    # The commands OfflineIMAP sent, from its imap debug trace.
    return "\n".join(l for l in log.splitlines() if " writer > " in l)
def msg(mid, subject):
    return (f"From: lisa@outside.test\r\nTo: bob@example.test\r\nSubject: {{subject}}\r\n"
            f"Message-ID: <{{mid}}@test>\r\n\r\nbody of {{mid}}\r\n").encode()
def maildir(folder):
    return mailbox.Maildir(os.path.join(MAIL, folder), create=False)
def local(folder):
    md = maildir(folder)
    return {{m["Message-ID"]: set(m.get_flags()) for m in md.values()}}, len(md)
FLAG = {{b"\\Seen": "S", b"\\Flagged": "F", b"\\Answered": "R", b"\\Draft": "D"}}
def remote(c, folder):
    c.select_folder(folder, readonly=True)
    uids = c.search("ALL")
    data = c.fetch(uids, ["ENVELOPE", "FLAGS"]) if uids else {{}}
    ids = {{d[b"ENVELOPE"].message_id.decode(): {{FLAG[f] for f in d[b"FLAGS"] if f in FLAG}}
           for d in data.values()}}
    return ids, len(uids)
def same(c, folder, expected):
    # Both sides hold exactly `expected` (Message-ID -> flag letters).
    near, n_near = local(folder)
    far, n_far = remote(c, folder)
    want = {{f"<{{m}}@test>": set(f) for m, f in expected.items()}}
    assert near == want and n_near == len(want), (folder, "local", near, n_near)
    assert far == want and n_far == len(want), (folder, "server", far, n_far)

c = client()
c.append("INBOX", msg("m1", "one"), flags=[b"\\Seen"])
c.append("INBOX", msg("m2", "two"))
c.append("INBOX", msg("m3", "three"))
for f in ["Work", "Work/Projects"]:
    c.create_folder(f); c.subscribe_folder(f)
c.append("Work", msg("m4", "four"))
c.append("Work", msg("m5", "five"))
c.append("Work/Projects", msg("m6", "six"), flags=[b"\\Flagged"])

# A wrong pin: OfflineIMAP stops before it logs in.
log = sync("00" * 32, ok=False)
assert "fingerprint" in log.lower(), log[-2000:]

log = sync()
same(c, "INBOX", {{"m1": "S", "m2": "", "m3": ""}})
same(c, "Work", {{"m4": "", "m5": ""}})
same(c, "Work/Projects", {{"m6": "F"}})

# Changes on both sides between runs.
md = maildir("INBOX")
md.add(mailbox.MaildirMessage(msg("l1", "local one")))
for key, m in list(md.items()):
    mid = m["Message-ID"]
    if mid == "<m2@test>":
        m.set_subdir("cur"); m.add_flag("F"); md[key] = m
    if mid == "<m3@test>":
        md.remove(key)
lf = mailbox.Maildir(os.path.join(MAIL, "Local"), create=True)
lf.add(mailbox.MaildirMessage(msg("l2", "made here")))
c.select_folder("INBOX")
c.add_flags(c.search(["HEADER", "Message-ID", "m2@test"]), [b"\\Seen"])
c.add_flags(c.search(["HEADER", "Message-ID", "m1@test"]), [b"\\Answered"])
c.select_folder("Work")
c.add_flags(c.search(["HEADER", "Message-ID", "m4@test"]), [b"\\Flagged"])
c.select_folder("Work/Projects")
c.delete_messages(c.search(["HEADER", "Message-ID", "m6@test"])); c.expunge()
c.append("Work/Projects", msg("r1", "remote one"), flags=[b"\\Seen"])

log = sync()
# m2: \Flagged from here, \Seen from the server: both sides have both.
same(c, "INBOX", {{"m1": "RS", "m2": "FS", "l1": ""}})
same(c, "Work", {{"m4": "F", "m5": ""}})
same(c, "Work/Projects", {{"r1": "S"}})
same(c, "Local", {{"l2": ""}})
# What OfflineIMAP used: flag lists of whole folders, APPEND with APPENDUID.
trace = sent_lines(log)
assert "APPENDUID" in log, log[-3000:]
assert re.search(r"FETCH 1:\* \(FLAGS UID INTERNALDATE\)", trace), trace[-3000:]
for ext in ["CHANGEDSINCE", "QRESYNC", "ENABLE"]:
    assert ext not in trace, (ext, trace[-2000:])

# Nothing changed: a third run copies nothing and changes no flag.
log = sync()
same(c, "INBOX", {{"m1": "RS", "m2": "FS", "l1": ""}})
same(c, "Work", {{"m4": "F", "m5": ""}})
same(c, "Work/Projects", {{"r1": "S"}})
same(c, "Local", {{"l2": ""}})
assert not re.search(r"APPEND |UID STORE", sent_lines(log)), log[-3000:]
c.select_folder("INBOX", readonly=True)
body = c.fetch(c.search(["HEADER", "Message-ID", "l1@test"]), ["BODY.PEEK[]"])
# Byte for byte as written (OfflineIMAP adds an X-OfflineIMAP header only
# where the server lacks UIDPLUS).
got = list(body.values())[0][b"BODY[]"]
assert got == msg("l1", "local one"), body
print("ok")
"#,
            dir = local.path().display().to_string(),
            cert = cert.display().to_string(),
        ),
    );
    assert_eq!(out.trim(), "ok");
    // The pinned-but-wrong run never logged in: one login per good run
    // (three) plus the script's own client.
    let logins = t.log().matches("imap login user=bob@example.test").count();
    assert_eq!(logins, 4, "{}", t.log());
}
