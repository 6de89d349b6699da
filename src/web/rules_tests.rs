//! Tests of the rules and their Sieve text: what the pages write reads back
//! as the same rules, a changed script does not, every script compiles with
//! tern-sieve, and tern-sieve and Dovecot Pigeonhole's `sieve-test`
//! (Debian's dovecot-sieve) take the same actions on sample messages.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use tern_sieve::{Action, Context, Envelope, NoEnvironment, Outcome};

fn rule(header: &str, op: Op, value: &str, act: Act) -> Rule {
    Rule {
        name: String::new(),
        header: header.into(),
        op,
        value: value.into(),
        act,
        stop: false,
    }
    .checked()
    .expect("a valid rule")
}

fn mv(folder: &str) -> Act {
    Act::Move {
        folder: folder.into(),
    }
}

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset)).to_string()
}

fn vacation(on: bool, start: Option<i64>, end: Option<i64>) -> Vacation {
    Vacation {
        on,
        start: start.map(day),
        end: end.map(day),
        subject: "Away \"until\" Monday \\o/".into(),
        text: "I am away.\r\nBack on Monday, ünïcode and \"quotes\".\r\n".into(),
        days: 3,
    }
    .checked()
    .expect("a valid vacation")
}

/// The scripts the tests use: every action, both operators, hostile text.
fn samples() -> Vec<(&'static str, WebScript)> {
    let invoices = rule("Subject", Op::Contains, "invoice", mv("Invoices"));
    let mut stop = rule("from", Op::Is, "lisa@outside.test", mv("Lisa/Personal"));
    stop.stop = true;
    let flag = rule(
        "From",
        Op::Contains,
        "Lisa",
        Act::Flag {
            flag: "\\Flagged".into(),
        },
    );
    let keyword = rule(
        "X-Priority",
        Op::Is,
        "1",
        Act::Flag {
            flag: "$label1".into(),
        },
    );
    let forward = rule(
        "to",
        Op::Contains,
        "bob",
        Act::Forward {
            to: "dave@remote.test".into(),
            keep: true,
        },
    );
    let away = rule(
        "subject",
        Op::Contains,
        "away",
        Act::Forward {
            to: "erin@remote.test".into(),
            keep: false,
        },
    );
    let hostile = rule(
        "subject",
        Op::Contains,
        "\"quoted\" \\ ${x} *?",
        Act::Discard,
    );
    let spam = rule("subject", Op::Contains, "casino", Act::Discard);
    vec![
        ("empty", WebScript::default()),
        (
            "invoices",
            WebScript {
                rules: vec![invoices.clone()],
                vacation: None,
            },
        ),
        (
            "flag-then-move",
            WebScript {
                rules: vec![flag.clone(), invoices.clone(), keyword],
                vacation: None,
            },
        ),
        (
            "stop-and-forward",
            WebScript {
                rules: vec![stop, forward, away, invoices.clone()],
                vacation: None,
            },
        ),
        (
            "discard",
            WebScript {
                rules: vec![hostile, spam, flag],
                vacation: Some(vacation(false, None, None)),
            },
        ),
        (
            "vacation-always",
            WebScript {
                rules: vec![invoices.clone()],
                vacation: Some(vacation(true, None, None)),
            },
        ),
        (
            "vacation-now",
            WebScript {
                rules: vec![invoices.clone()],
                vacation: Some(vacation(true, Some(-10), Some(10))),
            },
        ),
        (
            "vacation-later",
            WebScript {
                rules: vec![invoices.clone()],
                vacation: Some(vacation(true, Some(30), Some(40))),
            },
        ),
        (
            "vacation-since",
            WebScript {
                rules: vec![],
                vacation: Some(vacation(true, Some(-1), None)),
            },
        ),
        (
            "vacation-was",
            WebScript {
                rules: vec![invoices],
                vacation: Some(vacation(true, None, Some(-1))),
            },
        ),
    ]
}

#[test]
fn scripts_compile_and_read_back() {
    for (name, w) in samples() {
        let text = w.to_sieve();
        if let Err(e) = tern_sieve::compile(&text) {
            panic!("{name}: {e}\n{text}");
        }
        assert_eq!(
            read(text.as_bytes()),
            Read::Ours(w.clone()),
            "{name}\n{text}"
        );
        // Any change to the code makes it someone else's script.
        let edited = text.replace(":create \"Invoices\"", "\"Invoices\"");
        if edited != text {
            assert_eq!(read(edited.as_bytes()), Read::Foreign, "{name}");
        }
        let stripped = text.replace("# rule:[", "# [");
        if stripped != text {
            assert_eq!(read(stripped.as_bytes()), Read::Foreign, "{name}");
        }
        let appended = format!("{text}discard;\n");
        assert_eq!(read(appended.as_bytes()), Read::Foreign, "{name}");
    }
    assert_eq!(
        read(b"require \"fileinto\";\nfileinto \"x\";\n"),
        Read::Foreign
    );
    assert_eq!(read(b"# tern-webmail-v1 {not json\n"), Read::Foreign);
    assert_eq!(read(&[0xff, 0xfe]), Read::Foreign);
}

