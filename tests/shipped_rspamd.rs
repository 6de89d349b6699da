//! The shipped `rspamd` filter (plugins/rspamd) in the real server against
//! Debian's rspamd, started privately by the test: Debian's configuration
//! with `LOCAL_CONFDIR` pointed at a folder the test writes (workers on
//! ephemeral loopback ports, its own database, run and log folders, DNS to
//! a dead port so nothing leaves the machine), action thresholds far
//! apart, and multimap rules scoring subject markers so each action is
//! produced on purpose. Checked: clean mail delivered with
//! `X-Spam-Status: No`; reject → 550 5.7.1; greylist → 451 4.7.1; add
//! header → Junk with `X-Spam: Yes`; rewrite subject → INBOX with the new
//! subject; rspamd gone → the entry's `on_error`.

mod harness;

use harness::*;
use std::process::{Command, Stdio};
use std::time::Duration;
use tern::testing::ports::free_port;
use tern::testing::reaper::{Watched, spawn_group};

struct Rspamd {
    child: Watched,
    stopped: bool,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Rspamd {
    fn start() -> Rspamd {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["local.d", "override.d", "db", "run", "log"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        let port = free_port();
        let write = |name: &str, text: String| std::fs::write(d.join(name), text).expect("write");
        write(
            "override.d/worker-normal.inc",
            format!("bind_socket = \"127.0.0.1:{port}\";\ncount = 1;\n"),
        );
        write(
            "override.d/worker-controller.inc",
            format!("bind_socket = \"127.0.0.1:{}\";\n", free_port()),
        );
        write(
            "override.d/worker-proxy.inc",
            format!("bind_socket = \"127.0.0.1:{}\";\n", free_port()),
        );
        write(
            "local.d/actions.conf",
            "reject = 100;\nrewrite_subject = 70;\nadd_header = 40;\ngreylist = 20;\nsubject = \"***SPAM*** %s\";\n".into(),
        );
        let mut rules = String::new();
        for (name, marker, score) in [
            ("TERN_REJECT", "tern-reject", 150),
            ("TERN_REWRITE", "tern-rewrite", 80),
            ("TERN_JUNK", "tern-junk", 50),
            ("TERN_GREY", "tern-grey", 25),
        ] {
            let map = d.join(format!("{marker}.map"));
            std::fs::write(&map, format!("/{marker}/i\n")).expect("map");
            rules.push_str(&format!(
                "{name} {{ type = \"header\"; header = \"Subject\"; regexp = true; map = \"{}\"; score = {score}.0; }}\n",
                map.display()
            ));
        }
        write("local.d/multimap.conf", rules);
        write(
            "local.d/logging.inc",
            format!(
                "type = \"file\"; filename = \"{}\"; level = \"notice\";\n",
                d.join("log/rspamd.log").display()
            ),
        );
        write(
            "local.d/options.inc",
            "dns { nameserver = [\"127.0.0.1:9\"]; timeout = 0.2s; retransmits = 1; }\n".into(),
        );
        let var = |k: &str, v: &std::path::Path| format!("--var={k}={}", v.display());
        let child = spawn_group(
            Command::new("rspamd")
                .args([
                    "-f",
                    "-i",
                    "-u",
                    "root",
                    "-g",
                    "root",
                    "-c",
                    "/etc/rspamd/rspamd.conf",
                ])
                .arg(var("LOCAL_CONFDIR", d))
                .arg(var("DBDIR", &d.join("db")))
                .arg(var("RUNDIR", &d.join("run")))
                .arg(var("LOGDIR", &d.join("log")))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("rspamd (Debian's rspamd; scripts/install-test-deps)");
        let r = Rspamd {
            child,
            stopped: false,
            port,
            _dir: dir,
        };
        wait_for("rspamd to answer /ping", Duration::from_secs(120), || {
            let out = Command::new("curl")
                .args(["-s", "-m", "2", &format!("http://127.0.0.1:{port}/ping")])
                .output()
                .ok()?;
            text(&out.stdout).contains("pong").then_some(())
        });
        r
    }

    /// SIGTERM to the main process (it stops its workers), then wait.
    fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        self.child.terminate();
        let _ = self.child.wait();
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn rspamd_actions_are_applied_and_rspamd_down_gets_on_error() {
    let mut rspamd = Rspamd::start();
    let extra = format!(
        "[[listen]]\nprotocol = \"imap\"\naddress = \"{{ip}}:0\"\n[tls]\nallow_plaintext_auth = true\n[[plugin]]\nname = \"rspamd\"\npath = \"{}\"\ntimeout = \"30s\"\non_error = \"tempfail\"\nconnect = [\"127.0.0.1:{}\"]\nconfig = {{ url = \"http://127.0.0.1:{}/checkv2\" }}\n",
        test_plugins::shipped::RSPAMD,
        rspamd.port,
        rspamd.port
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let script = r#"
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
def message(subject):
    m = EmailMessage()
    m["From"] = "Lisa <lisa@outside.test>"; m["To"] = "Bob <bob@example.test>"; m["Subject"] = subject
    m["Date"] = formatdate(); m["Message-ID"] = make_msgid(domain="outside.test")
    m.set_content("Hello Bob,\n\nthe minutes of Tuesday's meeting are below.\n\nLisa\n")
    return m
"#;
    let out = python(
        &format!(
            "{PY_FILTER}\n{script}\n{}",
            r#"
assert send(message("minutes")) == (250, "")
code, text = send(message("tern-reject offer"))
assert code == 550 and text.startswith("5.7.1 "), (code, text)
code, text = send(message("tern-grey offer"))
assert code == 451 and text.startswith("4.7.1 ") and "reylist" in text, (code, text)
assert send(message("tern-junk offer")) == (250, "")
assert send(message("tern-rewrite offer")) == (250, "")
inbox, junk = folder("INBOX"), folder("Junk")
assert len(inbox) == 2, inbox
assert "Subject: minutes" in inbox[0] and "X-Spam-Status: No, score=" in inbox[0], inbox[0]
assert "Subject: ***SPAM*** tern-rewrite offer" in inbox[1] and "X-Spam: Yes" in inbox[1], inbox[1]
assert "Subject: tern-rewrite offer" not in inbox[1], inbox[1]
assert len(junk) == 1 and "Subject: tern-junk offer" in junk[0] and "X-Spam: Yes" in junk[0], junk
assert "TERN_JUNK" in junk[0], junk[0]
print("ok")
"#
        ),
        &[&t.port("smtp").to_string(), &t.port("imap").to_string()],
    );
    assert_eq!(out.trim(), "ok");

    rspamd.stop();
    let out = python(
        &format!(
            "{PY_FILTER}\n{script}\n{}",
            r#"
code, text = send(message("while rspamd is down"))
assert code == 451 and text.startswith("4.7.1"), (code, text)
print("ok")
"#
        ),
        &[&t.port("smtp").to_string(), &t.port("imap").to_string()],
    );
    assert_eq!(out.trim(), "ok");
    assert!(t.log().contains("cannot connect"), "the reason is logged");
}
