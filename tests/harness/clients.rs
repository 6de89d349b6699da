//! The independent clients the suites drive the server with: Python
//! scripts (plain, or with `PY_PRELUDE`'s SMTP helpers and one JSON line
//! of result), Debian's swaks, and a bounded run of any command.

use super::text::text;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a Python script with arguments; panics with its output if it fails.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like `python` but returns the output whatever the exit status.
pub fn python_output(script: &str, args: &[&str]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3")
}

/// Imports and helpers every Python script gets. `sys.argv[1]` is the port.
pub const PY_PRELUDE: &str = r#"
import sys, ssl, smtplib, socket, json, base64, time
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 0
def out(**kw):
    print(json.dumps(kw))
def r(pair):
    code, msg = pair
    return [code, msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)]
def read_reply(f):
    """One SMTP reply from a file object: [code, [lines]], or None at EOF."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            return None
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(line[4:])
        if len(line) < 4 or line[3] != "-":
            return [int(line[:3]), lines]
"#;

/// For filter suites: `SMTP`, `IMAP` ports from argv 1 and 2;
/// `send(message)` (bytes or an EmailMessage) from lisa@outside.test to
/// bob@example.test → `(250, "")` or the refusal's `(code, text)`;
/// `folder(name)` → the header sections of bob's messages in that folder.
pub const PY_FILTER: &str = r#"
import imaplib, smtplib, sys
SMTP, IMAP = int(sys.argv[1]), int(sys.argv[2])
def send(m):
    data = m if isinstance(m, (bytes, str)) else m.as_bytes()
    s = smtplib.SMTP("127.0.0.1", SMTP, timeout=90)
    try:
        s.ehlo("mail.outside.test")
        s.sendmail("lisa@outside.test", ["bob@example.test"], data)
        return 250, ""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode()
    finally:
        s.close()
def folder(name):
    i = imaplib.IMAP4("127.0.0.1", IMAP)
    i.login("bob@example.test", "pw")
    typ, data = i.select(name)
    assert typ == "OK", (typ, data)
    typ, data = i.search(None, "ALL")
    out = []
    for n in data[0].split():
        typ, got = i.fetch(n, "(BODY[HEADER])")
        out.append(got[0][1].decode())
    i.logout()
    return out
"#;

/// For reload tests: `sighup(pid, log, marker)` sends the server SIGHUP and
/// waits (bounded) until `marker` appears once more in its log.
pub const PY_SIGHUP: &str = r#"
import os, signal, time
def sighup(pid, log, marker):
    before = open(log).read().count(marker)
    os.kill(pid, signal.SIGHUP)
    deadline = time.time() + 60
    while open(log).read().count(marker) == before:
        assert time.time() < deadline, f"no {marker!r} in the log after SIGHUP"
        time.sleep(0.05)
"#;

/// Runs `python3 -c PY_PRELUDE+script args…`, whatever its exit status.
pub fn python_with_prelude(script: &str, args: &[&str]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(format!("{PY_PRELUDE}\n{script}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3")
}

/// Runs a Python script that must succeed and print one JSON line at the end.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let out = python_with_prelude(script, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("python printed nothing"));
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("python output is not JSON ({e}): {stdout}"))
}

/// Runs `swaks ARGS` (Debian's swaks).
pub fn swaks(args: &[&str]) -> Output {
    Command::new("swaks")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run swaks")
}

/// Runs a command to its end, but kills it (and panics) if it takes longer
/// than `limit`: for commands that would run forever if the code under test
/// were wrong (`tern serve` on a config it should refuse).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "command still running after {limit:?}; killed. stderr:\n{}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}
