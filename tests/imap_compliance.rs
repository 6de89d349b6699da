//! Regressions found by Dovecot's imaptest (its scripted RFC 3501 groups):
//! flag changes from two sessions that must not undo each other, \Recent,
//! keywords announced in FLAGS before a FETCH shows them, CREATE with a
//! trailing separator, LSUB's \Noselect superiors, the text of a nested
//! multipart message, ENVELOPE's groups and source routes, FETCH of a
//! message expunged meanwhile, and memory that stays flat under many
//! logins (imaptest's stress mode). Each test reads exact responses with a
//! line-level client (`Raw`).

mod harness;
mod imap_common;
use imap_common::{run, server};

#[test]
fn two_sessions_adding_and_removing_flags_keep_both_changes() {
    let t = server("");
    let out = run(
        &t,
        r#"
a = Raw(); b = Raw()
a.ok("APPEND INBOX (\\Seen) {14}\r\nSubject: x\r\n\r\n".replace("{14}\r\n", "{14+}\r\n"))
a.ok("SELECT INBOX"); b.ok("SELECT INBOX")
# b still believes the message has only \Seen when it removes \Seen.
a.ok("STORE 1 +FLAGS (\\Answered)")
b.ok("STORE 1 -FLAGS (\\Seen)")
for s in (a, b):
    s.ok("NOOP")
    lines = s.ok("FETCH 1 FLAGS")
    assert any("FETCH (FLAGS (\\Recent \\Answered))" in l or "FETCH (FLAGS (\\Answered))" in l for l in lines), lines
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn recent_is_shown_once_and_kept_by_examine() {
    let t = server("");
    let out = run(
        &t,
        r#"
a = Raw()
a.ok("CREATE r")
for i in range(2):
    a.ok("APPEND r {14+}\r\nSubject: x\r\n\r\n")
lines = a.ok("EXAMINE r")
assert "* 2 RECENT" in lines, lines
a.ok("CLOSE")
lines = a.ok("STATUS r (MESSAGES RECENT)")
assert lines == ['* STATUS "r" (MESSAGES 2 RECENT 2)'], lines
lines = a.ok("SELECT r")
assert "* 2 RECENT" in lines, lines
lines = a.ok("FETCH 1 FLAGS")
assert lines == ["* 1 FETCH (FLAGS (\\Recent))"], lines
a.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
assert a.ok("SEARCH RECENT") == ["* SEARCH 1 2"]
assert a.ok("SEARCH NEW") == ["* SEARCH 1"]
assert a.ok("SEARCH OLD") == ["* SEARCH"]
# Another session selecting now gets none; new mail is recent for one session only.
b = Raw()
lines = b.ok("SELECT r")
assert "* 0 RECENT" in lines, lines
assert b.ok("SEARCH OLD") == ["* SEARCH 1 2"]
# The appending session reports the new message first and so claims it.
lines_b = b.ok("APPEND r {14+}\r\nSubject: y\r\n\r\n")
assert lines_b == ["* 3 EXISTS", "* 1 RECENT"], lines_b
lines_a = a.ok("NOOP")
assert lines_a == ["* 3 EXISTS", "* 2 RECENT"], lines_a
a.ok("CLOSE"); b.ok("CLOSE")
assert a.ok("STATUS r (RECENT)") == ['* STATUS "r" (RECENT 0)']
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn new_keywords_are_announced_in_flags_before_fetch_shows_them() {
    let t = server("");
    let out = run(
        &t,
        r#"
a = Raw(); b = Raw()
a.ok("APPEND INBOX {14+}\r\nSubject: x\r\n\r\n")
lines = a.ok("SELECT INBOX"); b.ok("SELECT INBOX")
assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in lines, lines
lines = a.ok("STORE 1 +FLAGS ($hello)")
assert lines[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $hello)", lines
assert lines[1].startswith("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $hello \\*)]"), lines
assert lines[2].startswith("* 1 FETCH (FLAGS (\\Recent $hello)"), lines
lines = b.ok("NOOP")
assert lines[0].startswith("* FLAGS (") and "$hello" in lines[0], lines
assert any("FETCH (FLAGS ($hello)" in l for l in lines), lines
lines = Raw().ok("SELECT INBOX")
assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $hello)" in lines, lines
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn create_with_trailing_separator_and_lsub_noselect_superiors() {
    let t = server("");
    let out = run(
        &t,
        r#"
a = Raw()
a.ok("CREATE p/")
a.ok("CREATE p/sub/")
a.ok("CREATE p/sub/leaf")
assert a.ok('LIST "" "p*"') == ['* LIST (\\HasChildren) "/" "p"', '* LIST (\\HasChildren) "/" "p/sub"', '* LIST (\\HasNoChildren) "/" "p/sub/leaf"']
# CREATE does not subscribe.
assert a.ok('LSUB "" "p*"') == []
a.ok("SUBSCRIBE p/sub/leaf")
assert a.ok('LSUB "" "p/%"') == ['* LSUB (\\Noselect) "/" "p/sub"']
assert a.ok('LSUB "" "p/*"') == ['* LSUB () "/" "p/sub/leaf"']
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn nested_message_text_envelope_groups_and_source_routes() {
    let t = server("");
    let out = run(
        &t,
        r#"
msg = (b"From: a@b.test\r\nContent-Type: multipart/mixed; boundary=out\r\n\r\n"
       b"--out\r\nContent-Type: message/rfc822\r\n\r\n"
       b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n"
       b"prologue\r\n--in\r\n\r\none\r\n--in--\r\nepilogue\r\n--out--\r\n")
c = client()
c.append("INBOX", msg)
c.append("INBOX", b"From: x@y.test\r\nTo: group: g1@d1.org;, group2: (foo) ;\r\nCc: <@route:user@domain>\r\n\r\nbody\r\n")
c.select_folder("INBOX")
text = c.fetch([1], ["BODY.PEEK[1.TEXT]"])[1][b"BODY[1.TEXT]"]
assert text == b"prologue\r\n--in\r\n\r\none\r\n--in--\r\nepilogue", text
a = Raw()
a.ok("EXAMINE INBOX")
env = a.ok("FETCH 2 ENVELOPE")[0]
assert '((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL))' in env, env
assert '((NIL "@route" "user" "domain"))' in env, env
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn fetch_of_a_message_expunged_meanwhile_is_ok_with_expungeissued() {
    let t = server("");
    let out = run(
        &t,
        r#"
a = Raw(); b = Raw()
a.ok("APPEND INBOX {14+}\r\nSubject: x\r\n\r\n")
a.ok("APPEND INBOX {14+}\r\nSubject: y\r\n\r\n")
a.ok("SELECT INBOX"); b.ok("SELECT INBOX")
b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)"); b.ok("EXPUNGE")
# a has not been told yet: FETCH by sequence number may not report it.
untagged, tagged = a.cmd("FETCH 1:2 BODY.PEEK[HEADER]")
assert tagged.startswith("OK [EXPUNGEISSUED]"), tagged
assert len([l for l in untagged if "FETCH" in l]) == 1 and "Subject: y" in untagged[-1], untagged
assert a.ok("NOOP") == ["* 1 EXPUNGE"]
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

/// VmHWM of a process, in KiB.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

#[test]
fn many_logins_do_not_grow_memory() {
    let t = server("");
    let pid = t.pid().expect("running");
    run(&t, "Raw().ok('LOGOUT')");
    let before = peak_rss(pid);
    // Each login runs argon2 (19 MiB of work memory) on a blocking thread;
    // that memory must go back, not stay in per-thread malloc arenas.
    run(
        &t,
        r#"
for i in range(30):
    Raw().ok("LOGOUT")
"#,
    );
    let after = peak_rss(pid);
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB over 30 logins"
    );
}

#[test]
fn esearch_return_options_and_condstore_enabling_fetch() {
    let t = server("");
    let out = run(
        &t,
        r#"
a = Raw()
caps = a.ok("CAPABILITY")[0]
assert " ESEARCH" in caps, caps
for i in range(4):
    a.ok("APPEND INBOX {14+}\r\nSubject: x\r\n\r\n")
a.ok("SELECT INBOX")
a.ok("STORE 2,4 +FLAGS.SILENT (\\Seen)")
def es(text):
    # The ESEARCH lines without the (TAG "...") correlator, which is checked.
    lines = a.ok(text)
    tag = f't{a.n}'
    assert all(l.startswith(f'* ESEARCH (TAG "{tag}")') for l in lines), (tag, lines)
    return [l.replace(f' (TAG "{tag}")', "") for l in lines]
assert es("SEARCH RETURN () ALL") == ["* ESEARCH ALL 1:4"]
assert es("UID SEARCH RETURN (MIN MAX COUNT) SEEN") == ["* ESEARCH UID MIN 2 MAX 4 COUNT 2"]
assert es("SEARCH RETURN (MIN) 1000") == ["* ESEARCH"]
assert es("SEARCH RETURN (COUNT) SUBJECT {1+}\r\ny") == ["* ESEARCH COUNT 0"]
# PARTIAL is CONTEXT=SEARCH's (RFC 5267), announced now; a bad range is BAD.
assert es("SEARCH RETURN (PARTIAL 1:2) ALL") == ["* ESEARCH PARTIAL (1:2 1:2)"]
assert a.cmd("SEARCH RETURN (PARTIAL 1) ALL")[1].startswith("BAD")
assert a.ok("SEARCH SEEN") == ["* SEARCH 2 4"]
# The first CONDSTORE-enabling command in the selected state also gets HIGHESTMODSEQ.
lines = a.ok("FETCH 1 MODSEQ")
assert any(l.startswith("* OK [HIGHESTMODSEQ ") for l in lines), lines
lines = es("SEARCH RETURN (MAX) MODSEQ 1")
assert lines[0].startswith("* ESEARCH MAX 4 MODSEQ "), lines
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}
