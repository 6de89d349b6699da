//! The shipped `content` filter (plugins/content) in the real server: an
//! attachment named `.exe` (inside a forwarded message too) is refused with
//! 550 5.7.1; a clean message reaches INBOX with `X-Content-Filter: clean`;
//! a subject pattern and a body pattern (in a base64 HTML part) send the
//! message to Junk with the reason in the header — read back over IMAP.

mod harness;
use harness::{Tern, config, python};

#[test]
fn attachments_refused_clean_tagged_patterns_quarantined() {
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
config = {{ refuse_extensions = "exe, scr, js", subject_contains = "lottery winner, free money", body_regex = "bitcoin\\s+doubler" }}
"#,
        test_plugins::shipped::CONTENT
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let script = format!(
        "SMTP = {}\nIMAP = {}\n{}",
        t.port("smtp"),
        t.port("imap"),
        CONTENT_PY
    );
    let out = python(&script, &[]);
    assert!(out.trim().ends_with("ok"), "{out}");
}

const CONTENT_PY: &str = r#"
import email, imaplib, smtplib
from email.message import EmailMessage

def message(subject, body="hello\n"):
    m = EmailMessage()
    m["From"] = "lisa@outside.test"; m["To"] = "bob@example.test"; m["Subject"] = subject
    m.set_content(body)
    return m

def send(m):
    s = smtplib.SMTP("127.0.0.1", SMTP)
    try:
        s.sendmail("lisa@outside.test", ["bob@example.test"], m.as_bytes())
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        s.close()

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

i = imaplib.IMAP4("127.0.0.1", IMAP)
i.login("bob@example.test", "pw")
def folder(name):
    i.select(name, readonly=True)
    typ, data = i.search(None, "ALL")
    out = []
    for n in data[0].split():
        typ, msg = i.fetch(n, "(BODY.PEEK[HEADER])")
        h = email.message_from_bytes(msg[0][1])
        out.append((str(email.header.make_header(email.header.decode_header(h["Subject"]))), h.get_all("X-Content-Filter")))
    return out
inbox, junk = folder("INBOX"), folder("Junk")
i.logout()
assert inbox == [("minutes of the meeting", ["clean"])], inbox
assert junk == [
    ("You are a LOTTERY Winner!", ['quarantined: subject matches "lottery winner"']),
    ("investment", ["quarantined: body matches /bitcoin\\s+doubler/"]),
], junk
print("ok")
"#;