#[test]
fn requires_only_what_is_used() {
    let text = samples()
        .into_iter()
        .find(|(n, _)| *n == "invoices")
        .map(|(_, w)| w.to_sieve())
        .expect("sample");
    assert!(
        text.contains("require [\"fileinto\", \"mailbox\"];"),
        "{text}"
    );
    assert!(text.contains("# rule:[subject contains invoice]\nif header :contains \"subject\" \"invoice\" {\n    fileinto :create \"Invoices\";\n}\n"), "{text}");
    let empty = WebScript::default().to_sieve();
    assert!(!empty.contains("require"), "{empty}");
    let now = samples()
        .into_iter()
        .find(|(n, _)| *n == "vacation-now")
        .map(|(_, w)| w.to_sieve())
        .expect("sample");
    assert!(
        now.contains(
            "require [\"date\", \"fileinto\", \"mailbox\", \"relational\", \"vacation\"];"
        ),
        "{now}"
    );
    // The vacation goes first: a rule that stops does not silence it.
    assert!(
        now.find("vacation :days 3").expect("vacation")
            < now.find("fileinto :create").expect("rule")
    );
}

#[test]
fn forms_are_checked() {
    let base = Rule {
        name: " ".into(),
        header: "Subject".into(),
        op: Op::Contains,
        value: " x ".into(),
        act: Act::Discard,
        stop: false,
    };
    let ok = base.clone().checked().expect("valid");
    assert_eq!((ok.header.as_str(), ok.value.as_str()), ("subject", "x"));
    assert_eq!(ok.name, "subject contains x");
    let refused = |r: Rule| r.checked().is_err();
    assert!(refused(Rule {
        header: "Sub ject".into(),
        ..base.clone()
    }));
    assert!(refused(Rule {
        header: "a:b".into(),
        ..base.clone()
    }));
    assert!(refused(Rule {
        value: "  ".into(),
        ..base.clone()
    }));
    assert!(refused(Rule {
        value: "a\nb".into(),
        ..base.clone()
    }));
    assert!(refused(Rule {
        name: "a\rb".into(),
        ..base.clone()
    }));
    assert!(refused(Rule {
        act: mv("~other"),
        ..base.clone()
    }));
    assert!(refused(Rule {
        act: Act::Flag {
            flag: "two words".into()
        },
        ..base.clone()
    }));
    assert!(refused(Rule {
        act: Act::Flag { flag: "\\".into() },
        ..base.clone()
    }));
    assert!(refused(Rule {
        act: Act::Forward {
            to: "not an address".into(),
            keep: false
        },
        ..base.clone()
    }));
    let v = Vacation {
        on: true,
        text: "away".into(),
        ..Vacation::default()
    };
    assert!(v.clone().checked().is_ok());
    assert!(
        Vacation {
            text: " ".into(),
            ..v.clone()
        }
        .checked()
        .is_err()
    );
    assert!(
        Vacation {
            days: 0,
            ..v.clone()
        }
        .checked()
        .is_err()
    );
    assert!(
        Vacation {
            start: Some("2026-13-01".into()),
            ..v.clone()
        }
        .checked()
        .is_err()
    );
    assert!(
        Vacation {
            start: Some("2026-05-02".into()),
            end: Some("2026-05-01".into()),
            ..v.clone()
        }
        .checked()
        .is_err()
    );
    assert!(
        Vacation {
            text: "a\u{7}".into(),
            ..v
        }
        .checked()
        .is_err()
    );
}

// --- the same actions as Pigeonhole ---

const MESSAGES: &[(&str, &str)] = &[
    (
        "invoice.eml",
        "From: Lisa <lisa@outside.test>\r\nTo: bob@example.test\r\nSubject: Your invoice for May\r\n\
         Message-ID: <1@outside.test>\r\nDate: Mon, 4 May 2026 10:00:00 +0000\r\n\r\nPay up.\r\n",
    ),
    (
        "plain.eml",
        "From: Mallory <mallory@other.test>\r\nTo: carol@example.test\r\nCc: Bob <bob@example.test>\r\n\
         Subject: I am away, \"quoted\" \\ ${x} *?\r\nX-Priority: 1\r\nMessage-ID: <2@other.test>\r\n\
         Date: Mon, 4 May 2026 10:00:00 +0000\r\n\r\nHello.\r\n",
    ),
    (
        "casino.eml",
        "From: spam@casino.test\r\nTo: bob@example.test\r\nSubject: =?UTF-8?Q?Big_CASINO_win?=\r\n\
         Message-ID: <3@casino.test>\r\nDate: Mon, 4 May 2026 10:00:00 +0000\r\n\r\nWin.\r\n",
    ),
];

fn flags(f: &[String]) -> String {
    let mut f: Vec<String> = f.iter().map(|x| x.to_ascii_lowercase()).collect();
    f.sort();
    f.join(" ")
}

