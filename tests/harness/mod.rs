//! Test harness for the POP3, relay and address-check suites: runs the real
//! `tern` binary on ephemeral loopback ports in its own temporary folder,
//! manages accounts through the CLI, runs independent clients (Python), and
//! serves a test DNS zone with dnslib. Every process started here is killed
//! when its guard drops.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long anything may take to come up before the test fails.
pub const READY_BOUND: Duration = Duration::from_secs(60);

pub fn tern_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tern")
}

/// Polls `check` until it returns Some, failing the test after `bound`.
pub fn wait_for<T>(what: &str, bound: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < bound, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running (or stopped) `tern serve` with its own folder.
pub struct Tern {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    child: Option<Child>,
    pub ports: HashMap<String, u16>,
    /// The loopback address the listeners bind (127.0.0.x).
    pub ip: String,
    /// How long a start may take.
    ready_bound: Duration,
}

impl Tern {
    /// Writes `config` (TOML, with `{ip}` replaced by `ip`) and starts the server.
    pub fn start_on(ip: &str, config: &str) -> Tern {
        Tern::start_within(ip, config, READY_BOUND)
    }

    /// Like `start_on`, allowing `bound` for the server to come up (plugins
    /// of many megabytes take a while to compile at the first start).
    pub fn start_within(ip: &str, config: &str, bound: Duration) -> Tern {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tern.toml");
        std::fs::write(&path, config.replace("{ip}", ip)).expect("write config");
        let mut t = Tern {
            dir,
            config: path,
            child: None,
            ports: HashMap::new(),
            ip: ip.to_string(),
            ready_bound: bound,
        };
        t.launch();
        t
    }

    pub fn start(config: &str) -> Tern {
        Tern::start_on("127.0.0.1", config)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn launch(&mut self) {
        let listeners = self.data_dir().join("listeners");
        let _ = std::fs::remove_file(&listeners);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tern.log"))
            .expect("log file");
        let child = Command::new(tern_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("TERN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tern");
        self.child = Some(child);
        let text = wait_for("tern to listen", self.ready_bound, || {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("tern exited early ({status}): {}", self.log());
            }
            std::fs::read_to_string(&listeners)
                .ok()
                .filter(|t| t.ends_with('\n'))
        });
        self.ports = text
            .lines()
            .filter_map(|l| {
                let (proto, addr) = l.split_once(' ')?;
                let port = addr.rsplit_once(':')?.1.parse().ok()?;
                Some((proto.to_string(), port))
            })
            .collect();
    }

    pub fn port(&self, protocol: &str) -> u16 {
        *self
            .ports
            .get(protocol)
            .unwrap_or_else(|| panic!("no {protocol} listener"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tern.log")).unwrap_or_default()
    }

    /// Runs `tern ARGS --config …` with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(tern_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tern");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("tern output")
    }

    pub fn add_user(&self, address: &str, password: &str) {
        let out = self.cli(
            &["user", "add", address, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id(), "TERM");
            let status = wait_for("tern to stop", READY_BOUND, || c.try_wait().ok().flatten());
            assert!(
                status.success(),
                "tern exited with {status}: {}",
                self.log()
            );
        }
    }

    /// The running server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal (`HUP`, `TERM` …) to the running server.
    pub fn signal(&self, signal: &str) {
        if let Some(c) = self.child.as_ref() {
            unsafe_kill(c.id(), signal);
        }
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    /// Starts again after `stop`.
    pub fn resume(&mut self) {
        assert!(self.child.is_none());
        self.launch();
    }

    /// Rewrites the config so every listener keeps the port it got, so a
    /// restart comes back on the same addresses (port-0 listeners are
    /// replaced in order, matching the `listeners` file).
    pub fn pin_ports(&self) {
        let listeners =
            std::fs::read_to_string(self.data_dir().join("listeners")).expect("listeners");
        let mut text = std::fs::read_to_string(&self.config).expect("config");
        let wildcard = format!("\"{}:0\"", self.ip);
        for line in listeners.lines() {
            let addr = line.split_once(' ').map(|(_, a)| a).unwrap_or("");
            if let Some(pos) = text.find(&wildcard) {
                text.replace_range(pos..pos + wildcard.len(), &format!("\"{addr}\""));
            }
        }
        std::fs::write(&self.config, text).expect("config");
    }

    /// `tern queue list` output.
    pub fn queue_list(&self) -> String {
        let out = self.cli(&["queue", "list"], "");
        assert!(
            out.status.success(),
            "queue list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

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

/// A dnslib server answering from a JSON zone that tests may rewrite.
pub struct DnsServer {
    child: Child,
    pub port: u16,
    zone: PathBuf,
    _dir: tempfile::TempDir,
}

impl DnsServer {
    pub fn start(zone: &serde_json::Value) -> DnsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let zone_path = dir.path().join("zone.json");
        std::fs::write(&zone_path, zone.to_string()).expect("zone");
        let port_file = dir.path().join("port");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dns_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&zone_path)
            .arg(&port_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("start dns server");
        let port = wait_for("the DNS server", READY_BOUND, || {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("dns server exited: {s} (is dnslib installed? scripts/install-test-deps)");
            }
            std::fs::read_to_string(&port_file)
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        DnsServer {
            child,
            port,
            zone: zone_path,
            _dir: dir,
        }
    }

    pub fn set_zone(&self, zone: &serde_json::Value) {
        std::fs::write(&self.zone, zone.to_string()).expect("zone");
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal config for one server: smtp, submission and pop3 listeners on
/// `{ip}` port 0, plain-text auth allowed (loopback tests), plus `extra`.
/// Unless `extra` has an `[auth]` table, the SPF/DKIM/DMARC checks are off
/// (`[auth] verify = false`): suites about other things have no DNS for them.
pub fn config(hostname: &str, domain: &str, extra: &str) -> String {
    let extra = if extra.contains("[auth]") {
        extra.to_string()
    } else {
        format!("{extra}\n[auth]\nverify = false\n")
    };
    format!(
        r#"hostname = "{hostname}"
local_domains = ["{domain}"]
data_dir = "data"

[[listen]]
protocol = "smtp"
address = "{{ip}}:0"
[[listen]]
protocol = "submission"
address = "{{ip}}:0"
[[listen]]
protocol = "pop3"
address = "{{ip}}:0"
[[listen]]
protocol = "pop3s"
address = "{{ip}}:0"

{extra}
"#
    )
}
