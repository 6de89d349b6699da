//! Inbound SMTP, the ordinary path: swaks on the built-in defaults shape
//! (postmaster alias), the EHLO extension list (smtplib), delivery to a local
//! user with the `Received:` header and queue id, the small commands (VRFY,
//! NOOP, RSET, HELP, unknown command, command order), enhanced status codes,
//! PIPELINING in one write, BDAT chunks, an 8-bit body and an SMTPUTF8
//! address stored byte for byte, and dot-stuffing round trips.

mod harness;

use harness::*;

/// The built-in defaults (hostname and local domain `localhost`) with the
/// listeners moved to ephemeral ports.
const DEFAULTS_SHAPE: &str = r#"hostname = "localhost"
data_dir = "data"
local_domains = ["localhost"]

[aliases]
"postmaster@localhost" = ["admin@localhost"]

[[listen]]
protocol = "smtp"
address = "127.0.0.1:0"

[[listen]]
protocol = "submission"
address = "127.0.0.1:0"

[[listen]]
protocol = "submissions"
address = "127.0.0.1:0"
"#;

#[test]
fn swaks_to_postmaster_on_defaults_lands_in_alias_target() {
    let mut server = Tern::start(DEFAULTS_SHAPE);
    server.add_user("admin@localhost", "admin-pw");
    let out = swaks(&[
        "--to",
        "postmaster@localhost",
        "--server",
        &server.addr("smtp"),
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "swaks failed ({}):\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        stdout.contains("<-  250 2.0.0 Ok: queued as "),
        "no queued reply in:\n{stdout}"
    );
    let qid = queue_id(stdout.lines().find(|l| l.contains("queued as")).unwrap());
    let mail = server.mailbox("admin@localhost");
    assert_eq!(
        mail.len(),
        1,
        "admin@localhost should have exactly the one message"
    );
    let m = text(&mail[0]);
    assert!(
        m.starts_with("Received: from "),
        "first line is not Received: {m}"
    );
    assert!(
        m.contains(&format!("id {qid}")),
        "Received lacks queue id {qid}: {m}"
    );
    assert!(m.contains("X-Mailer: swaks"), "not swaks' message: {m}");
    assert!(
        m.contains("This is a test mailing"),
        "swaks body missing: {m}"
    );
    // RFC 5321 4.5.1: the bare <postmaster> recipient must be accepted too.
    server.spawn();
    let mut s = Smtp::ready(server.port("smtp"));
    s.send_message(
        "lisa@outside.test",
        &["postmaster"],
        b"Subject: bare\r\n\r\nx\r\n",
    )
    .expect(250, "2.0.0");
    s.cmd("QUIT");
    assert_eq!(server.mailbox("admin@localhost").len(), 2);
}

#[test]
fn ehlo_advertises_every_extension() {
    let server = Tern::start(&smtp_config("[limits]\nmax_message_size = \"12345\"\n"));
    let v = python_json(
        r#"
res = {}
for name, port in (("smtp", int(sys.argv[1])), ("submission", int(sys.argv[2]))):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    code, _ = s.ehlo("client.outside.test")
    before = dict(s.esmtp_features)
    s.starttls(context=CTX)
    s.ehlo("client.outside.test")
    after = dict(s.esmtp_features)
    s.quit()
    res[name] = {"code": code, "before": before, "after": after}
s = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[3]), timeout=30, context=CTX)
s.ehlo("client.outside.test")
res["submissions"] = {"after": dict(s.esmtp_features)}
s.quit()
print(json.dumps(res))
"#,
        &[
            &server.port_arg("smtp"),
            &server.port_arg("submission"),
            &server.port_arg("submissions"),
        ],
    );
    for listener in ["smtp", "submission"] {
        let before = &v[listener]["before"];
        assert_eq!(v[listener]["code"], 250);
        for ext in [
            "pipelining",
            "8bitmime",
            "enhancedstatuscodes",
            "smtputf8",
            "chunking",
            "dsn",
            "starttls",
            "help",
        ] {
            assert!(
                before.get(ext).is_some(),
                "{listener}: {ext} not advertised before TLS: {before}"
            );
        }
        assert_eq!(
            before["size"], "12345",
            "{listener}: SIZE must announce limits.max_message_size"
        );
        assert!(
            before.get("auth").is_none(),
            "{listener}: AUTH advertised before TLS: {before}"
        );
        assert!(
            before.get("requiretls").is_none(),
            "{listener}: REQUIRETLS advertised before TLS (RFC 8689): {before}"
        );
        let after = &v[listener]["after"];
        assert!(
            after.get("starttls").is_none(),
            "{listener}: STARTTLS advertised again inside TLS: {after}"
        );
        assert!(
            after.get("requiretls").is_some(),
            "{listener}: no REQUIRETLS after TLS: {after}"
        );
        let mechs: Vec<&str> = after["auth"]
            .as_str()
            .unwrap_or_else(|| panic!("{listener}: no AUTH after TLS: {after}"))
            .split_whitespace()
            .collect();
        assert!(
            mechs.contains(&"PLAIN") && mechs.contains(&"LOGIN"),
            "{listener}: AUTH mechanisms {mechs:?}"
        );
        for ext in [
            "size",
            "pipelining",
            "8bitmime",
            "enhancedstatuscodes",
            "smtputf8",
            "chunking",
            "dsn",
            "help",
        ] {
            assert!(
                after.get(ext).is_some(),
                "{listener}: {ext} missing after TLS: {after}"
            );
        }
    }
    let implicit = &v["submissions"]["after"];
    assert!(
        implicit.get("auth").is_some()
            && implicit.get("starttls").is_none()
            && implicit.get("requiretls").is_some(),
        "submissions EHLO: {implicit}"
    );
}

