//! Hostile plugins never take the server down: an endless loop gets the
//! client a 451 within twice the timeout while another client's session
//! completes; unbounded allocation and a trap fail only that call (per
//! `on_error`); a forged success code is clamped; a component importing
//! what Tern does not give, and a file that is not a component, are
//! refused at load with an error naming the file. Also `tern plugin list`
//! and `tern plugin inspect`.

mod harness;
use harness::{Tern, check_plugin_config, config, python, serve_refuses, tern_bin};
use std::process::Command;

const PY: &str = r#"
import smtplib, socket, sys, threading, time
def session(port):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("client.test")
    assert s.mail("lisa@outside.test")[0] == 250
    return s
"#;

fn hostile(on_error: &str, timeout: &str, extra: &str) -> String {
    format!(
        "[[plugin]]\nname = \"hostile\"\npath = \"{}\"\ntimeout = \"{timeout}\"\nmax_memory = \"16MiB\"\non_error = \"{on_error}\"\n{extra}\n",
        test_plugins::HOSTILE
    )
}

fn server(plugins: &str) -> Tern {
    let t = Tern::start(&config("mx.example.test", "example.test", plugins));
    for u in ["bob", "loop", "alloc", "trap", "bad"] {
        t.add_user(&format!("{u}@example.test"), "pw");
    }
    t
}

#[test]
fn endless_loop_tempfails_in_time_while_another_session_completes() {
    let t = server(&hostile("tempfail", "1s", ""));
    let out = python(
        &format!(
            "{PY}\nSMTP={}\n{}",
            t.port("smtp"),
            r#"
results = {}
started = threading.Event()
def looping():
    s = session(SMTP)
    started.set()
    t0 = time.monotonic()
    code, msg = s.rcpt("loop@example.test")
    results["loop"] = (code, msg.decode(), time.monotonic() - t0)
    # The session goes on with a fresh instance.
    results["after"] = s.rcpt("bob@example.test")[0]
    s.quit()
def normal():
    started.wait(60)
    s = session(SMTP)
    assert s.rcpt("bob@example.test")[0] == 250
    code, msg = s.data(b"Subject: meanwhile\r\n\r\nhello\r\n")
    results["normal"] = code
    s.quit()
a = threading.Thread(target=looping); b = threading.Thread(target=normal)
a.start(); b.start(); a.join(120); b.join(120)
code, msg, took = results["loop"]
assert code == 451 and msg.startswith("4.7.1 "), (code, msg)
assert took < 2.0, ("not within twice the timeout", took)
assert results["after"] == 250, results
assert results["normal"] == 250, results
print("ok")
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok");
    let log = t.log();
    assert!(
        log.contains("plugin failed: timed out") && log.contains("hostile"),
        "{log}"
    );
}

#[test]
fn allocation_trap_and_forged_codes_fail_only_that_call() {
    let t = server(&hostile("reject", "5s", ""));
    let out = python(
        &format!(
            "{PY}\nSMTP={}\n{}",
            t.port("smtp"),
            r#"
s = session(SMTP)
code, msg = s.rcpt("alloc@example.test")
assert code == 550 and msg.startswith(b"5.7.1 "), (code, msg)
code, msg = s.rcpt("trap@example.test")
assert code == 550 and msg.startswith(b"5.7.1 "), (code, msg)
code, msg = s.rcpt("bad@example.test")
assert code == 550 and msg == b"5.7.1 this is not a refusal", (code, msg)
assert s.rcpt("bob@example.test")[0] == 250
assert s.data(b"Subject: still here\r\n\r\nx\r\n")[0] == 250
s.quit()
print("ok")
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok");
    let log = t.log();
    assert!(
        log.contains("hostile") && log.contains("plugin failed: trapped"),
        "{log}"
    );
    assert!(
        log.contains("memory"),
        "the allocation failure is named: {log}"
    );
    assert!(
        log.contains("plugin output: ") && log.contains("deliberate trap"),
        "the guest's panic message is logged: {log}"
    );
}

#[test]
fn on_error_continue_lets_mail_through() {
    let t = server(&hostile("continue", "300ms", ""));
    let out = python(
        &format!(
            "{PY}\nSMTP={}\n{}",
            t.port("smtp"),
            r#"
s = session(SMTP)
for who in ("trap", "loop", "alloc"):
    code, msg = s.rcpt(who + "@example.test")
    assert code == 250, (who, code, msg)
s.quit()
print("ok")
"#
        ),
        &[],
    );
    assert_eq!(out.trim(), "ok");
}

fn check_config(dir: &std::path::Path, plugin_path: &str) -> std::process::Output {
    check_plugin_config(dir, plugin_path, "")
}

#[test]
fn refused_at_load_unknown_import_and_not_a_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An import Tern does not give: refused, naming the import.
    let out = check_config(dir.path(), test_plugins::BAD_IMPORT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("tern: ")).collect();
    assert_eq!(errors.len(), 1, "one clear line: {err}");
    assert!(
        errors[0].contains("bad_import.wasm") && errors[0].contains("evil:net/socket"),
        "{err}"
    );

    // Not a component: text, and a core module.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"this is not wasm").expect("junk");
    let out = check_config(dir.path(), &junk.display().to_string());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&junk.display().to_string()) && err.contains("not a WebAssembly component"),
        "{err}"
    );
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("core");
    let out = check_config(dir.path(), &core.display().to_string());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("core.wasm") && err.contains("core WebAssembly module, not a component"),
        "{err}"
    );

    // A missing file.
    let out = check_config(dir.path(), "/nonexistent/plugin.wasm");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/plugin.wasm"));

    // `tern serve` refuses to start with it.
    assert!(serve_refuses(dir.path()).contains("/nonexistent/plugin.wasm"));

    // A good one passes.
    let out = check_config(dir.path(), test_plugins::NO_NOBODY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 plugin(s)"));
}

#[test]
fn plugin_list_and_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("tern.toml");
    let plugins = format!(
        "[[plugin]]\nname = \"no-nobody\"\npath = \"{}\"\n[[plugin]]\nname = \"tagger\"\npath = \"{}\"\ntimeout = \"150ms\"\non_error = \"continue\"\n",
        test_plugins::NO_NOBODY,
        test_plugins::ADD_HEADER
    );
    std::fs::write(
        &cfg,
        config("mx.example.test", "example.test", &plugins).replace("{ip}", "127.0.0.1"),
    )
    .expect("config");
    let out = Command::new(tern_bin())
        .args(["plugin", "list", "--config"])
        .arg(&cfg)
        .output()
        .expect("tern");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("no-nobody\t") && lines[0].contains("hooks: policy"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("tagger\t")
            && lines[1].contains("hooks: filter")
            && lines[1].contains("Continue"),
        "{text}"
    );

    let out = Command::new(tern_bin())
        .args(["plugin", "inspect", test_plugins::GREYLIST])
        .output()
        .expect("tern");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hooks: policy"), "{text}");
    assert!(text.contains("tern:plugin/kv@0.1.0"), "{text}");
    assert!(text.contains("tern:plugin/policy@0.1.0"), "{text}");

    let out = Command::new(tern_bin())
        .args(["plugin", "inspect", test_plugins::BAD_IMPORT])
        .output()
        .expect("tern");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("evil:net/socket"));
}
