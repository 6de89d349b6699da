//! IMAP4rev2 (RFC 9051) for clients that ENABLE it, driven with Python's
//! imaplib, beside an IMAP4rev1 session on the same server that must keep
//! seeing RFC 3501's responses: ESEARCH instead of SEARCH, no RECENT and no
//! \Recent, the folder's LIST in SELECT, UTF-8 folder names (modified
//! UTF-7 for IMAP4rev1, converted by an independent Python encoder),
//! BINARY of encoded parts, BINARY.SIZE, literal8 APPEND, STATUS SIZE,
//! LIST-EXTENDED with LIST-STATUS, and SEARCHRES's `$`.

mod harness;
mod imap_common;
use imap_common::{run, server};

/// Python: a multipart message with a base64 attachment of arbitrary bytes
/// (NUL and 0xff included) and a quoted-printable text part.
const MESSAGE: &str = r#"
import base64 as b64
PAYLOAD = bytes(range(256)) * 3
QP_TEXT = "caf\u00e9 cr\u00e8me \u2014 long line " + "x" * 80
def message():
    body = b64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
    qp = __import__("quopri").encodestring(QP_TEXT.encode()).replace(b"\n", b"\r\n")
    return (b"From: lisa@outside.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + qp + b"\r\n--zz\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"--zz--\r\n")
def rev2():
    m = plain()
    typ, caps = m.capability()
    caps = caps[0].decode().split()
    assert caps[0] == "IMAP4rev1" and "IMAP4rev2" in caps and "BINARY" in caps, caps
    typ, _ = m.enable("IMAP4rev2")
    assert typ == "OK"
    assert m.response("ENABLED")[1] == [b"IMAP4rev2"]
    return m
def tag_of(m):
    # The tag imaplib used for its last command.
    return "%s%d" % (m.tagpre.decode(), m.tagnum - 1)
"#;