#[test]
fn smtplib_delivery_with_received_header_and_queue_id() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let msg = "From: Lisa <lisa@outside.test>\r\nTo: bob@example.test\r\nSubject: hello\r\n\r\nHi Bob.\r\n";
    let v = python_json(
        r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("client.outside.test")
mail = r(s.mail("lisa@outside.test"))
rcpt = r(s.rcpt("bob@example.test"))
data = r(s.data(sys.argv[2].encode()))
s.quit()
out(mail=mail, rcpt=rcpt, data=data)
"#,
        &[&server.port_arg("smtp"), msg],
    );
    assert_eq!(v["mail"][0], 250);
    assert!(v["mail"][1].as_str().unwrap().starts_with("2.1.0"), "{v}");
    assert_eq!(v["rcpt"][0], 250);
    assert!(v["rcpt"][1].as_str().unwrap().starts_with("2.1.5"), "{v}");
    assert_eq!(v["data"][0], 250);
    let data_text = v["data"][1].as_str().unwrap();
    assert!(data_text.starts_with("2.0.0 Ok: queued as "), "{v}");
    let qid = queue_id(data_text);
    let mail = server.mailbox("bob@example.test");
    assert_eq!(mail.len(), 1);
    let added = added_headers(&mail[0], msg.as_bytes());
    assert!(
        added.starts_with("Received: from client.outside.test"),
        "{added}"
    );
    let received = header(&added, "Received").unwrap();
    assert!(
        received.contains("127.0.0.1"),
        "Received lacks the client IP: {received}"
    );
    assert!(
        received.contains("by mx.example.test"),
        "Received lacks our hostname: {received}"
    );
    assert!(
        received.contains(&format!("with ESMTP id {qid}")),
        "Received lacks protocol/queue id: {received}"
    );
    assert!(
        header(&added, "Message-ID").is_none(),
        "Message-ID must not be added on the MX listener: {added}"
    );
}

#[test]
fn small_commands_order_and_enhanced_codes() {
    let server = Tern::start(&smtp_config(""));
    let (mut s, banner) = Smtp::connect(server.port("smtp"));
    assert!(
        banner.lines[0].starts_with("mx.example.test "),
        "banner: {banner:?}"
    );
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(503, "5.5.1");
    s.cmd("FROBNICATE now").expect(500, "5.5.2");
    // RFC 2034: replies to HELO/EHLO (and the banner) carry no enhanced code.
    assert_eq!(s.cmd("HELO client.outside.test").code, 250);
    let ehlo = s.cmd("EHLO client.outside.test");
    assert_eq!(ehlo.code, 250);
    s.cmd("VRFY bob").expect(252, "2.5.0");
    s.cmd("NOOP").expect(250, "2.0.0");
    let help = s.cmd("HELP");
    assert_eq!(help.code, 214, "{help:?}");
    assert!(
        help.enhanced().is_some(),
        "HELP reply lacks an enhanced code: {help:?}"
    );
    s.cmd("RCPT TO:<bob@example.test>").expect(503, "5.5.1");
    s.cmd("DATA").expect(503, "5.5.1");
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(503, "5.5.1");
    s.cmd("RSET").expect(250, "2.0.0");
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    let r = s.cmd("DATA");
    assert!(
        matches!(r.code, 503 | 554) && r.enhanced().is_some_and(|e| e.starts_with("5.5.")),
        "DATA without RCPT: {r:?}"
    );
    let long = format!("NOOP {}", "x".repeat(5000));
    let r = s.cmd(&long);
    assert!(
        r.code >= 500 && r.enhanced().is_some(),
        "overlong line: {r:?}"
    );
    s.cmd("NOOP").expect(250, "2.0.0");
    s.cmd("QUIT").expect(221, "2.0.0");
    assert!(s.closed());
}

