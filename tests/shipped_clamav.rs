//! The shipped `clamav` filter (plugins/clamav) in the real server against
//! Debian's clamd, started privately by the test on a loopback port with
//! its own config and a signature database the test writes (an MD5
//! signature of the EICAR test file and a body signature of a marker
//! string; no download). A clean message is delivered; an EICAR
//! attachment and the marker are refused with 554 5.7.1 naming the
//! signature; with `action = "quarantine"` and `folder = "Virus"` the
//! message goes to that folder, created for the account (read back over
//! IMAP), and the trace names it; clamd gone → the entry's `on_error` (451).

mod harness;

use harness::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;
use tern::testing::ports::free_port;
use tern::testing::reaper::{Watched, spawn_group};

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const MARKER: &str = "TERN-CLAMAV-TEST-MARKER-7f3a";

/// A private clamd; killed on drop.
struct Clamd {
    child: Watched,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Clamd {
    fn start() -> Clamd {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).expect("db dir");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp dir");
        let md5 = python(
            "import hashlib, sys\nprint(hashlib.md5(sys.argv[1].encode()).hexdigest())",
            &[EICAR],
        );
        std::fs::write(
            db.join("tern-test.hdb"),
            format!("{}:{}:Tern.Test.EICAR\n", md5.trim(), EICAR.len()),
        )
        .expect("hdb");
        let hex: String = MARKER.bytes().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            db.join("tern-test.ndb"),
            format!("Tern.Test.Marker:0:*:{hex}\n"),
        )
        .expect("ndb");
        let port = free_port();
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "TCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {}\nTemporaryDirectory {}\nForeground yes\nLogFile {}\nPidFile {}\nLogVerbose yes\n",
                db.display(),
                dir.path().join("tmp").display(),
                dir.path().join("clamd.log").display(),
                dir.path().join("clamd.pid").display(),
            ),
        )
        .expect("conf");
        let child = spawn_group(
            Command::new("clamd")
                .arg("--config-file")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("clamd (Debian's clamav-daemon; scripts/install-test-deps)");
        let clamd = Clamd {
            child,
            port,
            _dir: dir,
        };
        wait_for("clamd to answer PING", Duration::from_secs(120), || {
            clamd.ping().then_some(())
        });
        clamd
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut answer = String::new();
        s.write_all(b"nPING\n").is_ok()
            && s.read_to_string(&mut answer).is_ok()
            && answer.trim() == "PONG"
    }
}

/// A server whose clamav entry's config adds `settings` (`action = …`).
fn server(clamd_port: u16, settings: &str) -> Tern {
    let extra = format!(
        "[[listen]]\nprotocol = \"imap\"\naddress = \"{{ip}}:0\"\n[tls]\nallow_plaintext_auth = true\n[[plugin]]\nname = \"clamav\"\npath = \"{}\"\ntimeout = \"10s\"\non_error = \"tempfail\"\nconnect = [\"127.0.0.1:{clamd_port}\"]\nconfig = {{ address = \"127.0.0.1:{clamd_port}\", {settings} }}\n",
        test_plugins::shipped::CLAMAV
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    t
}

const MESSAGES_PY: &str = r#"
from email.message import EmailMessage
EICAR, MARKER = sys.argv[3], sys.argv[4]

def message(subject, body="hello\n"):
    m = EmailMessage()
    m["From"] = "lisa@outside.test"; m["To"] = "bob@example.test"; m["Subject"] = subject
    m.set_content(body)
    return m

def subjects(name):
    return [l for h in folder(name) for l in h.splitlines() if l.startswith("Subject: ")]

def with_eicar(subject):
    m = message(subject)
    m.add_attachment(EICAR.encode(), maintype="application", subtype="octet-stream", filename="eicar.com")
    return m
"#;

fn run(t: &Tern, body: &str) -> String {
    let smtp = t.port("smtp").to_string();
    let imap = t.port("imap").to_string();
    python(
        &format!("{PY_FILTER}\n{MESSAGES_PY}\n{body}"),
        &[&smtp, &imap, EICAR, MARKER],
    )
}

#[test]
fn viruses_refused_or_quarantined_clean_mail_delivered_clamd_down_tempfails() {
    let mut clamd = Clamd::start();
    let t = server(clamd.port, "action = \"reject\"");
    let out = run(
        &t,
        r#"
assert send(message("clean one")) == (250, "")
code, text = send(with_eicar("eicar"))
assert code == 554 and text.startswith("5.7.1 ") and "Tern.Test.EICAR" in text, (code, text)
code, text = send(message("marker", "see " + MARKER + " here\n"))
assert code == 554 and "Tern.Test.Marker" in text, (code, text)
assert subjects("INBOX") == ["Subject: clean one"], subjects("INBOX")
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    assert!(
        t.log().contains("virus Tern.Test.EICAR"),
        "the plugin logs it"
    );

    let q = server(clamd.port, "action = \"quarantine\", folder = \"Virus\"");
    let out = run(
        &q,
        r#"
assert send(with_eicar("eicar to the virus folder")) == (250, "")
assert send(message("clean two")) == (250, "")
assert subjects("Virus") == ["Subject: eicar to the virus folder"], subjects("Virus")
assert subjects("INBOX") == ["Subject: clean two"], subjects("INBOX")
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    let story = q.client_trace("127.0.0.1");
    for line in [
        "data     plugin clamav: local folder — Virus",
        "data     plugin clamav: quarantine",
        "store    folder: Virus [bob@example.test]",
    ] {
        assert!(story.contains(line), "{line:?} in {story}");
    }

    // clamd gone: the plugin fails and on_error = "tempfail" answers.
    let _ = clamd.child.kill();
    let _ = clamd.child.wait();
    let out = run(
        &q,
        r#"
code, text = send(message("while clamd is down"))
assert code == 451 and text.startswith("4.7.1"), (code, text)
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
    assert!(
        q.log().contains("cannot connect to clamd"),
        "the reason is logged"
    );
}
