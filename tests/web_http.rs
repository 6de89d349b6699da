//! Web mail at the HTTP level against the real binary, with Python's urllib
//! and cookie jar as the browser (tests/fixtures/webmail.py): login and
//! logout, cookies and security headers, CSRF refusals, one user never
//! reading another's mail, reading, attachments, flags, move, delete,
//! search, paging, and sending to a local address (seen over POP3) and to a
//! remote one (relayed to an aiosmtpd sink), with the copy in Sent (seen
//! over IMAP); reading on the web sets \Seen for IMAP too.

mod harness;
use harness::{Sink, webmail_run as run, webmail_server as server};

#[test]
fn login_logout_cookies_and_security_headers() {
    let t = server("");
    let out = run(
        &t,
        r#"
c = Client(HTTP)
r = c.get("/folder?name=INBOX")
assert r.status == 303 and r.location() == "/login", (r.status, r.location())
r = c.get("/login")
for h, want in [("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
                ("X-Content-Type-Options", "nosniff")]:
    assert r.header(h) == want, (h, r.header(h))
csp = r.header("Content-Security-Policy")
assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp, csp
assert "<script" not in r.text
r = c.login("bob", "wrong")
assert r.status == 401, r.status
assert c.session_cookie() is None
r = c.login("bob@example.test", "bob-pw")
assert r.status == 303, r.status
cookie = [v for k, v in r.headers.items() if k.lower() == "set-cookie" and v.startswith("tern_session=")][0]
assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie, cookie
assert "Secure" not in cookie  # plain http on loopback
assert len(c.session_cookie()) == 64
r = c.get("/folder?name=INBOX")
assert r.status == 200 and "bob@example.test" in r.text
for name in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]:
    assert f'<span class="name">{name}</span>' in r.text, name
# Logout without the token is refused; with it, the session is gone for good.
old = c.session_cookie()
r = c.post("/logout", {"csrf": "0" * 64})
assert r.status == 403, r.status
r = c.post("/logout", {})
assert r.status == 303 and r.location() == "/login", r.status
r = c.request("/folder?name=INBOX", headers={"Cookie": "tern_session=" + old})
assert r.status == 303 and r.location() == "/login", r.status
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    assert!(t.log().contains("web: logged in"), "{}", t.log());
}

#[test]
fn cross_site_posts_do_nothing() {
    let t = server("");
    let out = run(
        &t,
        r#"
smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], plain_message("keep me", "hello"))
c = Client(HTTP)
c.login("bob", "bob-pw")
[uid] = c.uids()
# A forged form from another site: right cookie, Origin of the attacker, no token.
r = c.post("/action", [("folder", "INBOX"), ("uid", uid), ("op", "delete")], csrf=False,
           headers={"Origin": "http://evil.test"})
assert r.status == 403, r.status
# Same, without Origin (old browser): the missing token refuses it.
r = c.post("/action", [("folder", "INBOX"), ("uid", uid), ("op", "delete")], csrf=False)
assert r.status == 403, r.status
# A token from another session does not work either.
d = Client(HTTP); d.login("carol", "carol-pw")
r = c.post("/action", [("folder", "INBOX"), ("uid", uid), ("op", "delete"), ("csrf", d.csrf)])
assert r.status == 403, r.status
assert c.uids() == [uid]
# Login CSRF: a login post without the matching cookie token fails.
e = Client(HTTP)
r = e.post("/login", {"login": "bob", "password": "bob-pw", "token": "ab" * 32}, csrf=False)
assert r.status == 403 and e.session_cookie() is None, r.status
# Sending without a token sends nothing.
r = c.post_multipart("/send", {"to": "carol@example.test", "subject": "x", "body": "y", "action": "send"}, csrf=False)
assert r.status == 403, r.status
assert d.uids() == []
# With the token, the action works.
r = c.post("/action", [("folder", "INBOX"), ("uid", uid), ("op", "delete")])
assert r.status == 303, r.status
assert c.uids() == [] and len(c.uids("Trash")) == 1
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn one_user_never_reads_anothers_mail() {
    let t = server("");
    let out = run(
        &t,
        r#"
smtp_send(SMTP, "lisa@outside.test", ["carol@example.test"],
          with_attachment("for carol only", "secret.txt", "text/plain", base64.b64encode(b"carol secret").decode(), to="carol@example.test"))
carol = Client(HTTP); carol.login("carol", "carol-pw")
[uid] = carol.uids()
bob = Client(HTTP); bob.login("bob", "bob-pw")
assert bob.uids() == []
for path in [f"/message?folder=INBOX&uid={uid}", f"/message/body?folder=INBOX&uid={uid}",
             f"/message/part?folder=INBOX&uid={uid}&n=0", f"/message/raw?folder=INBOX&uid={uid}",
             f"/compose?mode=forward&folder=INBOX&uid={uid}"]:
    r = bob.get(path)
    assert r.status == 404, (path, r.status)
    assert b"carol secret" not in r.body and b"for carol only" not in r.body, path
# Acting on carol's UID in bob's session touches only bob's (empty) folder.
r = bob.post("/action", [("folder", "INBOX"), ("uid", uid), ("op", "delete")])
assert carol.uids() == [uid]
# A folder name with tricks names nothing of carol's.
r = bob.get("/folder?name=" + urllib.parse.quote("INBOX\x00carol@example.test"))
assert r.status == 404, r.status
r = carol.get(f"/message/part?folder=INBOX&uid={uid}&n=0")
assert r.status == 200 and r.body == b"carol secret"
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn reading_attachments_flags_move_delete_search_and_paging() {
    let t = server("");
    let out = run(
        &t,
        r#"
png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], plain_message("Plain <hello> & bye", "first line\r\n<b>not bold</b>"))
smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], with_attachment("with file", "pic.png", "image/png", png))
smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], with_attachment("evil file", "x.html", "text/html", base64.b64encode(b"<script>alert(1)</script>").decode()))
c = Client(HTTP); c.login("bob", "bob-pw")
r = c.get("/folder?name=INBOX")
assert r.text.count('class="unread"') == 3
assert '<span class="count" title="unread">3</span>' in r.text
assert "Plain &lt;hello&gt; &amp; bye" in r.text and "<hello>" not in r.text
assert 'title="Has attachments"' in r.text
u_plain, u_png, u_html = sorted(c.uids())
r = c.get(f"/message?folder=INBOX&uid={u_plain}")
assert r.status == 200
assert "&lt;b&gt;not bold&lt;/b&gt;" in r.text and "<b>not bold" not in r.text
assert "<iframe" not in r.text  # plain text is shown as text
r = c.get("/folder?name=INBOX")
assert '<span class="count" title="unread">2</span>' in r.text  # reading marked it \Seen
im = imaplib.IMAP4("127.0.0.1", IMAP); im.login("bob@example.test", "bob-pw"); im.select("INBOX", readonly=True)
typ, data = im.uid("FETCH", str(u_plain), "(FLAGS)")
assert b"\\Seen" in data[0], data
typ, data = im.uid("FETCH", str(u_png), "(FLAGS)")
assert b"\\Seen" not in data[0], data
im.logout()
# Attachments are downloads, never rendered, never sniffed.
r = c.get(f"/message?folder=INBOX&uid={u_png}")
assert "pic.png" in r.text
r = c.get(f"/message/part?folder=INBOX&uid={u_png}&n=0")
assert r.status == 200 and r.body.startswith(b"\x89PNG"), r.status
assert r.header("Content-Type") == "image/png", r.header("Content-Type")
assert r.header("Content-Disposition").startswith('attachment; filename="pic.png"'), r.header("Content-Disposition")
assert r.header("X-Content-Type-Options") == "nosniff"
r = c.get(f"/message/part?folder=INBOX&uid={u_html}&n=0")
assert r.header("Content-Disposition").startswith("attachment")
assert "default-src 'none'" in r.header("Content-Security-Policy") and "sandbox" in r.header("Content-Security-Policy")
r = c.get(f"/message/raw?folder=INBOX&uid={u_html}")
assert r.header("Content-Disposition").startswith("attachment") and b"evil file" in r.body
# Flags.
c.post("/action", [("folder", "INBOX"), ("uid", u_png), ("op", "flag")])
r = c.get("/folder?name=INBOX")
assert r.text.count('title="Flagged"') == 1
c.post("/action", [("folder", "INBOX"), ("uid", u_plain), ("op", "unseen")])
r = c.get("/folder?name=INBOX")
# u_png was read above; u_plain is unread again, u_html never read.
assert '<span class="count" title="unread">2</span>' in r.text, r.text
# Search: subject, sender, text; words are ANDed.
assert c.uids(q="with file") == [u_png]
assert sorted(c.uids(q="lisa")) == [u_plain, u_png, u_html]
assert c.uids(q="first line") == [u_plain]
assert c.uids(q="nothing-matches-this") == []
# Move to Archive, delete to Trash, delete from Trash for good.
c.post("/action", [("folder", "INBOX"), ("uid", u_plain), ("op", "move"), ("target", "Archive")])
assert len(c.uids("Archive")) == 1 and u_plain not in c.uids()
c.post("/action", [("folder", "INBOX"), ("uid", u_html), ("uid", u_png), ("op", "delete")])
assert c.uids() == [] and len(c.uids("Trash")) == 2
r = c.get("/folder?name=Trash")
assert r.text.count('title="Flagged"') == 1  # flags travel with the message
c.post("/action", [("folder", "Trash")] + [("uid", u) for u in c.uids("Trash")] + [("op", "delete")])
assert c.uids("Trash") == []
# Paging: 55 messages are two pages, newest first.
for i in range(55):
    smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], plain_message(f"bulk {i:02d}", "x"))
