//! TLS and AUTH on the submission listeners: STARTTLS then AUTH PLAIN and
//! AUTH LOGIN (smtplib, swaks), then sending to a local user; AUTH refused
//! before TLS (538 5.7.11, not advertised); MAIL without AUTH (530 5.7.0);
//! a wrong password (535 5.7.8, slowed down); implicit TLS on submissions;
//! `allow_plaintext_auth`; Message-ID/Date added on submission and the
//! ESMTPSA `Received:` line.

mod harness;

use harness::*;

/// smtplib on submission: STARTTLS, AUTH with the given mechanism, send.
const SUBMIT: &str = r#"
mech = sys.argv[2]
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("laptop.example.test")
s.starttls(context=CTX)
s.ehlo("laptop.example.test")
s.user, s.password = "bob@example.test", "bob-pw"
if mech == "PLAIN":
    auth = r(s.auth("PLAIN", s.auth_plain))
else:
    auth = r(s.auth("LOGIN", s.auth_login, initial_response_ok=False))
mail = r(s.mail("bob@example.test"))
rcpt = r(s.rcpt("alice@example.test"))
data = r(s.data(sys.argv[3].encode()))
s.quit()
out(auth=auth, mail=mail, rcpt=rcpt, data=data)
"#;

fn submission_server() -> Tern {
    let server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "bob-pw");
    server.add_user("alice@example.test", "alice-pw");
    server
}

fn check_submitted(v: &serde_json::Value) {
    assert_eq!(v["auth"][0], 235, "{v}");
    assert!(v["auth"][1].as_str().unwrap().starts_with("2.7.0"), "{v}");
    assert_eq!(v["mail"][0], 250, "{v}");
    assert_eq!(v["rcpt"][0], 250, "{v}");
    assert_eq!(v["data"][0], 250, "{v}");
}

#[test]
fn starttls_auth_plain_then_send_adds_message_id_and_date() {
    let mut server = submission_server();
    let msg =
        "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: plain\r\n\r\nvia PLAIN\r\n";
    let v = python_json(SUBMIT, &[&server.port_arg("submission"), "PLAIN", msg]);
    check_submitted(&v);
    let qid = queue_id(v["data"][1].as_str().unwrap());
    let mail = server.mailbox("alice@example.test");
    assert_eq!(mail.len(), 1);
    let added = added_headers(&mail[0], msg.as_bytes());
    let received = header(&added, "Received").expect("Received");
    assert!(
        received.contains(&format!("with ESMTPSA id {qid}")),
        "{received}"
    );
    assert!(
        received.contains("TLS"),
        "Received should name the TLS version: {received}"
    );
    let mid =
        header(&added, "Message-ID").unwrap_or_else(|| panic!("no Message-ID added: {added}"));
    assert!(
        mid.starts_with('<') && mid.ends_with('>') && mid.contains('@'),
        "Message-ID: {mid}"
    );
    let date = header(&added, "Date").unwrap_or_else(|| panic!("no Date added: {added}"));
    assert!(date.contains(':') && date.len() > 20, "Date: {date}");
}

#[test]
fn starttls_auth_login_then_send_keeps_existing_message_id_and_date() {
    let mut server = submission_server();
    let msg = "From: bob@example.test\r\nTo: alice@example.test\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
               Message-ID: <given@laptop.example.test>\r\nSubject: login\r\n\r\nvia LOGIN\r\n";
    let v = python_json(SUBMIT, &[&server.port_arg("submission"), "LOGIN", msg]);
    check_submitted(&v);
    let mail = server.mailbox("alice@example.test");
    assert_eq!(mail.len(), 1);
    let added = added_headers(&mail[0], msg.as_bytes());
    assert!(
        header(&added, "Message-ID").is_none(),
        "Message-ID added although present: {added}"
    );
    assert!(
        header(&added, "Date").is_none(),
        "Date added although present: {added}"
    );
}

