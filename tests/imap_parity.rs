//! IMAP on a par with Dovecot (issue 23), against the real binary with
//! Python's imaplib / IMAPClient: a command's own answer reflects what
//! other sessions committed before it started, SORT / ESORT /
//! SORT=DISPLAY, THREAD (REFERENCES, ORDEREDSUBJECT) and CONTEXT.

mod harness;
mod imap_common;
use imap_common::{run, server};

/// Runs a Python script against a fresh server; it prints "ok" when all
/// its assertions held.
fn passes(script: &str) {
    let t = server("");
    assert_eq!(run(&t, script).trim(), "ok");
}

#[test]
fn fetch_answer_reflects_flags_another_session_set_before_it() {
    passes(
        r#"
a = client()
for i in range(3):
    a.append("INBOX", b"Subject: %d\r\n\r\nx\r\n" % i)
a.select_folder("INBOX")
b = Raw()
b.ok("SELECT INBOX")
a.add_flags([2], [b"\\Flagged"])
untagged, tagged = b.cmd("FETCH 2 (FLAGS)")
assert tagged.startswith("OK"), tagged
fetches = [l for l in untagged if l.startswith("* 2 FETCH")]
assert fetches, untagged
# Every FETCH for message 2 in B's answer -- above all the last one, the
# answer to its own command -- carries the flag A set before.
assert all("\\Flagged" in l for l in fetches), untagged
# STORE and SEARCH see it too: SEARCH FLAGGED finds it at once.
untagged, tagged = b.cmd("SEARCH FLAGGED")
assert "* SEARCH 2" in untagged, untagged
a.remove_flags([2], [b"\\Flagged"])
untagged, tagged = b.cmd("SEARCH FLAGGED")
assert "* SEARCH" in untagged, untagged
# An expunge by A is still held back during B's FETCH by sequence number.
a.delete_messages([1]); a.expunge()
untagged, tagged = b.cmd("FETCH 1:3 (UID)")
assert tagged.startswith("OK") and not any("EXPUNGE" in l for l in untagged), untagged
untagged, tagged = b.cmd("NOOP")
assert "* 1 EXPUNGE" in untagged, untagged
print("ok")
"#,
    );
}

/// Five messages with known dates, senders, subjects and references.
const SORT_FIXTURE: &str = r#"
a = client()
msgs = [
    (b"Date: Mon, 2 Feb 2026 10:00:00 +0000\r\nFrom: Zed <zed@x.test>\r\nTo: c@x.test\r\nSubject: =?UTF-8?Q?=C3=A9t=C3=A9?=\r\nMessage-ID: <1@x>\r\n\r\none\r\n"),
    (b"Date: Sun, 1 Feb 2026 10:00:00 +0000\r\nFrom: Adam <mia@x.test>\r\nTo: a@x.test\r\nSubject: Re: lunch\r\nMessage-ID: <2@x>\r\nReferences: <3@x>\r\n\r\ntwo two\r\n"),
    (b"Date: Sat, 31 Jan 2026 10:00:00 +0000\r\nFrom: bob@x.test\r\nTo: b@x.test\r\nSubject: lunch\r\nMessage-ID: <3@x>\r\n\r\nthree three three\r\n"),
    (b"Date: Tue, 3 Feb 2026 09:00:00 +0100\r\nFrom: Carl <al@x.test>\r\nTo: d@x.test\r\nSubject: [list] Fwd: Lunch\r\nMessage-ID: <4@x>\r\nIn-Reply-To: <2@x>\r\n\r\n4\r\n"),
    (b"From: Yan <yan@x.test>\r\nSubject: zebra\r\nMessage-ID: <5@x>\r\n\r\nno date: sorts by its internal date\r\n"),
]
for m in msgs:
    a.append("INBOX", m, msg_time=__import__("datetime").datetime(2026, 1, 1, 12, 0, 0))
a.logout()
r = Raw()
untagged = r.ok("SELECT INBOX")
"#;