r = c.get("/folder?name=INBOX")
assert "Page 1 of 2" in r.text and r.text.count('name="uid"') == 50
assert r.text.index("bulk 54") < r.text.index("bulk 53")
r = c.get("/folder?name=INBOX&page=1")
assert r.text.count('name="uid"') == 5 and "bulk 00" in r.text
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn html_body_is_sanitised_and_framed_under_its_own_csp() {
    let t = server("");
    let out = run(
        &t,
        r#"
hostile = ('<p id="x">Hello</p><script>alert(1)</script><img src="https://remote.test/i.png" onerror="alert(2)">'
           '<a href="javascript:alert(3)">j</a><a href="https://ok.test/">fine</a><svg onload="alert(4)"></svg>'
           '<meta http-equiv="refresh" content="0;url=https://remote.test/"><base href="https://remote.test/">'
           '<form action="https://remote.test/"><input name="p"></form>'
           '<div style="background:url(https://remote.test/bg.png)">bg</div>')
smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], html_message("hostile", hostile))
c = Client(HTTP); c.login("bob", "bob-pw")
[uid] = c.uids()
r = c.get(f"/message?folder=INBOX&uid={uid}")
assert '<iframe class="body" sandbox="allow-popups allow-popups-to-escape-sandbox"' in r.text, r.text
assert "remote.test" not in r.text and "alert(" not in r.text
assert "1 remote image(s) blocked" in r.text
r = c.get(f"/message/body?folder=INBOX&uid={uid}")
csp = r.header("Content-Security-Policy")
assert "default-src 'none'" in csp and "img-src data:;" in csp and "script-src" not in csp and "sandbox" in csp, csp
assert "frame-ancestors 'self'" in csp and r.header("X-Frame-Options") == "SAMEORIGIN"
body = r.text.lower()
for bad in ["<script", "onerror", "onload", "javascript:", "remote.test", "<meta http", "<form", "<input", "url("]:
    assert bad not in body, (bad, r.text)