#[test]
fn pipelining_in_one_write_replies_in_order() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    server.add_user("alice@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.send(
        b"MAIL FROM:<lisa@outside.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\n\
          RCPT TO:<alice@example.test>\r\nDATA\r\n",
    );
    s.reply().expect(250, "2.1.0");
    s.reply().expect(250, "2.1.5");
    s.reply().expect(550, "5.1.1");
    s.reply().expect(250, "2.1.5");
    s.reply().expect(354, "2.0.0");
    let body = b"Subject: pipelined\r\n\r\nOne write.\r\n";
    let mut rest = body.to_vec();
    rest.extend_from_slice(b".\r\nNOOP\r\nQUIT\r\n");
    s.send(&rest);
    let done = s.reply();
    done.expect(250, "2.0.0");
    assert!(done.text().contains("queued as"));
    s.reply().expect(250, "2.0.0");
    s.reply().expect(221, "2.0.0");
    assert!(s.closed());
    for user in ["bob@example.test", "alice@example.test"] {
        let mail = server.mailbox(user);
        assert_eq!(mail.len(), 1, "{user}");
        added_headers(&mail[0], body);
    }
}

#[test]
fn bdat_chunks_stored_byte_for_byte() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<lisa@outside.test> BODY=8BITMIME")
        .expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test>").expect(250, "2.1.5");
    let chunks: [&[u8]; 3] = [
        b"Subject: chunked\r\nX-Part: one\r\n",
        b"\r\nLine one\r\n.\r\n..two dots\r\nDATA\r\n",
        b"\xff\xfe 8-bit bytes\r\nlast line\r\n",
    ];
    s.send(
        &[
            format!("BDAT {}\r\n", chunks[0].len()).as_bytes(),
            chunks[0],
        ]
        .concat(),
    );
    s.reply().expect(250, "2.0.0");
    s.send(
        &[
            format!("BDAT {}\r\n", chunks[1].len()).as_bytes(),
            chunks[1],
        ]
        .concat(),
    );
    s.reply().expect(250, "2.0.0");
    s.send(
        &[
            format!("BDAT {} LAST\r\n", chunks[2].len()).as_bytes(),
            chunks[2],
        ]
        .concat(),
    );
    let r = s.reply();
    r.expect(250, "2.0.0");
    assert!(r.text().contains("queued as"), "{r:?}");
    // The whole transaction again in a single write (CHUNKING + PIPELINING).
    let mut one = b"MAIL FROM:<lisa@outside.test>\r\nRCPT TO:<bob@example.test>\r\n".to_vec();
    one.extend_from_slice(b"BDAT 6\r\nX: 1\r\nBDAT 10\r\n\r\nabc\r\n.\r\nBDAT 0 LAST\r\nNOOP\r\n");
    s.send(&one);
    s.reply().expect(250, "2.1.0");
    s.reply().expect(250, "2.1.5");
    s.reply().expect(250, "2.0.0");
    s.reply().expect(250, "2.0.0");
    assert!(s.reply().expect(250, "2.0.0").text().contains("queued as"));
    s.reply().expect(250, "2.0.0");
    s.cmd("QUIT").expect(221, "2.0.0");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(mail.len(), 2);
    added_headers(&mail[0], &chunks.concat());
    added_headers(&mail[1], b"X: 1\r\n\r\nabc\r\n.\r\n");
}

