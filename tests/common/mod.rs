//! Shared helpers for the integration tests: `TernServer` runs the real
//! `tern` binary on ephemeral loopback ports in a private temporary folder;
//! `Smtp` is a minimal raw-socket SMTP client (for byte-exact tests such as
//! pipelining, BDAT and smuggling); `python`/`swaks` run the independent
//! clients. Nothing here sleeps and hopes: every wait polls a condition with
//! a generous bound.

#![allow(dead_code)]

use std::io::Write;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for the integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_tern");

/// Upper bound for anything that should take milliseconds (start, stop, a reply).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The base of every config `TernServer::start` writes.
pub const BASE_CONFIG: &str = r#"hostname = "mx.example.test"
data_dir = "data"
local_domains = ["example.test"]

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

/// A running (or stopped) `tern serve` with its own config and data folder.
pub struct TernServer {
    dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    listeners: Vec<(String, u16)>,
}

impl TernServer {
    /// Starts a server on `BASE_CONFIG` plus `extra_toml`, which is appended
    /// after the `[[listen]]` tables and so must consist of tables
    /// (`[limits]`, `[aliases]`, …).
    pub fn start(extra_toml: &str) -> TernServer {
        TernServer::start_config(&format!("{BASE_CONFIG}\n{extra_toml}\n"))
    }

    /// Starts a server on exactly this config text.
    pub fn start_config(config: &str) -> TernServer {
        let mut s = TernServer::new(config);
        s.spawn();
        s
    }

    /// Writes the config into a fresh temporary folder without starting.
    pub fn new(config: &str) -> TernServer {
        let dir = tempfile::Builder::new()
            .prefix("tern-test-")
            .tempdir()
            .expect("tempdir");
        let config_path = dir.path().join("tern.toml");
        std::fs::write(&config_path, config).expect("write config");
        let parsed = tern::config::Config::from_file(&config_path)
            .unwrap_or_else(|e| panic!("test config does not parse: {e}\n{config}"));
        let data_dir = parsed.data_dir.clone();
        let log_path = dir.path().join("tern.log");
        TernServer {
            dir,
            config_path,
            data_dir,
            log_path,
            child: None,
            listeners: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts `tern serve` and waits until its listeners and control socket are up.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let listeners_file = self.data_dir.join("listeners");
        let _ = std::fs::remove_file(&listeners_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env("TERN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn tern serve");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        // 1. The listeners file: written once every listener is bound.
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "tern serve exited during start-up ({status}):\n{}",
                    self.log()
                );
            }
            if let Ok(text) = std::fs::read_to_string(&listeners_file)
                && text.ends_with('\n')
            {
                self.listeners = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| {
                        let (proto, addr) = l
                            .split_once(' ')
                            .unwrap_or_else(|| panic!("bad listeners line {l:?}"));
                        let port = addr
                            .rsplit_once(':')
                            .and_then(|(_, p)| p.parse().ok())
                            .unwrap_or_else(|| panic!("bad address in {l:?}"));
                        (proto.to_string(), port)
                    })
                    .collect();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no listeners file after {PATIENCE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // 2. The control socket, so that `tern user …` reaches the running server.
        let sock = self.data_dir.join("control.sock");
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "control socket not ready after {PATIENCE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The port of the first listener of this protocol.
    pub fn port(&self, protocol: &str) -> u16 {
        self.listeners
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, port)| *port)
            .unwrap_or_else(|| panic!("no {protocol} listener in {:?}", self.listeners))
    }

    pub fn port_arg(&self, protocol: &str) -> String {
        self.port(protocol).to_string()
    }

    /// `127.0.0.1:PORT` of a listener.
    pub fn addr(&self, protocol: &str) -> String {
        format!("127.0.0.1:{}", self.port(protocol))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs `tern ARGS --config FILE`, feeding `stdin`.
    pub fn tern(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tern");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("tern output")
    }

    /// `tern user add ADDRESS --password-stdin`; panics unless it succeeds.
    pub fn add_user(&self, address: &str, password: &str) {
        let out = self.tern(
            &["user", "add", address, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "tern user add {address} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "tern serve did not stop within 60 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits for a clean exit (status 0). No-op when stopped.
    pub fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        self.signal(libc::SIGTERM);
        let status = self.wait_exit();
        assert!(
            status.success(),
            "tern serve exited with {status} after SIGTERM:\n{}",
            self.log()
        );
    }

    /// Sends SIGTERM and returns at once (the caller may still talk to it).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same config and data folder.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stops the server (if running) and returns every message in the
    /// user's INBOX, full bytes as stored (with the headers Tern added).
    pub fn mailbox(&mut self, user: &str) -> Vec<Vec<u8>> {
        self.stop();
        let store = tern::store::Store::open(&self.data_dir).expect("open store");
        let metas = store.messages(user, "INBOX").expect("list messages");
        metas
            .iter()
            .map(|m| store.read_blob(m.blob).expect("read blob"))
            .collect()
    }
}

impl Drop for TernServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- tern log ({}) -----\n{}",
                self.config_path.display(),
                self.log()
            );
        }
    }
}

// ---------------------------------------------------------------- clients

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

/// Runs `python3 -c PRELUDE+script args…`.
pub fn python(script: &str, args: &[&str]) -> Output {
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
    let out = python(script, args);
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

/// The queue id in `250 2.0.0 Ok: queued as ID`.
#[track_caller]
pub fn queue_id(reply_text: &str) -> String {
    let (_, id) = reply_text
        .split_once("queued as ")
        .unwrap_or_else(|| panic!("no queue id in {reply_text:?}"));
    id.split_whitespace().next().expect("queue id").to_string()
}

/// Asserts that `stored` is `sent` with header lines prepended, and returns
/// those added header lines.
#[track_caller]
pub fn added_headers(stored: &[u8], sent: &[u8]) -> String {
    assert!(
        stored.ends_with(sent),
        "stored message does not end with the bytes sent.\nsent:   {:?}\nstored: {:?}",
        String::from_utf8_lossy(sent),
        String::from_utf8_lossy(stored)
    );
    let prefix = &stored[..stored.len() - sent.len()];
    let text = String::from_utf8(prefix.to_vec()).expect("added headers are UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "added headers do not end a line: {text:?}"
    );
    text
}

/// Does `haystack` contain `needle`?
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A header field's unfolded value from a header block, case-insensitive.
pub fn header(headers: &str, name: &str) -> Option<String> {
    let mut lines = headers.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            let mut value = v.trim().to_string();
            while let Some(next) = lines.peek() {
                if next.starts_with([' ', '\t']) {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                } else {
                    break;
                }
            }
            return Some(value);
        }
    }
    None
}

/// Output bytes as text, for messages and asserts.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

mod smtp;
#[allow(unused_imports)]
pub use smtp::{Reply, Smtp};