assert "hello" in body and "https://ok.test/" in body and 'rel="noopener noreferrer"' in body
r = c.get(f"/message/body?folder=INBOX&uid={uid}&images=1")
assert "https://remote.test/i.png" in r.text and "img-src data: https: http:" in r.header("Content-Security-Policy")
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn send_local_and_remote_with_sent_copy_reply_forward_and_drafts() {
    let sink = Sink::start();
    let t = server(&format!(
        "[relay]\nsmarthost = \"127.0.0.1:{}\"\n\n[queue]\nretry_intervals = [\"1s\"]",
        sink.port
    ));
    let out = run(
        &t,
        r#"
bob = Client(HTTP); bob.login("bob", "bob-pw")
bob.get("/compose")
r = bob.post_multipart("/send", {"to": "Carol <carol@example.test>", "cc": "", "bcc": "", "subject": "Lunch?",
                                 "body": "Noon at the usual place?", "action": "send"},
                       files=[("attachment", "notes.txt", "text/plain", b"bring the notes")])
assert r.status == 303, (r.status, r.text[:800])
assert "Message%20sent" in r.location(), r.location()
# Carol sees it over POP3, with the attachment and the web Received line.
p = poplib.POP3("127.0.0.1", POP); p.user("carol@example.test"); p.pass_("carol-pw")
assert p.stat()[0] == 1
msg = b"\r\n".join(p.retr(1)[1])
p.quit()
assert b"with HTTP id" in msg and b"Subject: Lunch?" in msg and b"notes.txt" in msg, msg[:600]
assert b"From: <bob@example.test>" in msg or b"From: bob@example.test" in msg, msg[:600]
# The Sent copy, marked read, and visible over IMAP.
[sent] = bob.uids("Sent")
r = bob.get(f"/message?folder=Sent&uid={sent}")
assert "Lunch?" in r.text and "notes.txt" in r.text
im = imaplib.IMAP4("127.0.0.1", IMAP); im.login("bob@example.test", "bob-pw")
typ, data = im.select("Sent", readonly=True)
assert typ == "OK" and data[0] == b"1", data
typ, data = im.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert b"\\Seen" in data[0][0] and b"Subject: Lunch?" in data[0][1], data
im.logout()
# Carol replies over the web; the original is quoted and marked answered.
carol = Client(HTTP); carol.login("carol", "carol-pw")
[cu] = carol.uids()
r = carol.get(f"/compose?mode=reply&folder=INBOX&uid={cu}")
assert 'value="bob@example.test"' in r.text and 'value="Re: Lunch?"' in r.text, r.text
assert "&gt; Noon at the usual place?" in r.text
irt = re.search(r'name="in_reply_to" value="([^"]*)"', r.text).group(1)
assert irt.startswith("&lt;") or irt.startswith("<"), irt
body = "Yes!\n\n> Noon at the usual place?"
r = carol.post_multipart("/send", {"to": "bob@example.test", "subject": "Re: Lunch?", "body": body,
                                   "in_reply_to": irt.replace("&lt;", "<").replace("&gt;", ">"),
                                   "references": "", "origin_folder": "INBOX", "origin_uid": cu,
                                   "origin_mode": "reply", "action": "send"})
assert r.status == 303, (r.status, r.text[:800])
[bu] = bob.uids()
raw = bob.get(f"/message/raw?folder=INBOX&uid={bu}").body
assert b"In-Reply-To: <" in raw and b"> Noon at the usual place?" in raw, raw
r = carol.get("/folder?name=INBOX")
# Remote: relayed to the smarthost (the sink), Sent copy kept.
r = bob.post_multipart("/send", {"to": "dave@remote.test", "subject": "Out there", "body": "hello remote",
                                 "action": "send"})
assert r.status == 303, (r.status, r.text[:800])
deadline = time.time() + 60
while not os.path.exists(os.path.join(SINK, "1.eml")):
    assert time.time() < deadline, "nothing reached the sink"
    time.sleep(0.05)
env = json.load(open(os.path.join(SINK, "1.json")))
assert env == {"from": "bob@example.test", "to": ["dave@remote.test"]}, env
got = open(os.path.join(SINK, "1.eml"), "rb").read()
assert b"Subject: Out there" in got and b"hello remote" in got
assert len(bob.uids("Sent")) == 2
# Forward attaches the original whole.
r = bob.get(f"/compose?mode=forward&folder=INBOX&uid={bu}")
assert 'value="Fwd: Re: Lunch?"' in r.text
r = bob.post_multipart("/send", {"to": "carol@example.test", "subject": "Fwd: Re: Lunch?", "body": "see below",
                                 "origin_folder": "INBOX", "origin_uid": bu, "origin_mode": "forward", "action": "send"})
assert r.status == 303, (r.status, r.text[:800])
r = carol.get("/folder?name=INBOX")
fu = max(carol.uids())
raw = carol.get(f"/message/raw?folder=INBOX&uid={fu}").body
assert b"message/rfc822" in raw, raw[:1500]
# Drafts: saved, reopened, sent (and gone from Drafts).
r = bob.post_multipart("/send", {"to": "carol@example.test", "subject": "Later", "body": "draft text", "action": "draft"},
                       files=[("attachment", "plan.txt", "text/plain", b"the plan"),
                              ("attachment", "extra.bin", "application/octet-stream", b"\x00\x01 extra")])
assert r.status == 303 and "Drafts" in r.location(), r.status
[du] = bob.uids("Drafts")
# Reopened, the draft offers its attachments again, ticked.
r = bob.get(f"/compose?mode=draft&folder=Drafts&uid={du}")
assert 'value="Later"' in r.text and "draft text" in r.text
assert "plan.txt" in r.text and "extra.bin" in r.text, r.text
assert r.text.count('name="keep"') == 2 and r.text.count("checked") >= 2, r.text
# Saved again keeping only the first: the new draft has just that one.
r = bob.post_multipart("/send", {"to": "carol@example.test", "subject": "Later", "body": "draft text", "origin_folder": "Drafts",
                                 "origin_uid": du, "origin_mode": "draft", "keep": "0", "action": "draft"})
assert r.status == 303
[du] = bob.uids("Drafts")
r = bob.get(f"/compose?mode=draft&folder=Drafts&uid={du}")
assert "plan.txt" in r.text and "extra.bin" not in r.text, r.text
r = bob.post_multipart("/send", {"to": "carol@example.test", "subject": "Later", "body": "draft text", "origin_folder": "Drafts",
                                 "origin_uid": du, "origin_mode": "draft", "keep": "0", "action": "send"})
assert r.status == 303
assert bob.uids("Drafts") == []
# Carol gets the kept attachment, intact.
lu = max(carol.uids())
r = carol.get(f"/message/part?folder=INBOX&uid={lu}&n=0")
assert r.body == b"the plan", r.body
# Refusals are shown on the form, nothing is sent: bad address, unknown local user.
r = bob.post_multipart("/send", {"to": "not an address", "subject": "x", "body": "y", "action": "send"})
assert r.status == 400 and "not a valid address" in r.text, r.status
r = bob.post_multipart("/send", {"to": "nobody@example.test", "subject": "x", "body": "y", "action": "send"})
assert r.status == 400 and "550" in r.text, (r.status, r.text[:1500])
print("ok")
"#
        .replace("SINK", &format!("{:?}", sink.mail_dir().display().to_string()))
        .as_str(),
    );
    assert_eq!(out.trim(), "ok", "{}", t.log());
}