/// tern-sieve's outcome in the normal form below.
fn ours(o: &Outcome) -> Vec<String> {
    let mut out: Vec<String> = o
        .actions
        .iter()
        .map(|a| match a {
            Action::Keep { flags: f } => format!("store INBOX [{}]", flags(f)),
            Action::FileInto {
                folder, flags: f, ..
            } => format!("store {folder} [{}]", flags(f)),
            Action::Redirect { address, .. } => format!("redirect {address}"),
            Action::Discard => "discard".into(),
            Action::Reject { .. } => "reject".into(),
            Action::Vacation(v) => format!("vacation {}", v.subject.as_deref().unwrap_or("")),
        })
        .collect();
    if o.implicit_keep {
        out.push(format!("keep INBOX [{}]", flags(&o.implicit_flags)));
    }
    out
}

/// Pigeonhole's "Performed actions" and "Implicit keep" listing in the
/// same form: `store F [flags]`, `redirect A`, `discard`, `vacation S`,
/// `keep INBOX [flags]`.
fn theirs(stdout: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut implicit = false;
    let mut in_message = false;
    for line in stdout.lines() {
        let t = line.trim();
        if t == "START MESSAGE" || t == "END MESSAGE" {
            in_message = t == "START MESSAGE";
            continue;
        }
        if in_message {
            continue;
        }
        if t == "Implicit keep:" {
            implicit = true;
        } else if let Some(a) = t.strip_prefix("* ") {
            let a = if let Some(f) = a.strip_prefix("store message in folder: ") {
                format!("{} {f} []", if implicit { "keep" } else { "store" })
            } else if let Some(r) = a.strip_prefix("redirect message to: ") {
                format!("redirect {}", r.trim_matches(['<', '>']))
            } else if a.starts_with("send vacation message") {
                "vacation ".into()
            } else {
                a.to_string()
            };
            out.push(a);
        } else if let (Some(s), Some(last)) = (t.strip_prefix("=> subject : "), out.last_mut())
            && last.starts_with("vacation")
        {
            *last = format!("vacation {s}");
        } else if let (Some(f), Some(last)) = (t.strip_prefix("+ add IMAP flags: "), out.last_mut())
        {
            let f: Vec<String> = f.split_whitespace().map(str::to_string).collect();
            if let Some(base) = last.strip_suffix("[]") {
                *last = format!("{base}[{}]", flags(&f));
            }
        }
    }
    out
}

/// `sieve-test` in a private folder; as root it must drop privileges,
/// so the folder is world-readable and mail access maps to `nobody`.
struct SieveTest(tempfile::TempDir);

impl SieveTest {
    fn new() -> SieveTest {
        assert!(
            Command::new("sieve-test").arg("--help").output().is_ok(),
            "sieve-test (Debian's dovecot-sieve) is needed: run scripts/install-test-deps"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).expect("mail dir");
        for (p, mode) in [(dir.path(), 0o755), (mail.as_path(), 0o777)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let conf = format!(
            "{}first_valid_uid = 1\nfirst_valid_gid = 1\nmail_location = maildir:{}\n",
            if root {
                "mail_uid = 65534\nmail_gid = 65534\n"
            } else {
                ""
            },
            mail.display()
        );
        let st = SieveTest(dir);
        st.write("dovecot.conf", &conf);
        st
    }

    fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        p
    }

    fn run(&self, script: &str, message: &str, env: &Envelope) -> (Vec<String>, String) {
        let s = self.write("script.sieve", script);
        let m = self.write("message.eml", message);
        let out = Command::new("sieve-test")
            .env("TZ", "UTC")
            .arg("-c")
            .arg(self.0.path().join("dovecot.conf"))
            .args(["-a", &env.to, "-f", &env.from])
            .arg(s)
            .arg(m)
            .output()
            .expect("sieve-test runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (theirs(&stdout), format!("{stdout}\n{stderr}"))
    }
}

#[test]
fn pigeonhole_takes_the_same_actions() {
    let st = SieveTest::new();
    let env = Envelope {
        from: "sender@outside.test".into(),
        to: "bob@example.test".into(),
    };
    let mut pairs = 0;
    let mut seen_vacation = 0;
    for (name, w) in samples() {
        let text = w.to_sieve();
        let script = tern_sieve::compile(&text).expect("compiles");
        for (msg_name, msg) in MESSAGES {
            let ctx = Context::new(&env.to, env.clone());
            let mine = ours(&tern_sieve::run(
                &script,
                msg.as_bytes(),
                &ctx,
                &NoEnvironment,
            ));
            let (them, raw) = st.run(&text, msg, &env);
            assert_eq!(
                mine, them,
                "{name} on {msg_name}:\n{text}\nsieve-test said:\n{raw}"
            );
            assert!(
                !them.is_empty(),
                "{name} on {msg_name}: no actions parsed:\n{raw}"
            );
            seen_vacation += usize::from(them.iter().any(|a| a.starts_with("vacation")));
            pairs += 1;
        }
    }
    assert_eq!(pairs, 30);
    // Replies out of "always", "now" and "since" on all three messages;
    // none from "later", "was" or the disabled one.
    assert_eq!(seen_vacation, 9);
}
