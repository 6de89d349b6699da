//! IMAP against the real binary with independent clients (Python's imaplib
//! and IMAPClient from PyPI): login over STARTTLS and imaps (LOGINDISABLED
//! before TLS), AUTHENTICATE PLAIN, folders and name tricks, APPEND/FETCH
//! round trips byte for byte, flags, SEARCH, COPY/MOVE/EXPUNGE with UIDPLUS
//! answers, CONDSTORE, and literals bounded by the message size limit.

mod harness;
mod imap_common;
use imap_common::{run, server};

#[test]
fn login_needs_tls_then_works_over_starttls_imaps_and_authenticate_plain() {
    let t = server("");
    let out = run(
        &t,
        r#"
m = imaplib.IMAP4("127.0.0.1", IMAP)
caps = m.capabilities
assert "STARTTLS" in caps and "LOGINDISABLED" in caps and "AUTH=PLAIN" not in caps, caps
try:
    m.login("bob@example.test", "pw"); raise SystemExit("LOGIN accepted before TLS")
except imaplib.IMAP4.error as e:
    assert "PRIVACYREQUIRED" in str(e), e
m.starttls(CTX)
caps = m.capabilities
assert "AUTH=PLAIN" in caps and "LOGINDISABLED" not in caps and "STARTTLS" not in caps, caps
for cap in ["IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "SPECIAL-USE", "LITERAL+", "NAMESPACE", "ID", "UNSELECT", "CHILDREN", "ENABLE", "SASL-IR"]:
    assert cap in caps, (cap, caps)
try:
    m.login("bob@example.test", "wrong"); raise SystemExit("wrong password accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
typ, _ = m.authenticate("PLAIN", lambda _: b"\0bob@example.test\0pw")
assert typ == "OK"
typ, data = m.namespace()
assert data[0] == b'(("" "/")) NIL NIL', data
m.logout()
c = client()
ident = c.id_({"name": "test"})
assert "Tern" in repr(ident), ident
c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn folders_create_rename_delete_subscribe_and_refuse_name_tricks() {
    let t = server("");
    let out = run(
        &t,
        r#"
c = client()
folders = {name: flags for flags, _, name in c.list_folders()}
assert set(folders) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}, folders
assert b"\\Sent" in folders["Sent"] and b"\\Trash" in folders["Trash"], folders
c.create_folder("Work/2026/Q1")
for name in ["Work", "Work/2026"]:
    c.subscribe_folder(name)
names = [n for _, _, n in c.list_folders("", "Work*")]
assert names == ["Work", "Work/2026", "Work/2026/Q1"], names
flags = {n: f for f, _, n in c.list_folders("", "Work/%")}
assert flags == {"Work/2026": (b"\\HasChildren",)}, flags
c.rename_folder("Work", "Job")
names = sorted(n for _, _, n in c.list_folders("", "Job*"))
assert names == ["Job", "Job/2026", "Job/2026/Q1"], names
assert not c.folder_exists("Work")
c.unsubscribe_folder("Job/2026")
subs = [n for _, _, n in c.list_sub_folders("", "Job*")]
assert "Job/2026" not in subs and "Job" in subs, subs
c.delete_folder("Job/2026/Q1")
assert not c.folder_exists("Job/2026/Q1")
for bad in ["../x", "a/../../b", '#shared/x', "~carol/INBOX", "a//b"]:
    try:
        c.create_folder(bad); raise SystemExit("created " + bad)
    except IMAPClient.Error:
        pass
try:
    c.delete_folder("INBOX"); raise SystemExit("deleted INBOX")
except IMAPClient.Error:
    pass
st = c.folder_status("INBOX", ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"])
assert st[b"MESSAGES"] == 0 and st[b"UIDNEXT"] == 1 and st[b"UIDVALIDITY"] > 0, st
c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn another_users_folders_stay_invisible() {
    let t = server("");
    t.add_user("carol@example.test", "pw2");
    let out = run(
        &t,
        r#"
carol = client("carol@example.test", "pw2")
carol.create_folder("Secret")
carol.append("Secret", b"Subject: private\r\n\r\nmine\r\n")
carol.logout()
c = client()
names = [n for _, _, n in c.list_folders("", "*")]
assert "Secret" not in names, names
for trick in ["Secret", "../carol@example.test/Secret", "carol@example.test\x00Secret"]:
    try:
        c.select_folder(trick); raise SystemExit("selected " + repr(trick))
    except (IMAPClient.Error, ValueError):
        pass
c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn append_and_fetch_are_byte_identical_and_parse_the_mime_structure() {
    let t = server("");
    let out = run(
        &t,
        r#"
import os
big = b"Subject: big\r\n\r\n" + b"".join(b"%06d " % i + os.urandom(20).hex().encode() + b"\r\n" for i in range(20000))
mime = (b"From: Lisa <lisa@outside.test>\r\nTo: Bob <bob@example.test>\r\nSubject: report\r\n"
        b"Message-ID: <r1@outside.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"caf\xc3\xa9 au lait\r\n"
        b"--XX\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=\"a.bin\"\r\n\r\nAAECAwQ=\r\n--XX--\r\n")
c = client()
c.select_folder("INBOX")
uids = []
eight = b"Subject: 8bit\r\n\r\n" + bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
for msg in [b"Subject: tiny\r\n\r\nx\r\n", mime, big, eight]:
    resp = c.append("INBOX", msg, flags=[b"\\Draft", b"$Label1"])
    m = re.search(rb"APPENDUID (\d+) (\d+)", resp)
    assert m, resp
    uids.append(int(m.group(2)))
assert uids == [1, 2, 3, 4], uids
got = c.fetch(uids, ["BODY.PEEK[]", "RFC822.SIZE", "FLAGS"])
for uid, msg in zip(uids, [b"Subject: tiny\r\n\r\nx\r\n", mime, big, eight]):
    assert got[uid][b"BODY[]"] == msg, uid
    assert got[uid][b"RFC822.SIZE"] == len(msg)
    assert set(got[uid][b"FLAGS"]) - {b"\\Recent"} == {b"\\Draft", b"$Label1"}, got[uid][b"FLAGS"]
r = c.fetch([2], ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[1]", "BODY.PEEK[2.MIME]", "BODY.PEEK[HEADER.FIELDS (SUBJECT TO)]", "BODY.PEEK[TEXT]<0.4>"])[2]
env = r[b"ENVELOPE"]
assert env.subject == b"report" and env.message_id == b"<r1@outside.test>", env
assert env.from_[0].mailbox == b"lisa" and env.from_[0].host == b"outside.test" and env.from_[0].name == b"Lisa"
assert env.to[0].mailbox == b"bob"
bs = r[b"BODYSTRUCTURE"]
assert bs.is_multipart, bs
parts, subtype = bs[0], bs[1]
assert subtype == b"MIXED", bs
assert parts[0][0] == b"TEXT" and parts[0][1] == b"PLAIN", parts[0]
assert parts[1][0] == b"APPLICATION" and parts[1][5] == b"BASE64", parts[1]
assert r[b"BODY[1]"] == "café au lait".encode(), r[b"BODY[1]"]
assert r[b"BODY[2.MIME]"].startswith(b"Content-Type: application/octet-stream"), r[b"BODY[2.MIME]"]
assert r[b"BODY[HEADER.FIELDS (SUBJECT TO)]"] == b"To: Bob <bob@example.test>\r\nSubject: report\r\n\r\n", r
assert r[b"BODY[TEXT]<0>"] == b"--XX", r
# PEEK left \Seen alone; a plain BODY[] sets it.
assert b"\\Seen" not in c.get_flags([2])[2]
c.fetch([2], ["BODY[]"])
assert b"\\Seen" in c.get_flags([2])[2]
c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn flags_and_search() {
    let t = server("");
    let out = run(
        &t,
        r#"
send("bob@example.test", b"From: Lisa <lisa@outside.test>\r\nTo: bob@example.test\r\nSubject: Lunch plans\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nShall we meet at noon?\r\n")
send("bob@example.test", b"From: Mark <mark@else.test>\r\nTo: bob@example.test\r\nCc: lisa@outside.test\r\nSubject: =?utf-8?q?R=C3=A9union?=\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nAgenda attached.\r\n" + b"y" * 5000 + b"\r\n")
c = client()
c.select_folder("INBOX")
assert c.search(["ALL"]) == [1, 2]
c.add_flags([1], [b"\\Flagged", b"Important"])
assert c.search(["FLAGGED"]) == [1]
assert c.search(["KEYWORD", "Important"]) == [1]
assert c.search(["UNSEEN"]) == [1, 2]
c.set_flags([2], [b"\\Seen"])
assert c.search(["SEEN"]) == [2] and c.search(["UNSEEN"]) == [1]
c.remove_flags([1], [b"\\Flagged"])
assert c.search(["FLAGGED"]) == []
assert c.search(["FROM", "lisa"]) == [1]
assert c.search(["CC", "lisa@outside"]) == [2]
assert c.search(["SUBJECT", "lunch"]) == [1]
assert c.search(["SUBJECT", "Réunion"], charset="UTF-8") == [2]
assert c.search(["BODY", "noon"]) == [1]
assert c.search(["TEXT", "Mark"]) == [2]
assert c.search(["HEADER", "Subject", "plans"]) == [1]
assert c.search(["LARGER", "3000"]) == [2]
assert c.search(["SMALLER", "3000"]) == [1]
assert c.search(["OR", "FROM", "mark", "SUBJECT", "lunch"]) == [1, 2]
assert c.search(["NOT", "FROM", "mark"]) == [1]
assert c.search(["SENTBEFORE", "24-Nov-2026"]) == [1]
assert c.search(["SENTON", "24-Nov-2026"]) == [2]
assert c.search(["SINCE", "1-Jan-2000"]) == [1, 2]
assert c.search(["BEFORE", "1-Jan-2000"]) == []
m = plain()
m.select("INBOX")
typ, data = m.uid("SEARCH", None, "2:*")
assert data == [b"2"], data
typ, data = m.search(None, "1")
assert data == [b"1"], data
typ, data = m.store("1", "FLAGS.SILENT", r"(\Answered)")
assert typ == "OK" and data == [None], data
typ, data = m.fetch("1", "(FLAGS)")
assert data == [b"1 (FLAGS (\\Answered))"], data
typ, data = m.search(None, "ANSWERED")
assert data == [b"1"], data
m.logout()
c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn copy_move_and_expunge_answer_with_uidplus_codes() {
    let t = server("");
    let out = run(
        &t,
        r#"
m = plain()
for i in range(5):
    m.append("INBOX", None, None, b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
typ, data = m.select("INBOX")
assert data == [b"5"], data
typ, data = m._simple_command("UID", "COPY", "1:2", "Archive")
assert typ == "OK", data
arch_uv = m.status("Archive", "(UIDVALIDITY)")[1][0]
mm = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", data[0])
assert mm and mm.group(2) == b"1:2" and mm.group(3) == b"1:2", data
assert str(int(mm.group(1))).encode() in arch_uv, (mm.group(1), arch_uv)
typ, data = m.uid("MOVE", "3", "Trash")
assert typ == "OK", data
untagged = m.response("COPYUID")[1]
assert re.match(rb"\d+ 3 1$", untagged[-1]), untagged
typ, data = m.response("EXPUNGE")
assert data == [b"3"], data
typ, data = m.search(None, "ALL")
assert data == [b"1 2 3 4"], data
m.uid("STORE", "4,5", "+FLAGS.SILENT", r"(\Deleted)")
typ, data = m.uid("EXPUNGE", "5")
assert typ == "OK", data
assert m.response("EXPUNGE")[1] == [b"4"]
typ, data = m.expunge()
assert data == [b"3"], data
typ, data = m.uid("SEARCH", None, "ALL")
assert data == [b"1 2"], data
typ, data = m.copy("1", "Nowhere")
assert typ == "NO" and b"TRYCREATE" in data[0], data
assert m.select("Archive")[1] == [b"2"]
typ, data = m.fetch("1:2", "(BODY.PEEK[TEXT])")
assert [d[1] for d in data if isinstance(d, tuple)] == [b"body 0\r\n", b"body 1\r\n"], data
assert m.select("Trash")[1] == [b"1"]
m.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn condstore_modseq_changedsince_and_unchangedsince() {
    let t = server("");
    let out = run(
        &t,
        r#"
c = client()
for i in range(3):
    c.append("INBOX", b"Subject: %d\r\n\r\nx\r\n" % i)
assert c.enable("CONDSTORE") == [b"CONDSTORE"]
info = c.select_folder("INBOX")
high = info[b"HIGHESTMODSEQ"]
assert high > 0, info
c.add_flags([2], [b"\\Flagged"])
r = c.fetch([1, 2, 3], ["FLAGS"], modifiers=["CHANGEDSINCE %d" % high])
assert list(r) == [2] and r[2][b"MODSEQ"][0] > high, r
mod2 = r[2][b"MODSEQ"][0]
r = c.search(["MODSEQ", str(mod2)])
assert r == [2] and r.modseq == mod2, (r, getattr(r, "modseq", None))
m = plain()
m.select("INBOX")
typ, data = m._simple_command("UID", "STORE", "1:3", "(UNCHANGEDSINCE %d)" % high, "+FLAGS", r"(\Seen)")
assert typ == "OK" and b"[MODIFIED 2]" in data[0], (typ, data)
typ, data = m.fetch("1:3", "(FLAGS)")
flags = data[-3:]
assert b"\\Seen" in flags[0] and b"\\Seen" not in flags[1] and b"\\Seen" in flags[2], flags
st = c.folder_status("INBOX", ["HIGHESTMODSEQ"])
assert st[b"HIGHESTMODSEQ"] > mod2, st
m.logout(); c.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn literals_are_bounded_by_the_message_size_limit() {
    let t = server("[limits]\nmax_message_size = \"64KiB\"\n");
    let out = run(
        &t,
        r#"
m = plain()
typ, data = m.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"x" * 100000)
assert typ == "NO" and b"TOOBIG" in data[0], (typ, data)
# A non-synchronising literal that is too big is read and dropped.
sock = m.socket()
sock.sendall(b"a1 APPEND INBOX {100000+}\r\n" + b"y" * 100000 + b"\r\na2 NOOP\r\n")
buf = b""
while b"a2 OK" not in buf:
    chunk = sock.recv(4096)
    assert chunk, buf
    buf += chunk
assert b"a1 NO [TOOBIG]" in buf, buf
typ, data = m.append("INBOX", None, None, b"Subject: small\r\n\r\nok\r\n")
assert typ == "OK", data
m.select("INBOX")
typ, data = m.search(None, "ALL")
assert data == [b"1"], data
m.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

/// COMPRESS=DEFLATE (RFC 4978) with Python's zlib (raw deflate, sync
/// flushes) as the client's side: the OK uncompressed, then commands and
/// answers compressed, a message of 200 KB in and out byte for byte, IDLE
/// hearing of new mail, and a second COMPRESS refused.
#[test]
fn compress_deflate_carries_commands_literals_and_idle() {
    let t = server("");
    let out = run(
        &t,
        r#"
import socket, zlib
r = Raw()
assert "COMPRESS=DEFLATE" in r.ok("CAPABILITY")[0].split()
r.sock.sendall(b"z1 COMPRESS DEFLATE\r\n")
assert r.f.readline() == b"z1 OK DEFLATE active\r\n"
out, inf = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
got = bytearray()
def send(data):
    r.sock.sendall(out.compress(data) + out.flush(zlib.Z_SYNC_FLUSH))
def until(marker):
    global got
    while marker not in got:
        chunk = r.sock.recv(65536)
        assert chunk, got[-300:]
        got += inf.decompress(chunk)
    i = got.index(marker) + len(marker)
    head, got = bytes(got[:i]), got[i:]
    return head
def tagged(tag):
    # (what came before, the tagged line's text after the tag); `got`
    # always starts at the start of a line
    global got
    got = bytearray(b"\r\n") + got
    before = until(b"\r\n" + tag + b" ")
    return before, until(b"\r\n")
body = b"".join(b"line %06d of a long message, compressible\r\n" % i for i in range(4500))
msg = b"Subject: squeezed\r\n\r\n" + body
send(b"a1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
assert tagged(b"a1")[1].startswith(b"OK [APPENDUID")
send(b"a2 SELECT INBOX\r\n")
before, line = tagged(b"a2")
assert b"* 1 EXISTS" in before and line.startswith(b"OK"), (before, line)
send(b"a3 FETCH 1 BODY.PEEK[]\r\n")
before, line = tagged(b"a3")
assert msg in before and line.startswith(b"OK"), (len(before), line)
send(b"a4 COMPRESS DEFLATE\r\n")
assert tagged(b"a4")[1].startswith(b"NO [COMPRESSIONACTIVE]")
send(b"a5 IDLE\r\n")
until(b"+ ")
until(b"\r\n")
smtp = smtplib.SMTP("127.0.0.1", SMTP)
smtp.sendmail("lisa@outside.test", ["bob@example.test"], b"Subject: new\r\n\r\nhi\r\n")
smtp.quit()
until(b"* 2 EXISTS\r\n")
send(b"DONE\r\n")
assert tagged(b"a5")[1].startswith(b"OK")
send(b"a6 LOGOUT\r\n")
before, line = tagged(b"a6")
assert b"* BYE" in before and line.startswith(b"OK"), (before, line)
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}