#[test]
fn https_cookies_are_secure_inline_images_show_and_replies_are_answered() {
    let t = server("[[listen]]\nprotocol = \"https\"\naddress = \"{ip}:0\"\n");
    let out = run(
        &t,
        r#"
png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
related = ("From: Lisa <lisa@outside.test>\r\nTo: bob@example.test\r\nSubject: inline\r\nMIME-Version: 1.0\r\n"
           'Content-Type: multipart/related; boundary="R"\r\n\r\n'
           '--R\r\nContent-Type: text/html\r\n\r\n<p>logo: <img src="cid:logo@x"> svg: <img src="cid:vec@x"></p>\r\n'
           "--R\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n" + png + "\r\n"
           "--R\r\nContent-Type: image/svg+xml\r\nContent-ID: <vec@x>\r\n\r\n<svg onload='alert(1)'/>\r\n--R--\r\n").encode()
smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], related)
c = Client(HTTPS, scheme="https")
r = c.login("bob", "bob-pw")
assert r.status == 303, r.status
cookie = [v for k, v in r.headers.items() if k.lower() == "set-cookie" and v.startswith("tern_session=")][0]
assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
[uid] = c.uids()
r = c.get(f"/message/body?folder=INBOX&uid={uid}")
assert 'src="data:image/png;base64,' + png[:8] in r.text, r.text
assert "data:image/svg" not in r.text and "<svg" not in r.text  # SVG parts are never inlined
assert "onload" not in r.text and "cid:" not in r.text
# A reply marks the original \Answered, which IMAP sees.
r = c.post_multipart("/send", {"to": "lisa@outside.test", "subject": "Re: inline", "body": "thanks",
                               "origin_folder": "INBOX", "origin_uid": uid, "origin_mode": "reply", "action": "send"})
