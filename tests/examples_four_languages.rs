//! The example policy plugin of `examples/`, written in Rust, C,
//! JavaScript and Python, is built from source here with each example's
//! own `build.sh` (into `target/tmp/examples/<language>`, so only the
//! target dir caches anything), loaded into the real `tern` binary one
//! language per server, and put through the same SMTP dialogue (Python's
//! smtplib): every language must give the same answers, byte for byte —
//! a blocked local part gets 550 5.1.1 with the plugin's text, in any
//! case; others get 250 — and the plugin's log lines reach the server log.
//!
//! Needs the example toolchains (`scripts/install-test-deps` installs
//! them). JavaScript and Python components are 12–18 MB; compiling them
//! is what takes the time here.

mod harness;
use harness::{READY_BOUND, Tern, config, python, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LANGUAGES: [&str; 4] = ["rust", "c", "javascript", "python"];

const BLOCKED: &str = "nobody,noreply,postmaster-test";

/// The dialogue: one session per recipient; prints one JSON line per
/// recipient with the code and text of the RCPT reply.
const DIALOGUE: &str = r#"
import json, smtplib, sys
port = int(sys.argv[1])
for rcpt in sys.argv[2:]:
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo("client.test")
    code, msg = s.mail("lisa@outside.test")
    assert code == 250, (code, msg)
    code, msg = s.rcpt(rcpt)
    s.quit()
    print(json.dumps([rcpt, code, msg.decode()]))
"#;

/// Recipients: three blocked (one in another case), two allowed.
const RECIPIENTS: [&str; 5] = [
    "nobody@example.test",
    "NoReply@example.test",
    "postmaster-test@example.test",
    "bob@example.test",
    "nobody2@example.test",
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Starts `examples/<language>/build.sh <out>`.
fn start_build(language: &str, out: &Path) -> Child {
    let mut cmd = Command::new(examples_dir().join(language).join("build.sh"));
    cmd.arg(out).stdout(Stdio::piped()).stderr(Stdio::piped());
    // What cargo set for this test run must not steer the Rust example's build.
    for var in ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot run examples/{language}/build.sh: {e}"))
}

/// Builds the four examples at once; the path of each `.wasm`.
fn build_all() -> Vec<(&'static str, PathBuf)> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples");
    std::thread::scope(|scope| {
        let builds: Vec<_> = LANGUAGES
            .iter()
            .map(|&language| {
                let out = root.join(language);
                scope.spawn(move || {
                    let started = Instant::now();
                    let result = start_build(language, &out)
                        .wait_with_output()
                        .expect("build.sh");
                    assert!(
                        result.status.success(),
                        "examples/{language}/build.sh failed ({}); has scripts/install-test-deps run?\n{}\n{}",
                        result.status,
                        String::from_utf8_lossy(&result.stdout),
                        String::from_utf8_lossy(&result.stderr)
                    );
                    let wasm = out.join("blocklist.wasm");
                    assert!(wasm.is_file(), "{} was not written", wasm.display());
                    eprintln!(
                        "examples/{language}: built in {:.1} s, {} bytes",
                        started.elapsed().as_secs_f64(),
                        std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0)
                    );
                    (language, wasm)
                })
            })
            .collect();
        builds
            .into_iter()
            .map(|b| b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// A server with one example loaded. Its first start compiles the plugin:
/// seconds for the JavaScript and Python components, more on a busy
/// machine with the debug build, hence the generous bound.
fn server(language: &str, wasm: &Path) -> Tern {
    let plugin = format!(
        "[[plugin]]\nname = \"blocklist\"\npath = \"{}\"\ntimeout = \"5s\"\nconfig = {{ blocked = \"{BLOCKED}\" }}\n",
        wasm.display()
    );
    let started = Instant::now();
    let t = Tern::start_within(
        "127.0.0.1",
        &config("mx.example.test", "example.test", &plugin),
        Duration::from_secs(1200),
    );
    eprintln!(
        "examples/{language}: server up with the plugin in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The built-in checks run first and refuse unknown local users, so
    // every recipient of the dialogue exists.
    for rcpt in RECIPIENTS {
        t.add_user(&rcpt.to_lowercase(), "pw");
    }
    t
}

#[test]
fn four_languages_one_policy_same_answers() {
    let built = build_all();
    // All four servers start at once: their compilations overlap.
    let servers: Vec<(&str, Tern)> = std::thread::scope(|scope| {
        let starting: Vec<_> = built
            .iter()
            .map(|(language, wasm)| scope.spawn(move || (*language, server(language, wasm))))
            .collect();
        starting
            .into_iter()
            .map(|s| s.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut answers: Vec<(&str, Vec<serde_json::Value>)> = Vec::new();
    for (language, t) in &servers {
        let mut args = vec![t.port("smtp").to_string()];
        args.extend(RECIPIENTS.iter().map(|r| r.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = python(DIALOGUE, &args);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("dialogue output"))
            .collect();
        assert_eq!(lines.len(), RECIPIENTS.len(), "{language}: {out}");
        for line in &lines {
            let rcpt = line[0].as_str().unwrap_or_default();
            let code = line[1].as_u64().unwrap_or_default();
            let text = line[2].as_str().unwrap_or_default();
            let local = rcpt.split('@').next().unwrap_or_default().to_lowercase();
            if BLOCKED.split(',').any(|b| b == local) {
                assert_eq!(code, 550, "{language}: {line}");
                assert_eq!(
                    text,
                    format!(
                        "5.1.1 <{rcpt}>: this address does not receive mail (blocked by policy)"
                    ),
                    "{language}"
                );
            } else {
                assert_eq!(code, 250, "{language}: {line}");
            }
        }
        // Each decision is in the server log, tagged with the plugin's name.
        let log = wait_for("the plugin's log lines", READY_BOUND, || {
            let log = t.log();
            RECIPIENTS.iter().all(|r| log.contains(r)).then_some(log)
        });
        for rcpt in RECIPIENTS {
            let local = rcpt.split('@').next().unwrap_or_default().to_lowercase();
            let decision = if BLOCKED.split(',').any(|b| b == local) {
                "reject"
            } else {
                "continue"
            };
            let line = format!("blocklist: {decision} {rcpt}");
            assert!(
                log.lines()
                    .any(|l| l.contains(&line) && l.contains("plugin=\"blocklist\"")),
                "{language}: no log line {line:?} from the plugin in:\n{log}"
            );
        }
        answers.push((language, lines));
    }
    let (first, reference) = &answers[0];
    for (language, lines) in &answers[1..] {
        assert_eq!(
            lines, reference,
            "{language} answers differently from {first}"
        );
    }
    drop(servers);
    plugin_test_runs_each_language_outside_a_server(&built);
}

/// `tern plugin test` gives each language's build the same verdicts,
/// outside a server (docs/plugins.md shows this command per language).
fn plugin_test_runs_each_language_outside_a_server(built: &[(&'static str, PathBuf)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mail = dir.path().join("m.eml");
    std::fs::write(&mail, "From: lisa@outside.test\nSubject: hi\n\nHello.\n").expect("write");
    let blocked_rcpt = RECIPIENTS
        .iter()
        .find(|r| {
            BLOCKED.split(',').any(|b| {
                r.split('@')
                    .next()
                    .is_some_and(|l| l.eq_ignore_ascii_case(b))
            })
        })
        .expect("a blocked recipient");
    let runs: Vec<(&str, std::process::Output)> = std::thread::scope(|scope| {
        let running: Vec<_> = built
            .iter()
            .map(|(language, wasm)| {
                let mail = &mail;
                scope.spawn(move || {
                    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
                        .args(["plugin", "test"])
                        .arg(wasm)
                        .args(["--set", &format!("blocked={BLOCKED}"), "--mail"])
                        .arg(mail)
                        .args(["--to", "alice@example.test", "--to", blocked_rcpt])
                        .output()
                        .expect("run tern plugin test");
                    (*language, out)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for (language, out) in runs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{language}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("hooks: on-rcpt-to"), "{language}: {stdout}");
        assert!(
            stdout.contains(&format!(
                "refused: 550 5.1.1 <{blocked_rcpt}>: this address does not receive mail (blocked by policy)"
            )),
            "{language}: {stdout}"
        );
        assert!(
            stdout.contains("accepted for <alice@example.test>"),
            "{language}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("blocklist: reject {blocked_rcpt}")),
            "{language}: {stdout}"
        );
    }
}
