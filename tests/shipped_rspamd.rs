//! The shipped `rspamd` filter (plugins/rspamd) in the real server against
//! Debian's rspamd, started privately by the test: Debian's configuration
//! with `LOCAL_CONFDIR` pointed at a folder the test writes (workers on
//! ephemeral loopback ports, its own database, run and log folders, DNS to
//! a dead port so nothing leaves the machine), action thresholds far
//! apart, multimap rules scoring subject markers so each action is
//! produced on purpose (a prefilter for soft reject), and selector rules
//! that fire only when the envelope sender, a recipient, the client
//! address, the HELO name or the login rspamd was given match what the
//! client said (the symbols come back in `X-Spam-Symbols:`). Checked: clean
//! mail delivered with `X-Spam-Status: No` and every envelope symbol but
//! the login's; reject → 550 5.7.1; soft reject → 451 4.7.1 with rspamd's
//! message; greylist → 451 4.7.1; add header → the local copy in Junk with
//! `X-Spam: Yes`, and for an authenticated submission (the login symbol
//! fires) to a local and a far recipient, the far copy relayed to the
//! smarthost with the same headers, `tern trace` telling both; rewrite
//! subject → INBOX with the new subject; rspamd gone → the entry's
//! `on_error`.

mod harness;

use harness::*;
use std::process::{Command, Stdio};
use std::time::Duration;
use tern::testing::ports::free_port;
use tern::testing::reaper::{Watched, spawn_group};

/// rspamd's message for the soft reject (its `smtp_message`).
const SOFT_MESSAGE: &str = "Tern test soft reject";

/// Symbols that fire when rspamd got the envelope sender, a recipient,
/// the client address, the HELO name and the login the clients below use.
const ENVELOPE_SYMBOLS: [(&str, &str, &[&str]); 5] = [
    (
        "TERN_SMTP_FROM",
        "from('smtp'):addr",
        &["lisa@outside.test", "bob@example.test"],
    ),
    (
        "TERN_SMTP_RCPT",
        "rcpts('smtp'):addr",
        &["bob@example.test"],
    ),
    ("TERN_SMTP_IP", "ip", &["127.0.0.1"]),
    (
        "TERN_SMTP_HELO",
        "helo",
        &["mail.outside.test", "laptop.example.test"],
    ),
    ("TERN_SMTP_USER", "user", &["bob@example.test"]),
];

