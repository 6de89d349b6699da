//! The shipped `virtual` plugin (plugins/virtual, the `rewrite` hook) in
//! the real server, with smtplib from an untrusted client: an alias fans
//! out to two local mailboxes, `+detail` and catch-all addresses find
//! their mailbox, a remote alias is relayed (to an aiosmtpd sink standing
//! in for the smarthost), a chained alias mixes both, an unknown address
//! in the virtual domain gets 550 5.1.1, and other remote addresses are
//! still refused (no open relay). Mailboxes are read over POP3.

mod harness;
use harness::{READY_BOUND, Sink, Tern, config, python, wait_for};

#[test]
fn aliases_fan_out_and_remote_aliases_are_relayed() {
    let sink = Sink::start();
    let extra = format!(
        r#"[relay]
smarthost = "127.0.0.1:{}"

[[plugin]]
name = "virtual"
path = "{}"
timeout = "2s"
config = {{ domains = "v.test", subaddress_domains = "example.test", map = "sales@v.test = bob@example.test, carol@example.test; info@v.test = bob@example.test; ext@v.test = dave@remote.test; team@v.test = sales@v.test, ext@v.test; @catch.test = carol@example.test" }}
"#,
        sink.port,
        test_plugins::shipped::VIRTUAL
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    t.add_user("carol@example.test", "pw");
    let out = python(
        &format!(
            "SMTP = {}\nPOPS = {}\n{}",
            t.port("smtp"),
            t.port("pop3s"),
            VIRTUAL_PY
        ),
        &[],
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    // The remote alias and the chained one reached the sink, for dave.
    let got = wait_for("two relayed messages", READY_BOUND, || {
        let r = sink.received();
        (r.len() >= 2).then_some(r)
    });
    let mut subjects: Vec<&str> = got
        .iter()
        .map(|(to, eml)| {
            assert_eq!(to, &vec!["dave@remote.test".to_string()], "{eml}");
            eml.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .expect("subject")
        })
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["to ext", "to team"]);
    assert_eq!(sink.received().len(), 2);
}

const VIRTUAL_PY: &str = r#"
import poplib, smtplib, ssl
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE

s = smtplib.SMTP("127.0.0.1", SMTP)
s.ehlo("client.test")
def send(to, subject):
    return s.sendmail("lisa@outside.test", [to], "Subject: %s\r\n\r\nhello\r\n" % subject)

for to, subject in [("sales@v.test", "to sales"), ("info+news@v.test", "to info+news"),
                    ("bob+lists@example.test", "to bob+lists"), ("anyone@catch.test", "to catch-all"),
                    ("ext@v.test", "to ext"), ("team@v.test", "to team")]:
    assert send(to, subject) == {}, to
# Unknown in the virtual domain; a remote address nobody aliased.
for to, want in [("nobody@v.test", (550, "5.1.1")), ("dave@remote.test", (550, "5.7.1"))]:
    s.mail("lisa@outside.test")
    code, msg = s.rcpt(to)
    assert (code, msg.decode()[:5]) == want, (to, code, msg)
    s.rset()
s.quit()

def subjects(user):
    p = poplib.POP3_SSL("127.0.0.1", POPS, context=CTX); p.user(user); p.pass_("pw")
    out = []
    for i in range(1, p.stat()[0] + 1):
        out += [l[9:].decode() for l in p.retr(i)[1] if l.startswith(b"Subject: ")]
    p.quit()
    return sorted(out)
bob, carol = subjects("bob@example.test"), subjects("carol@example.test")
assert bob == ["to bob+lists", "to info+news", "to sales", "to team"], bob
assert carol == ["to catch-all", "to sales", "to team"], carol
print("ok")
"#;