assert r.status == 303, (r.status, r.text[:600])
im = imaplib.IMAP4("127.0.0.1", IMAP); im.login("bob@example.test", "bob-pw"); im.select("INBOX", readonly=True)
typ, data = im.uid("FETCH", str(uid), "(FLAGS)")
assert b"\\Answered" in data[0], data  # only the frame was fetched: not \\Seen
im.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

/// Folders from the web: create (nested), rename (children move along),
/// delete (messages to Trash), refusals shown on the page; IMAP sees the
/// same folders.
#[test]
fn folders_are_created_renamed_and_deleted() {
    let t = server("");
    let out = run(
        &t,
        r#"
smtp_send(SMTP, "lisa@outside.test", ["bob@example.test"], plain_message("to file", "x"))
bob = Client(HTTP); bob.login("bob", "bob-pw")
def note(r):
    assert r.status == 303, r.status
    page = bob.get(r.location()).text
    m = re.search(r'<p class="(flash|notice error)" role="[a-z]+">([^<]*)</p>', page)
    return m.group(2) if m else page[:500]
def change(**fields):
    return note(bob.post("/folders", fields))
print(change(op="create", name="Projects"))
print(change(op="create", name="Projects/2026"))
print(change(op="create", name="projects/../../carol"))
print(change(op="create", name="Projects"))
# File the message in Projects/2026, then rename Projects: 2026 moves along.
[u] = bob.uids()
r = bob.post("/action", {"folder": "INBOX", "uid": u, "op": "move", "target": "Projects/2026"})
print(change(op="rename", name="Projects", to="Work"))
print(change(op="rename", name="INBOX", to="Old"))
print(change(op="delete", name="Work"))
print(change(op="delete", name="Work/2026"))
im = imaplib.IMAP4("127.0.0.1", IMAP); im.login("bob@example.test", "bob-pw")
print(sorted(l.decode().split(' "/" ')[1].strip('"') for l in im.list()[1]))
im.select("Trash"); print(im.search(None, "ALL")[1])
im.logout()
# A post without the token changes nothing.
r = bob.post("/folders", {"op": "delete", "name": "Work"}, csrf=False)
print(r.status, "Work" in bob.get("/folders").text)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..8],
        [
            "Folder Projects created.",
            "Folder Projects/2026 created.",
            "folder names may not have empty, &quot;.&quot; or &quot;..&quot; levels",
            "a folder named Projects exists",
            "Folder Projects renamed to Work.",
            "INBOX is a built-in folder",
            "Work has folders inside; delete or move them first",
            "Folder Work/2026 deleted; its 1 messages are in Trash.",
        ],
        "{out}"
    );
    assert_eq!(
        lines[8], "['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash', 'Work']",
        "{out}"
    );
    assert_eq!(lines[9], "[b'1']", "{out}");
    assert_eq!(lines[10], "403 True", "{out}");
}