#[test]
fn dsn_parameters_accepted() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    let mut s = Smtp::ready(server.port("smtp"));
    s.cmd("MAIL FROM:<lisa@outside.test> RET=HDRS ENVID=QQ314159 SIZE=100")
        .expect(250, "2.1.0");
    s.cmd("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test")
        .expect(250, "2.1.5");
    s.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS")
        .expect(501, "5.5.4");
    s.cmd("DATA").expect(354, "2.0.0");
    s.send(b"Subject: dsn\r\n\r\nx\r\n.\r\n");
    s.reply().expect(250, "2.0.0");
    s.cmd("MAIL FROM:<lisa@outside.test> FROB=1")
        .expect(555, "5.5.4");
    s.cmd("QUIT");
    assert_eq!(server.mailbox("bob@example.test").len(), 1);
}

#[test]
fn eight_bit_body_and_smtputf8_address_byte_for_byte() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    server.add_user("用户@example.test", "pw");
    let list = server.cli(&["user", "list"], "");
    assert!(
        text(&list.stdout).contains("用户@example.test"),
        "user list: {}",
        text(&list.stdout)
    );
    let eight = "From: lisa@outside.test\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße, naïve café – ✓ 日本語\r\n";
    let utf8 = "From: 发件人 <发件人@outside.test>\r\nTo: 用户@example.test\r\nSubject: 你好\r\n\r\n正文 with ünïcödé.\r\n";
    let v = python_json(
        r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("client.outside.test")
a = r(s.mail("lisa@outside.test", ["BODY=8BITMIME"]))
b = r(s.rcpt("bob@example.test"))
c = r(s.data(sys.argv[2].encode("utf-8") + b"Latin-1 bytes: \xe9\xe8\xff\r\n"))
d = r(s.mail("发件人@outside.test", ["SMTPUTF8", "BODY=8BITMIME"]))
e = r(s.rcpt("用户@example.test"))
f = r(s.data(sys.argv[3].encode("utf-8")))
s.quit()
out(steps=[a, b, c, d, e, f])
"#,
        &[&server.port_arg("smtp"), eight, utf8],
    );
    let codes: Vec<i64> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [250, 250, 250, 250, 250, 250], "{v}");
    // Without SMTPUTF8, a UTF-8 address is refused (RFC 6531 3.5).
    let mut s = Smtp::ready(server.port("smtp"));
    let r = s.cmd("MAIL FROM:<发件人@outside.test>");
    assert!(
        r.code >= 500 && r.enhanced().is_some(),
        "UTF-8 MAIL FROM without SMTPUTF8: {r:?}"
    );
    s.cmd("MAIL FROM:<lisa@outside.test>").expect(250, "2.1.0");
    let r = s.cmd("RCPT TO:<用户@example.test>");
    assert!(
        r.code >= 500 && r.enhanced().is_some(),
        "UTF-8 RCPT TO without SMTPUTF8: {r:?}"
    );
    s.cmd("QUIT");
    let mut sent8 = eight.as_bytes().to_vec();
    sent8.extend_from_slice(b"Latin-1 bytes: \xe9\xe8\xff\r\n");
    let bob = server.mailbox("bob@example.test");
    assert_eq!(bob.len(), 1);
    added_headers(&bob[0], &sent8);
    let uni = server.mailbox("用户@example.test");
    assert_eq!(uni.len(), 1);
    let added = added_headers(&uni[0], utf8.as_bytes());
    assert!(added.starts_with("Received: "), "{added}");
}

#[test]
fn dot_stuffing_round_trips() {
    let mut server = Tern::start(&smtp_config(""));
    server.add_user("bob@example.test", "pw");
    // smtplib stuffs the dots itself; the server must unstuff them exactly.
    let msg = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n...\r\nend . here\r\n. \r\n";
    let v = python_json(
        r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=30)
s.ehlo("client.outside.test")
res = s.sendmail("lisa@outside.test", ["bob@example.test"], sys.argv[2].encode())
s.quit()
out(refused=len(res))
"#,
        &[&server.port_arg("smtp"), msg],
    );
    assert_eq!(v["refused"], 0);
    // And by hand on a raw socket, stuffed as RFC 5321 4.5.2 says.
    let mut s = Smtp::ready(server.port("smtp"));
    let r = s.send_message(
        "lisa@outside.test",
        &["bob@example.test"],
        b"Subject: raw\r\n\r\n..x\r\n....\r\n.. \r\n",
    );
    r.expect(250, "2.0.0");
    s.cmd("QUIT");
    let mail = server.mailbox("bob@example.test");
    assert_eq!(mail.len(), 2);
    added_headers(&mail[0], msg.as_bytes());
    added_headers(&mail[1], b"Subject: raw\r\n\r\n.x\r\n...\r\n. \r\n");
}
