//! The shipped `content` filter (plugins/content) in the real server: an
//! attachment named `.exe` (inside a forwarded message too) is refused with
//! 550 5.7.1; a clean message reaches INBOX with `X-Content-Filter: clean`;
//! a subject pattern and a body pattern (in a base64 HTML part) send the
//! message to Junk with the reason in the header — read back over IMAP.
//! Without body rules a single-part message is judged by its fields alone,
//! and a multipart's parts are still checked.

mod harness;
use harness::{Tern, config, python};

#[test]
fn attachments_refused_clean_tagged_patterns_quarantined() {
    run(
        r#"refuse_extensions = "exe, scr, js", subject_contains = "lottery winner, free money", body_regex = "bitcoin\\s+doubler""#,
        CONTENT_PY,
    );
}

/// Runs `script` (after `HELPERS_PY`, with `SMTP` and `IMAP` set) against
/// a server running the content filter with the config keys `keys`.
fn run(keys: &str, script: &str) {
    let extra = format!(
        r#"[[listen]]
protocol = "imap"
address = "{{ip}}:0"

[tls]
allow_plaintext_auth = true

[[plugin]]
name = "content"
path = "{}"
timeout = "5s"
config = {{ {keys} }}
"#,
        test_plugins::shipped::CONTENT
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let script = format!(
        "SMTP = {}\nIMAP = {}\n{HELPERS_PY}{script}",
        t.port("smtp"),
        t.port("imap"),
    );
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
}

/// Sending (an `EmailMessage` or bytes; the SMTP code and text of a
/// refusal) and reading a folder back over IMAP (subjects and the
/// filter's headers).
const HELPERS_PY: &str = r#"
import email, imaplib, smtplib
from email.message import EmailMessage

def send(m):
    raw = m if isinstance(m, bytes) else m.as_bytes()
    s = smtplib.SMTP("127.0.0.1", SMTP)
    try:
        s.sendmail("lisa@outside.test", ["bob@example.test"], raw)
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        s.close()

def folders(*names):
    i = imaplib.IMAP4("127.0.0.1", IMAP)
    i.login("bob@example.test", "pw")
    out = []
    for name in names:
        i.select(name, readonly=True)
        typ, data = i.search(None, "ALL")
        found = []
        for n in data[0].split():
            typ, msg = i.fetch(n, "(BODY.PEEK[HEADER])")
            h = email.message_from_bytes(msg[0][1])
            found.append((str(email.header.make_header(email.header.decode_header(h["Subject"]))), h.get_all("X-Content-Filter")))
        out.append(found)
    i.logout()
    return out
"#;

const CONTENT_PY: &str = r#"
def message(subject, body="hello\n"):
    m = EmailMessage()
    m["From"] = "lisa@outside.test"; m["To"] = "bob@example.test"; m["Subject"] = subject
    m.set_content(body)
    return m

# A refused extension: 550 5.7.1 naming the attachment.
m = message("invoice")
m.add_attachment(b"MZ\x90\x00", maintype="application", subtype="octet-stream", filename="invoice.pdf.EXE")
code, text = send(m)
assert code == 550 and text.startswith("5.7.1 Message refused: attachment \"invoice.pdf.EXE\""), (code, text)
# ... also inside a forwarded message.
inner = message("inner")
inner.add_attachment(b"alert(1)", maintype="text", subtype="javascript", filename="run.js")
outer = message("fwd: see this")
outer.add_attachment(inner)
code, text = send(outer)
assert code == 550 and "run.js" in text, (code, text)

# Clean: accepted, tagged clean. A .pdf is fine.
m = message("minutes of the meeting")
m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="minutes.pdf")
assert send(m) == (250, "")
# Subject pattern (RFC 2047-encoded, mixed case): quarantined to Junk.
m = message("=?utf-8?q?You_are_a_LOTTERY_Winner!?=")
assert send(m) == (250, "")
# Body pattern in an HTML part sent base64: quarantined too.
m = EmailMessage()
m["From"] = "lisa@outside.test"; m["To"] = "bob@example.test"; m["Subject"] = "investment"
m.set_content("<p>Try our <b>Bitcoin   doubler</b> today</p>", subtype="html", cte="base64")
assert send(m) == (250, "")

inbox, junk = folders("INBOX", "Junk")
assert inbox == [("minutes of the meeting", ["clean"])], inbox
assert junk == [
    ("You are a LOTTERY Winner!", ['quarantined: subject matches "lottery winner"']),
    ("investment", ["quarantined: body matches /bitcoin\\s+doubler/"]),
], junk
print("ok")
"#;

/// Without body rules a single-part message is judged by its fields alone
/// (the body is not read): a message that is itself a file is refused by
/// the name in its `Content-Disposition` (RFC 2231) or `Content-Type`, an
/// encoded subject still matches, and so does a plain one (judged without
/// a parse), parts of a multipart are still checked, and text in the body
/// is not looked at.
#[test]
fn without_body_rules_single_parts_are_judged_by_their_fields() {
    run(
        r#"refuse_extensions = "exe, scr", subject_contains = "lottery winner""#,
        FIELDS_PY,
    );
}

const FIELDS_PY: &str = r#"
head = b"From: lisa@outside.test\r\nTo: bob@example.test\r\n"
# The message is the file: its name in Content-Disposition, RFC 2231-encoded.
code, text = send(head + b"Subject: your file\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Disposition: attachment;\r\n filename*=utf-8''setup%20now.EXE\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAA==\r\n")
assert code == 550 and "setup now.EXE" in text, (code, text)
# ... or only as the Content-Type's name.
code, text = send(head + b"Subject: screen\r\nContent-Type: application/octet-stream; name=\"saver.scr\"\r\n\r\nxx\r\n")
assert code == 550 and "saver.scr" in text, (code, text)
# A multipart's parts are still read.
code, text = send(head + b"Subject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
                  b"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                  b"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"run.exe\"\r\n\r\nMZ\r\n--b1--\r\n")
assert code == 550 and "run.exe" in text, (code, text)
# An encoded subject matches: quarantined.
assert send(head + b"Subject: =?utf-8?q?a_LOTTERY_winner?=\r\n\r\nhello\r\n") == (250, "")
# A plain subject (nothing to decode, no file name: judged without a
# parse) matches as well, mixed case, beside a Content-Type.
assert send(head + b"Subject: Big LOTTERY WINNER news\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n") == (250, "")
# Body text is not a rule here: clean.
assert send(head + b"Subject: news\r\n\r\nlottery winner in the body\r\n") == (250, "")

inbox, junk = folders("INBOX", "Junk")
assert inbox == [("news", ["clean"])], inbox
assert junk == [
    ("a LOTTERY winner", ['quarantined: subject matches "lottery winner"']),
    ("Big LOTTERY WINNER news", ['quarantined: subject matches "lottery winner"']),
], junk
print("ok")
"#;