#[test]
fn sort_esort_and_sort_display() {
    passes(&format!(
        "{SORT_FIXTURE}{}",
        r#"
caps = r.ok("CAPABILITY")[0]
for c in ["SORT", "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT"]:
    assert " " + c + " " in caps + " ", caps
def sort(args):
    u = r.ok(args)
    lines = [l for l in u if l.startswith("* SORT")]
    assert len(lines) == 1, u
    return lines[0][len("* SORT"):].split()
# Sent date (message 5 has none: its internal date, 2026-01-01, is first).
assert sort("SORT (DATE) UTF-8 ALL") == ["5", "3", "2", "1", "4"], sort("SORT (DATE) UTF-8 ALL")
assert sort("SORT (REVERSE DATE) UTF-8 ALL") == ["4", "1", "2", "3", "5"], sort("SORT (REVERSE DATE) UTF-8 ALL")
# FROM compares the mailbox (local part): al, bob, mia, yan, zed.
assert sort("SORT (FROM) UTF-8 ALL") == ["4", "3", "2", "5", "1"], sort("SORT (FROM) UTF-8 ALL")
# DISPLAYFROM the display name, else the address: Adam, bob@, Carl, Yan, Zed.
assert sort("SORT (DISPLAYFROM) UTF-8 ALL") == ["2", "3", "4", "5", "1"], sort("SORT (DISPLAYFROM) UTF-8 ALL")
# Base subjects: lunch, lunch, lunch (ties by number), zebra, été (decoded).
assert sort("SORT (SUBJECT) UTF-8 ALL") == ["2", "3", "4", "5", "1"], sort("SORT (SUBJECT) UTF-8 ALL")
assert sort("SORT (SUBJECT REVERSE DATE) UTF-8 ALL") == ["4", "2", "3", "5", "1"], sort("SORT (SUBJECT REVERSE DATE) UTF-8 ALL")
assert sort("SORT (TO) UTF-8 ALL") == ["5", "2", "3", "1", "4"], sort("SORT (TO) UTF-8 ALL")
# With search criteria, by UID.
# All were appended with one internal date: REVERSE does not reverse ties,
# which keep mailbox order (RFC 5256 section 3).
assert sort("UID SORT (REVERSE ARRIVAL) UTF-8 SUBJECT lunch") == ["2", "3", "4"], sort("UID SORT (REVERSE ARRIVAL) UTF-8 SUBJECT lunch")
assert sort("SORT (DATE) US-ASCII NOT FROM zed") == ["5", "3", "2", "4"], sort("SORT (DATE) US-ASCII NOT FROM zed")
untagged, tagged = r.cmd("SORT (DATE) KOI8-R ALL")
assert tagged.startswith("NO [BADCHARSET"), tagged
# ESORT: ALL keeps the sort order; MIN/MAX are the first and last sorted.
u = r.ok("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
assert u == ['* ESEARCH (TAG "t%d") MIN 5 MAX 4 COUNT 5 ALL 5,3,2,1,4' % r.n], u
u = r.ok("UID SORT RETURN () (REVERSE DATE) UTF-8 ALL")
assert u == ['* ESEARCH (TAG "t%d") UID ALL 4,1:3,5' % r.n], u
untagged, tagged = r.cmd("SORT RETURN (SAVE) (DATE) UTF-8 ALL")
assert tagged.startswith("BAD"), tagged
# IMAPClient's sort() parses the answer as a real client would.
c = client(); c.select_folder("INBOX")
assert c.sort(["SUBJECT"]) == [2, 3, 4, 5, 1]
c.use_uid = False
sizes = c.fetch([1, 2, 3, 4, 5], ["RFC822.SIZE"])
by_size = sorted(sizes, key=lambda n: (-sizes[n][b"RFC822.SIZE"], n))
assert c.sort(["REVERSE", "SIZE"]) == by_size, (by_size, sizes)
print("ok")
"#
    ));
}

#[test]
fn thread_references_and_orderedsubject() {
    passes(&format!(
        "{SORT_FIXTURE}{}",
        r#"
def thread(args):
    u = r.ok(args)
    lines = [l for l in u if l.startswith("* THREAD")]
    assert len(lines) == 1, u
    return lines[0][len("* THREAD "):]
# 3 <- 2 (References) <- 4 (In-Reply-To); 5 and 1 alone; roots by date.
assert thread("THREAD REFERENCES UTF-8 ALL") == "(5)(3 2 4)(1)", thread("THREAD REFERENCES UTF-8 ALL")
# By base subject: lunch (3 first, then 2 and 4 as its children).
assert thread("THREAD ORDEREDSUBJECT UTF-8 ALL") == "(5)(3 (2)(4))(1)"
assert thread("UID THREAD REFERENCES UTF-8 NOT SUBJECT zebra") == "(3 2 4)(1)"
untagged, tagged = r.cmd("THREAD FOO UTF-8 ALL")
assert tagged.startswith("BAD") or tagged.startswith("NO"), tagged
c = client(); c.select_folder("INBOX")
assert c.thread("REFERENCES") == ((5,), (3, 2, 4), (1,)), c.thread("REFERENCES")
print("ok")
"#
    ));
}

#[test]
fn qresync_select_vanished_and_uid_fetch_changedsince_vanished() {
    passes(
        r#"
a = client()
for i in range(6):
    a.append("INBOX", b"Subject: %d\r\n\r\nx\r\n" % i)
r = Raw()
caps = r.ok("CAPABILITY")[0]
assert " QRESYNC" in caps, caps
# QRESYNC parameters before ENABLE QRESYNC are refused (RFC 7162 3.2.5).
untagged, tagged = r.cmd("SELECT INBOX (QRESYNC (1 1))")
assert tagged.startswith("BAD"), tagged
assert r.ok("ENABLE QRESYNC") == ["* ENABLED QRESYNC"]
u = r.ok("SELECT INBOX")
uidvalidity = int([re.search(r"UIDVALIDITY (\d+)", l).group(1) for l in u if "UIDVALIDITY" in l][0])
modseq = int([re.search(r"HIGHESTMODSEQ (\d+)", l).group(1) for l in u if "HIGHESTMODSEQ" in l][0])
r.ok("UNSELECT")
# Meanwhile another session expunges 2 and 4 and flags 5.
a.select_folder("INBOX")
a.delete_messages([2, 4]); a.expunge()
a.add_flags([5], [b"\\Flagged"])
u = r.ok("SELECT INBOX (QRESYNC (%d %d 1:6))" % (uidvalidity, modseq))
assert "* VANISHED (EARLIER) 2,4" in u, u
fetches = [l for l in u if " FETCH " in l]
assert len(fetches) == 1 and "UID 5" in fetches[0] and "\\Flagged" in fetches[0] and "MODSEQ" in fetches[0], u
# A wrong UIDVALIDITY gets a plain SELECT.
u = r.ok("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity + 1, modseq))
assert not any("VANISHED" in l or " FETCH " in l for l in u), u
# UID FETCH ... (CHANGEDSINCE m VANISHED).
u = r.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq)
assert u[0] == "* VANISHED (EARLIER) 2,4", u
assert len(u) == 2 and "UID 5" in u[1], u
untagged, tagged = r.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq)
assert tagged.startswith("BAD"), tagged
# With QRESYNC on, another session's expunge arrives as VANISHED.
a.delete_messages([1]); a.expunge()
u = r.ok("NOOP")
assert "* VANISHED 1" in u and not any("EXPUNGE" in l for l in u), u
# And its own EXPUNGE too.
r.ok("UID STORE 3 +FLAGS (\\Deleted)")
u = r.ok("EXPUNGE")
assert u == ["* VANISHED 3"], u
print("ok")
"#,
    );
}