#[test]
fn rev2_session_gets_esearch_no_recent_list_in_select_and_binary() {
    let t = server("");
    let body = format!(
        "{MESSAGE}{}",
        r#"
m = rev2()
old = plain()
for i in range(2):
    old.append("INBOX", None, None, b"Subject: plain %d\r\n\r\nhello\r\n" % i)
old.append("INBOX", None, None, message())
# SELECT: EXISTS and the folder's LIST, never RECENT.
typ, _ = m.select("INBOX")
assert typ == "OK"
assert "RECENT" not in m.untagged_responses, m.untagged_responses
assert m.untagged_responses["EXISTS"] == [b"3"]
listed = m.untagged_responses.pop("LIST")
assert listed == [b'(\\HasNoChildren) "/" "INBOX"'], listed
typ, data = m.fetch("1:3", "(FLAGS)")
assert not any(b"\\Recent" in d for d in data), data
# SEARCH and UID SEARCH answer ESEARCH, with the command's tag.
typ, data = m.search(None, "ALL")
assert data == [None], data
assert m.response("ESEARCH")[1] == [('(TAG "%s") ALL 1:3' % tag_of(m)).encode()]
typ, data = m.uid("SEARCH", "SUBJECT", "plain")
assert m.response("ESEARCH")[1] == [('(TAG "%s") UID ALL 1:2' % tag_of(m)).encode()]
typ, data = m.search(None, "SUBJECT", "nothing-like-this")
assert m.response("ESEARCH")[1] == [('(TAG "%s")' % tag_of(m)).encode()]
# BINARY: the decoded bytes of the base64 part; BINARY.SIZE their count.
typ, data = m.fetch("3", "(BINARY.PEEK[2] BINARY.SIZE[2])")
assert typ == "OK", data
head, payload = data[0]
assert payload == PAYLOAD, (len(payload), payload[:20])
assert b"~{%d}" % len(PAYLOAD) in head, head  # NUL inside: literal8
typ, data = m.fetch("3", "(BINARY.SIZE[2] BINARY.SIZE[1])")
assert ("BINARY.SIZE[2] %d" % len(PAYLOAD)).encode() in data[0], data
assert ("BINARY.SIZE[1] %d" % len(QP_TEXT.encode())).encode() in data[0], data
typ, data = m.fetch("3", "(BINARY.PEEK[1]<5.6>)")
assert data[0][1] == QP_TEXT.encode()[5:11], data
typ, data = m.fetch("3", "(FLAGS)")
assert b"\\Seen" not in data[0], data
typ, data = m.fetch("3", "(BINARY[1])")
assert data[0][1] == QP_TEXT.encode() and b"\\Seen" in data[0][0] + data[1], data
# STATUS SIZE is the sum of the messages' sizes; DELETED counts \Deleted.
typ, data = m.fetch("1:3", "(RFC822.SIZE)")
total = sum(int(re.search(rb"RFC822.SIZE (\d+)", d).group(1)) for d in data)
m.store("1", "+FLAGS", "\\Deleted")
typ, data = m.status("INBOX", "(MESSAGES SIZE DELETED)")
assert data == [b'"INBOX" (MESSAGES 3 SIZE %d DELETED 1)' % total], data
# The IMAP4rev1 session on the same folder keeps RFC 3501's answers.
typ, _ = old.select("INBOX")
assert "RECENT" in old.untagged_responses and "LIST" not in old.untagged_responses
typ, data = old.search(None, "ALL")
assert data == [b"1 2 3"], data
m.logout(); old.logout()
print("ok")
"#
    );
    let out = run(&t, &body);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn utf8_names_under_rev2_are_modified_utf7_for_rev1_and_back() {
    let t = server("");
    let out = run(
        &t,
        r#"
import base64 as b64
def mutf7(name):
    # RFC 3501 5.1.3, written out independently of the server.
    out, run = b"", ""
    def shift(run):
        return b"&" + b64.b64encode(run.encode("utf-16-be")).rstrip(b"=").replace(b"/", b",") + b"-"
    for ch in name:
        if " " <= ch <= "~":
            if run: out += shift(run); run = ""
            out += b"&-" if ch == "&" else ch.encode()
        else:
            run += ch
    return out + (shift(run) if run else b"")
def q(name_bytes):
    return b'"' + name_bytes + b'"'
new = plain(); new.enable("IMAP4rev2")
old = plain()
utf8_name = "Caf\u00e9/\u65e5\u672c & co"
typ, data = new.create(q(utf8_name.encode()))
assert typ == "OK", data
# The rev1 session sees the name in modified UTF-7 and can use it so.
typ, data = old.list('""', "*")
assert any(d.endswith(q(mutf7(utf8_name))) for d in data), (data, mutf7(utf8_name))
assert any(d.endswith(q(mutf7("Caf\u00e9"))) for d in data), data
typ, data = old.status(q(mutf7(utf8_name)), "(MESSAGES)")
assert typ == "OK", data
old.append(q(mutf7(utf8_name)), None, None, b"Subject: via rev1\r\n\r\nx\r\n")
# And the other way: created in modified UTF-7, read back in UTF-8.
other = "\u00dcn\u00efcode \u2603"
typ, data = old.create(q(mutf7(other)))
assert typ == "OK", data
typ, data = new.list('""', "*")
assert any(d.endswith(q(other.encode())) for d in data), data
typ, data = new.select(q(utf8_name.encode()))
assert typ == "OK" and data == [b"1"], data
listed = new.untagged_responses.pop("LIST")
assert listed == [b'(\\HasNoChildren) "/" ' + q(utf8_name.encode())], listed
# One folder, two spellings: the rev1 spelling of an existing name is taken.
typ, data = old.create(q(mutf7(other)))
assert typ == "NO" and b"ALREADYEXISTS" in data[0], data
# Modified UTF-7 that is not canonical is refused, not guessed at.
typ, data = old.create(b'"&AGE-"')
assert typ == "NO", data
new.logout(); old.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn list_extended_status_searchres_and_literal8_append() {
    let t = server("");
    let body = format!(
        "{MESSAGE}{}",
        r#"
m = rev2()
for name in ("Work", "Work/Old", "Gone"):
    m.create(name)
m.subscribe("Work/Old"); m.subscribe("Gone")
m.delete("Gone")
m.append("Work", None, None, b"Subject: a\r\n\r\nx\r\n")
# LIST (SUBSCRIBED): subscriptions, a deleted folder's among them.
typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', "*")
listed = m.response("LIST")[1]
assert b'(\\HasNoChildren \\Subscribed) "/" "Work/Old"' in listed, listed
assert any(b"\\NonExistent" in l and l.endswith(b'"Gone"') for l in listed), listed
assert not any(l.endswith(b'"Work"') for l in listed), listed
# RECURSIVEMATCH: the unsubscribed parent, with CHILDINFO.
m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
listed = m.response("LIST")[1]
assert b'(\\HasChildren) "/" "Work" ("CHILDINFO" ("SUBSCRIBED"))' in listed, listed
# LIST-STATUS: a STATUS after each folder.
typ, data = m._simple_command("LIST", '""', "Work*", "RETURN", "(CHILDREN SUBSCRIBED STATUS (MESSAGES SIZE))")
assert typ == "OK", data
listed = m.response("LIST")[1]
assert b'(\\HasChildren) "/" "Work"' in listed, listed
status = m.response("STATUS")[1]
assert any(s.startswith(b'"Work" (MESSAGES 1 SIZE ') for s in status), status
assert b'"Work/Old" (MESSAGES 0 SIZE 0)' in status, status
# Several patterns; SPECIAL-USE selection.
m._simple_command("LIST", '""', "(Sent Drafts Work/Old)")
listed = m.response("LIST")[1]
assert len(listed) == 3, listed
m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
listed = m.response("LIST")[1]
assert all(re.search(rb"\\(Sent|Drafts|Trash|Junk|Archive)", l) for l in listed) and len(listed) == 5, listed
try:
    m._simple_command("LIST", "(NONSENSE)", '""', "*")
    raise AssertionError("unknown selection option accepted")
except imaplib.IMAP4.error as e:
    assert "NONSENSE" in str(e), e
# SEARCHRES: RETURN (SAVE) answers nothing; `$` is the saved result.
for i in range(4):
    m.append("INBOX", None, None, b"Subject: %s\r\n\r\nx\r\n" % (b"keep" if i % 2 else b"drop"))
m.select("INBOX")
typ, data = m._simple_command("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "keep")
assert typ == "OK" and m.response("ESEARCH")[1] == [None], data
typ, data = m.fetch("$", "(UID)")
assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"2", b"4"], data
m.store("$", "+FLAGS", "\\Flagged")
typ, data = m.search(None, "FLAGGED")
assert m.response("ESEARCH")[1] == [('(TAG "%s") ALL 2,4' % tag_of(m)).encode()]
typ, data = m._simple_command("SEARCH", "NOT", "$")
assert m.response("ESEARCH")[1] == [('(TAG "%s") ALL 1,3' % tag_of(m)).encode()]
# APPEND with a literal8 (BINARY): NUL bytes survive BINARY, never BODY.
raw = (b"Subject: bin\r\nContent-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)))
tag = m._new_tag()
m.send(tag + b" APPEND INBOX ~{%d}\r\n" % len(raw))
assert m.readline().startswith(b"+"), "no continuation"
m.send(raw + b"\r\n")
while True:
    line = m.readline()
    if line.startswith(tag):
        break
assert b"OK" in line, line
m.noop()
typ, data = m.fetch("5", "(BODY.PEEK[1] BINARY.PEEK[1])")
body = [d for d in data if isinstance(d, tuple)]
assert b"\x00" not in body[0][1] and body[1][1] == bytes(range(256)), data
m.logout()
print("ok")
"#
    );
    let out = run(&t, &body);
    assert_eq!(out.trim(), "ok");
}