/// Writes `lines` as the map `name.map` in `dir`; its path.
fn map(dir: &std::path::Path, name: &str, lines: &str) -> String {
    let path = dir.join(format!("{name}.map"));
    std::fs::write(&path, format!("{lines}\n")).expect("map");
    path.display().to_string()
}

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
        rules.push_str(&format!(
            "TERN_SOFT {{ type = \"header\"; header = \"Subject\"; regexp = true; map = \"{}\"; prefilter = true; action = \"soft reject\"; message = \"{SOFT_MESSAGE}\"; }}\n",
            map(d, "soft", "/tern-soft/i")
        ));
        // One symbol per request field, firing only on the value the test's
        // client gives: proof that it reached rspamd.
        for (name, selector, values) in ENVELOPE_SYMBOLS {
            rules.push_str(&format!(
                "{name} {{ type = \"selector\"; selector = \"{selector}\"; map = \"{}\"; score = 0.01; }}\n",
                map(d, name, &values.join("\n"))
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
    let sink = Sink::start();
    let extra = format!(
        "[[listen]]\nprotocol = \"imap\"\naddress = \"{{ip}}:0\"\n[tls]\nallow_plaintext_auth = true\n[relay]\nsmarthost = \"127.0.0.1:{}\"\nsmarthost_tls = \"none\"\n[[plugin]]\nname = \"rspamd\"\npath = \"{}\"\ntimeout = \"30s\"\non_error = \"tempfail\"\nconnect = [\"127.0.0.1:{}\"]\nconfig = {{ url = \"http://127.0.0.1:{}/checkv2\" }}\n",
        sink.port,
        test_plugins::shipped::RSPAMD,
        rspamd.port,
        rspamd.port
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let script = r#"
import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
SUB = int(sys.argv[3])
def message(subject, sender="Lisa <lisa@outside.test>", to="Bob <bob@example.test>"):
    m = EmailMessage()
    m["From"] = sender; m["To"] = to; m["Subject"] = subject
    m["Date"] = formatdate(); m["Message-ID"] = make_msgid(domain="outside.test")
    m.set_content("Hello Bob,\n\nthe minutes of Tuesday's meeting are below.\n\nLisa\n")
    return m
def symbols(headers):
    line = [l for l in re.sub(r"\r?\n[ \t]+", " ", headers).splitlines() if l.startswith("X-Spam-Symbols:")]
    assert len(line) == 1, headers
    return set(s.strip() for s in line[0].split(":", 1)[1].split(","))
"#;
    let envelope = [
        "TERN_SMTP_FROM",
        "TERN_SMTP_RCPT",
        "TERN_SMTP_IP",
        "TERN_SMTP_HELO",
    ];
    let out = python(
        &format!(
            "{PY_FILTER}\n{script}\nENVELOPE = {envelope:?}\n{}",
            r#"
assert send(message("minutes")) == (250, "")
code, text = send(message("tern-reject offer"))
assert code == 550 and text.startswith("5.7.1 "), (code, text)
code, text = send(message("tern-soft offer"))
assert (code, text) == (451, "4.7.1 SOFT"), (code, text)
code, text = send(message("tern-grey offer"))
assert code == 451 and text.startswith("4.7.1 ") and "reylist" in text, (code, text)
assert send(message("tern-junk offer")) == (250, "")
assert send(message("tern-rewrite offer")) == (250, "")
# Bob logs in and submits spam to himself and to a far address: his copy
# goes to Junk, the far one is relayed (the smarthost), both tagged.
m = message("tern-junk from bob", "Bob <bob@example.test>", "bob@example.test, alice@far.test")
m.replace_header("Message-ID", "<junk-relay@example.test>")
s = smtplib.SMTP("127.0.0.1", SUB, timeout=90)
s.ehlo("laptop.example.test"); s.login("bob@example.test", "pw")
assert s.sendmail("bob@example.test", ["bob@example.test", "alice@far.test"], m.as_bytes()) == {}
s.quit()
inbox, junk = folder("INBOX"), folder("Junk")
assert len(inbox) == 2, inbox
assert "Subject: minutes" in inbox[0] and "X-Spam-Status: No, score=" in inbox[0], inbox[0]
got = symbols(inbox[0])
assert all(e in got for e in ENVELOPE) and "TERN_SMTP_USER" not in got, got
assert "Subject: ***SPAM*** tern-rewrite offer" in inbox[1] and "X-Spam: Yes" in inbox[1], inbox[1]
assert "Subject: tern-rewrite offer" not in inbox[1], inbox[1]
assert len(junk) == 2, junk
assert "Subject: tern-junk offer" in junk[0] and "X-Spam: Yes" in junk[0], junk
assert "TERN_JUNK" in symbols(junk[0]), junk[0]
assert "Subject: tern-junk from bob" in junk[1] and "X-Spam: Yes" in junk[1], junk[1]
got = symbols(junk[1])
assert all(e in got for e in ENVELOPE + ["TERN_JUNK", "TERN_SMTP_USER"]), got
print("ok")
"#
        )
        .replace("SOFT", SOFT_MESSAGE),
        &[
            &t.port("smtp").to_string(),
            &t.port("imap").to_string(),
            &t.port("submission").to_string(),
        ],
    );
    assert_eq!(out.trim(), "ok");

    // The far copy of Bob's spam went out, tagged as his own copy was.
    t.wait_queue_empty(Duration::from_secs(60));
    let relayed = sink.received();
    assert_eq!(relayed.len(), 1, "{relayed:?}");
    let (to, message) = &relayed[0];
    assert_eq!(to, &["alice@far.test".to_string()]);
    assert!(message.contains("Subject: tern-junk from bob"), "{message}");
    assert!(message.contains("X-Spam: Yes"), "{message}");
    assert!(message.contains("action=add header"), "{message}");
    assert!(message.contains("TERN_SMTP_USER"), "{message}");
    let story = t.cli_ok(&["trace", "<junk-relay@example.test>"]);
    for line in [
        "data     plugin rspamd: local folder — Junk",
        "store    folder: junk [bob@example.test]",
        "store    queue: queued <alice@far.test>",
        "delivery queue: sent <alice@far.test>",
    ] {
        assert!(story.contains(line), "{line:?} in {story}");
    }
    assert!(!story.contains("not relayed"), "{story}");

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
        &[
            &t.port("smtp").to_string(),
            &t.port("imap").to_string(),
            &t.port("submission").to_string(),
        ],
    );
    assert_eq!(out.trim(), "ok");
    assert!(t.log().contains("cannot connect"), "the reason is logged");
}