#[test]
fn multiappend_adds_all_messages_at_once() {
    passes(
        r#"
r = Raw()
caps = r.ok("CAPABILITY")[0]
assert " MULTIAPPEND" in caps, caps
one = "Subject: one\r\n\r\n1\r\n"; two = "Subject: two\r\n\r\n22\r\n"; three = "Subject: three\r\n\r\n333\r\n"
# LITERAL+ and a synchronising literal (the server's continuation is read below).
r.n += 1
tag = "t%d" % r.n
r.sock.sendall(('%s APPEND INBOX (\\Seen) {%d+}\r\n%s "05-Feb-2026 10:00:00 +0000" {%d+}\r\n%s (\\Flagged \\Draft) {%d}\r\n'
                % (tag, len(one), one, len(two), two, len(three))).encode())
assert r.line().startswith("+"), "no continuation"
r.sock.sendall((three + "\r\n").encode())
untagged = []
while True:
    l = r.line()
    if l.startswith(tag + " "):
        break
    untagged.append(l)
assert l.startswith(tag + " OK [APPENDUID "), l
assert l.split()[4].rstrip("]") == "1:3", l
c = client(); c.select_folder("INBOX")
got = c.fetch([1, 2, 3], ["FLAGS", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
assert [got[u][b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() for u in (1, 2, 3)] == [b"Subject: one", b"Subject: two", b"Subject: three"], got
flags = {u: set(got[u][b"FLAGS"]) - {b"\\Recent"} for u in got}
assert flags == {1: {b"\\Seen"}, 2: set(), 3: {b"\\Flagged", b"\\Draft"}}, got
assert got[2][b"INTERNALDATE"].strftime("%Y-%m-%d") == "2026-02-05", got
# Into a folder that does not exist: nothing is added anywhere.
untagged, tagged = r.cmd("APPEND Nope {1+}\r\na {1+}\r\nb")
assert tagged.startswith("NO [TRYCREATE]"), tagged
untagged, tagged = r.cmd("APPEND INBOX {1+}\r\na (")
assert tagged.startswith("BAD"), tagged
assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 3
print("ok")
"#,
    );
}

#[test]
fn catenate_builds_a_message_from_text_and_urls() {
    passes(
        r#"
a = client()
a.create_folder("Drafts2")
a.append("INBOX", b"From: x@y.test\r\nSubject: original\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b\r\nContent-Type: text/plain\r\n\r\npart two\r\n--b--\r\n")
r = Raw()
caps = r.ok("CAPABILITY")[0]
assert " CATENATE" in caps and "URLAUTH" not in caps, caps
u = r.ok("SELECT INBOX")
uv = [re.search(r"UIDVALIDITY (\d+)", l).group(1) for l in u if "UIDVALIDITY" in l][0]
head = "Subject: forwarded\r\n\r\n"
untagged, tagged = r.cmd('APPEND Drafts2 (\\Seen) CATENATE (TEXT {%d+}\r\n%s URL "/INBOX;UIDVALIDITY=%s/;UID=1/;SECTION=2" TEXT {2+}\r\n-- URL ";UID=1/;SECTION=HEADER.FIELDS%%20(SUBJECT)")' % (len(head), head, uv))
assert tagged.startswith("OK [APPENDUID "), (tagged, untagged)
c = client(); c.select_folder("Drafts2")
body = c.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
assert body == b"Subject: forwarded\r\n\r\npart two--Subject: original\r\n\r\n", body
# A wrong UIDVALIDITY, a missing message and URLAUTH are BADURL; nothing is added.
for url in ["/INBOX;UIDVALIDITY=1/;UID=1", "/INBOX;UID=99", "/INBOX;UID=1;URLAUTH=anonymous:internal:0"]:
    untagged, tagged = r.cmd('APPEND Drafts2 CATENATE (URL "%s")' % url)
    assert tagged.startswith('NO [BADURL "%s"]' % url), tagged
assert c.folder_status("Drafts2", ["MESSAGES"])[b"MESSAGES"] == 1
print("ok")
"#,
    );
}

#[test]
fn context_sort_partial_and_update() {
    passes(
        r#"
a = client()
# Subjects in sort order: a(1) c(3) e(5); b, d come later.
for s in [b"a", b"x", b"c", b"y", b"e"]:
    a.append("INBOX", b"Subject: " + s + b"\r\n\r\nbody\r\n")
a.select_folder("INBOX")
r = Raw()
assert " CONTEXT=SORT" in r.ok("CAPABILITY")[0]
r.ok("SELECT INBOX")
u = r.ok("SORT RETURN (PARTIAL 2:4) (REVERSE SUBJECT) UTF-8 ALL")
# y x e c a -> 2nd to 4th: x e c = 2,5,3.
assert u == ['* ESEARCH (TAG "t%d") PARTIAL (2:4 2,5,3)' % r.n], u
for bad in ["PARTIAL 1", "PARTIAL 1:*", "PARTIAL *:1"]:
    untagged, tagged = r.cmd("SORT RETURN (%s) (SUBJECT) UTF-8 ALL" % bad)
    assert tagged.startswith("BAD"), (bad, tagged)
# A live sort of the unseen messages by subject, in UIDs.
a.add_flags([2, 4], [b"\\Seen"])
u = r.ok("UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN")
live = "t%d" % r.n
assert [l for l in u if "ESEARCH" in l] == ['* ESEARCH (TAG "%s") UID ALL 1,3,5' % live], u
# Another session delivers b and d: they enter at positions 2 and 4.
a.append("INBOX", b"Subject: d\r\n\r\nx\r\n")
a.append("INBOX", b"Subject: b\r\n\r\nx\r\n")
u = r.ok("NOOP")
adds = [l for l in u if "ADDTO" in l]
assert adds == ['* ESEARCH (TAG "%s") UID ADDTO (2 7)' % live,
                '* ESEARCH (TAG "%s") UID ADDTO (4 6)' % live], u
assert u.index("* 7 EXISTS") < u.index(adds[0]), u
# Now a b c d e = 1 7 3 6 5; b and c leave as one run at position 2.
u = r.ok("UID STORE 7,3 +FLAGS.SILENT (\\Seen)")
assert '* ESEARCH (TAG "%s") UID REMOVEFROM (2 7,3)' % live in u, u
# a d e; an expunge of d (position 2) is reported before its EXPUNGE.
r.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)")
u = r.ok("EXPUNGE")
assert u == ['* ESEARCH (TAG "%s") UID REMOVEFROM (2 6)' % live, "* 6 EXPUNGE"], u
# Sequence numbers in sorted order: c (3) comes back between a and e.
r.ok("SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNSEEN")
seq = "t%d" % r.n
u = r.ok("STORE 3 -FLAGS.SILENT (\\Seen)")
assert '* ESEARCH (TAG "%s") ADDTO (2 3)' % seq in u, u
assert '* ESEARCH (TAG "%s") UID ADDTO (2 3)' % live in u, u
# UPDATE under a tag that names a live context is BAD (RFC 5267 4.3).
r.sock.sendall(("%s UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL\r\n" % live).encode())
l = r.line()
while not l.startswith(live + " "):
    l = r.line()
assert l.startswith(live + " BAD"), l
r.ok('CANCELUPDATE "%s" "%s"' % (live, seq))
u = r.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
assert not any("ESEARCH" in l for l in u), u
# Eight live contexts at most; the ninth is refused, its results still sent.
for i in range(8):
    u = r.ok("SORT RETURN (UPDATE COUNT) (DATE) UTF-8 ALL")
    assert not any("NOUPDATE" in l for l in u), u
u = r.ok("SORT RETURN (UPDATE COUNT) (DATE) UTF-8 ALL")
assert u == ['* NO [NOUPDATE "t%d"] too many live searches' % r.n,
             '* ESEARCH (TAG "t%d") COUNT 6' % r.n], u
print("ok")
"#,
    );
}

/// Dovecot's imaptest scripted compliance groups (built outside the
/// repository: `sh ../shared/tools/imaptest/build.sh /tmp/imaptest`), run
/// when `IMAPTEST` names the binary (its `tests` folder beside it):
/// `IMAPTEST=/tmp/imaptest/src/imaptest cargo test --test imap_parity -- --ignored`.
#[test]
#[ignore = "needs imaptest built outside the repository (IMAPTEST=path)"]
fn imaptest_scripted_groups_pass() {
    let bin = std::env::var("IMAPTEST").expect("IMAPTEST names the imaptest binary");
    let tests = std::path::Path::new(&bin)
        .parent()
        .expect("imaptest lives in a folder")
        .join("tests");
    // imaptest logs in over the plain port.
    let t = server("[tls]\nallow_plaintext_auth = true\n");
    t.add_user("imaptest@example.test", "pw");
    let out = std::process::Command::new(&bin)
        .arg("host=127.0.0.1")
        .arg(format!("port={}", t.port("imap")))
        .arg("user=imaptest@example.test")
        .arg("pass=pw")
        .arg(format!("test={}", tests.display()))
        .output()
        .expect("imaptest runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    let summary = stdout
        .lines()
        .find(|l| l.contains("test groups:"))
        .expect("imaptest's summary line");
    assert!(summary.contains(" 0 failed"), "{summary}\n{stderr}");
    // Dovecot 2.3 skips 4 groups here (URLAUTH x3, CONTEXT=SORT's
    // partial); Tern skips no more than that.
    let skipped: u32 = summary
        .split(", ")
        .find_map(|part| part.strip_suffix(" skipped due to missing capabilities"))
        .map_or(Some(0), |n| n.trim().parse().ok())
        .expect("a count of skipped groups");
    assert!(skipped <= 4, "{summary}");
}

#[test]
fn context_search_partial_update_and_cancelupdate() {
    passes(
        r#"
a = client()
for i in range(5):
    a.append("INBOX", b"Subject: %d\r\n\r\nbody\r\n" % i)
a.select_folder("INBOX")
r = Raw()
assert " CONTEXT=SEARCH" in r.ok("CAPABILITY")[0]
r.ok("SELECT INBOX")
u = r.ok("SEARCH RETURN (PARTIAL 4:2) ALL")
assert u == ['* ESEARCH (TAG "t%d") PARTIAL (2:4 2:4)' % r.n], u
u = r.ok("SEARCH RETURN (PARTIAL 6:7) ALL")
assert u == ['* ESEARCH (TAG "t%d") PARTIAL (6:7 NIL)' % r.n], u
# ESORT's PARTIAL keeps the sort order: subjects 4, 3, 1, 0.
u = r.ok("SORT RETURN (PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 1:2,4:5")
assert u == ['* ESEARCH (TAG "t%d") PARTIAL (1:2 5,4)' % r.n], u
for bad in ["PARTIAL 1", "PARTIAL 1:*", "PARTIAL 0:3"]:
    untagged, tagged = r.cmd("SEARCH RETURN (%s) ALL" % bad)
    assert tagged.startswith("BAD"), (bad, tagged)
# A live search: flags set here and by another session, an append, an expunge.
r.ok("SEARCH RETURN (UPDATE) SEEN")
live = "t%d" % r.n
u = r.ok("STORE 1,2,4 +FLAGS.SILENT (\\Seen)")
assert '* ESEARCH (TAG "%s") ADDTO (0 1:2,4)' % live in u, u
a.remove_flags([2], [b"\\Seen"])
u = r.ok("NOOP")
assert '* ESEARCH (TAG "%s") REMOVEFROM (0 2)' % live in u, u
a.append("INBOX", b"Subject: new\r\n\r\nx\r\n", flags=[b"\\Seen"])
u = r.ok("NOOP")
assert u.index("* 6 EXISTS") < u.index('* ESEARCH (TAG "%s") ADDTO (0 6)' % live), u
r.ok("STORE 4 +FLAGS.SILENT (\\Deleted)")
u = r.ok("EXPUNGE")
assert u == ['* ESEARCH (TAG "%s") REMOVEFROM (0 4)' % live, "* 4 EXPUNGE"], u
r.ok('CANCELUPDATE "%s"' % live)
u = r.ok("STORE 3 +FLAGS.SILENT (\\Seen)")
assert not any("ESEARCH" in l for l in u), u
print("ok")
"#,
    );
}
