//! IMAP on a par with Dovecot (issue 23), against the real binary with
//! Python's imaplib / IMAPClient: a command's own answer reflects what
//! other sessions committed before it started, SORT / ESORT /
//! SORT=DISPLAY, THREAD (REFERENCES, ORDEREDSUBJECT) and CONTEXT.

mod harness;
mod imap_common;
use imap_common::{run, server};

#[test]
fn fetch_answer_reflects_flags_another_session_set_before_it() {
    let t = server("");
    let out = run(
        &t,
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
    assert_eq!(out.trim(), "ok");
}