#[test]
fn swaks_starttls_auth_on_submission() {
    let mut server = submission_server();
    let out = swaks(&[
        "--server",
        &server.addr("submission"),
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "bob@example.test",
        "--auth-password",
        "bob-pw",
        "--from",
        "bob@example.test",
        "--to",
        "alice@example.test",
        "--header",
        "From: bob@example.test",
        "--helo",
        "laptop.example.test",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed ({}):\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        stdout.contains("<~  235 2.7.0"),
        "no AUTH success inside TLS:\n{stdout}"
    );
    assert!(stdout.contains("<~  250 2.0.0 Ok: queued as"), "{stdout}");
    let mail = server.mailbox("alice@example.test");
    assert_eq!(mail.len(), 1);
    assert!(contains(&mail[0], b"X-Mailer: swaks"));
}

#[test]
fn auth_refused_before_tls_and_mail_needs_auth() {
    let server = submission_server();
    let mut s = Smtp::ready(server.port("submission"));
    // AUTH is not advertised in plain text and refused if tried.
    let ehlo = s.cmd("EHLO laptop.example.test");
    assert!(
        !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
        "AUTH advertised before TLS: {ehlo:?}"
    );
    assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    s.cmd("AUTH PLAIN AGJvYkBleGFtcGxlLnRlc3QAYm9iLXB3")
        .expect(538, "5.7.11");
    s.cmd("AUTH LOGIN").expect(538, "5.7.11");
    // MAIL without AUTH on submission, in plain text…
    s.cmd("MAIL FROM:<bob@example.test>").expect(530, "5.7.0");
    s.cmd("QUIT");
    // …and after STARTTLS without AUTH (smtplib).
    let v = python_json(
        r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("laptop.example.test")
s.starttls(context=CTX)
s.ehlo("laptop.example.test")
mail = r(s.mail("lisa@outside.test"))
s.quit()
out(mail=mail)
"#,
        &[&server.port_arg("submission")],
    );
    assert_eq!(v["mail"][0], 530, "{v}");
    assert!(v["mail"][1].as_str().unwrap().starts_with("5.7.0"), "{v}");
}

#[test]
fn wrong_password_535_after_a_delay() {
    let server = submission_server();
    let v = python_json(
        r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("laptop.example.test")
s.starttls(context=CTX)
s.ehlo("laptop.example.test")
t = time.monotonic()
try:
    s.login("bob@example.test", "wrong")
    res = [235, "logged in"]
except smtplib.SMTPAuthenticationError as e:
    res = [e.smtp_code, e.smtp_error.decode()]
took = time.monotonic() - t
ok = r(s.login("bob@example.test", "bob-pw"))
s.quit()
out(res=res, took=took, ok=ok)
"#,
        &[&server.port_arg("submission")],
    );
    assert_eq!(v["res"][0], 535, "{v}");
    assert!(v["res"][1].as_str().unwrap().starts_with("5.7.8"), "{v}");
    assert!(
        v["took"].as_f64().unwrap() >= 0.45,
        "failure came back too fast: {v}"
    );
    assert_eq!(
        v["ok"][0], 235,
        "the right password must still work afterwards: {v}"
    );
}

#[test]
fn implicit_tls_on_submissions() {
    let mut server = submission_server();
    let msg =
        "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: implicit\r\n\r\nover 465\r\n";
    let v = python_json(
        r#"
s = smtplib.SMTP_SSL("127.0.0.1", PORT, timeout=30, context=CTX)
s.ehlo("laptop.example.test")
version = s.sock.version()
again = r(s.docmd("STARTTLS"))
noauth = r(s.mail("bob@example.test"))
s.rset()
auth = r(s.login("bob@example.test", "bob-pw"))
refused = s.sendmail("bob@example.test", ["alice@example.test"], sys.argv[2].encode())
s.quit()
out(version=version, again=again, noauth=noauth, auth=auth, refused=len(refused))
"#,
        &[&server.port_arg("submissions"), msg],
    );
    assert!(v["version"].as_str().unwrap().starts_with("TLSv1."), "{v}");
    assert_eq!(v["again"][0], 503, "STARTTLS inside TLS: {v}");
    assert_eq!(v["noauth"][0], 530, "{v}");
    assert_eq!(v["auth"][0], 235, "{v}");
    assert_eq!(v["refused"], 0, "{v}");
    let mail = server.mailbox("alice@example.test");
    assert_eq!(mail.len(), 1);
    let added = added_headers(&mail[0], msg.as_bytes());
    assert!(
        header(&added, "Received").unwrap().contains("ESMTPSA"),
        "{added}"
    );
    assert!(header(&added, "Message-ID").is_some(), "{added}");
}

#[test]
fn plaintext_auth_when_allowed() {
    let server = Tern::start(&smtp_config("[tls]\nallow_plaintext_auth = true\n"));
    server.add_user("bob@example.test", "bob-pw");
    let mut s = Smtp::ready(server.port("submission"));
    let ehlo = s.cmd("EHLO laptop.example.test");
    assert!(
        ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"),
        "{ehlo:?}"
    );
    // AUTH LOGIN with its two challenges, by hand.
    let user_prompt = s.cmd("AUTH LOGIN");
    assert_eq!(
        (user_prompt.code, user_prompt.text()),
        (334, "VXNlcm5hbWU6".to_string())
    );
    let pass_prompt = s.cmd("Ym9iQGV4YW1wbGUudGVzdA==");
    assert_eq!(
        (pass_prompt.code, pass_prompt.text()),
        (334, "UGFzc3dvcmQ6".to_string())
    );
    s.cmd("Ym9iLXB3").expect(235, "2.7.0");
    s.cmd("AUTH PLAIN AGJvYkBleGFtcGxlLnRlc3QAYm9iLXB3")
        .expect(503, "5.5.1");
    s.cmd("MAIL FROM:<bob@example.test>").expect(250, "2.1.0");
    s.cmd("QUIT");
    // A client may cancel an exchange with "*" (RFC 4954): 501, session goes on.
    let mut s = Smtp::ready(server.port("submission"));
    assert_eq!(s.cmd("AUTH PLAIN").code, 334);
    assert_eq!(s.cmd("*").code, 501);
    s.cmd("NOOP").expect(250, "2.0.0");
}
