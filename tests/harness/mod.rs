//! The one integration-test harness: `Tern` runs the real `tern` binary on
//! ephemeral loopback ports in a private temporary folder (start, stop,
//! SIGKILL, restart on the same data, the CLI against it, its log), and
//! beside it the independent peers (`tern::testing::peers`: dnslib DNS,
//! aiosmtpd sink),
//! the clients (`clients.rs`: Python, swaks; `smtp.rs`: a raw-socket SMTP
//! client for byte-exact tests), readers of what came back (`text.rs`), and
//! real TLS peers with a test CA (`tls.rs`: SMTP next hops, HTTPS), and a
//! web mail server with its scripted browser (`webmail.rs`).
//! Nothing here sleeps and hopes: every wait polls a condition with a
//! generous bound. Every process started is killed when its guard drops.
#![allow(dead_code, unused_imports)]

mod accounts;
mod clients;
mod dkim;
pub mod dovecot;
pub mod engine;
mod load;
pub mod patroni;
mod smtp;
mod text;
pub mod tls;
mod webmail;

#[allow(unused_imports)]
pub use accounts::{SystemUser, owners};
#[allow(unused_imports)]
pub use clients::{
    PY_FILTER, PY_PRELUDE, PY_SIGHUP, output_within, python, python_json, python_output,
    python_with_prelude, swaks,
};
#[allow(unused_imports)]
pub use dkim::{dkim_generate, printed_record};
pub use dovecot::{Dovecot, hand_over};
pub use load::{Deliveries, FaultyHop, LoadSender, relay_under_load};
#[allow(unused_imports)]
pub use smtp::{Reply, Smtp};
pub use tern::testing::peers::{DnsServer, Sink, silent_server};
pub use tern::testing::{READY_BOUND, wait_for};
#[allow(unused_imports)]
pub use text::{added_headers, contains, header, queue_id, text};
pub use webmail::{browser_script, webmail_run, webmail_server};

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use tern::testing::reaper::{Watched, watch};

pub fn tern_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tern")
}

/// A running (or stopped) `tern serve` with its own config and data folder.
pub struct Tern {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    data_dir: PathBuf,
    /// The engine the config names (sled in `data_dir` without `[store]`).
    engine: tern::store::backend::EngineSettings,
    child: Option<Watched>,
    pub ports: HashMap<String, u16>,
    /// The loopback address the listeners bind (127.0.0.x).
    pub ip: String,
    /// How long a start may take.
    ready_bound: Duration,
}

impl Tern {
    /// Writes `config` (TOML, with `{ip}` replaced by 127.0.0.1) and starts
    /// the server.
    pub fn start(config: &str) -> Tern {
        Tern::start_on("127.0.0.1", config)
    }

    /// Writes `config` (TOML, with `{ip}` replaced by `ip`) and starts the server.
    pub fn start_on(ip: &str, config: &str) -> Tern {
        Tern::start_within(ip, config, READY_BOUND)
    }

    /// Like `start_on`, allowing `bound` for the server to come up (plugins
    /// of many megabytes take a while to compile at the first start).
    pub fn start_within(ip: &str, config: &str, bound: Duration) -> Tern {
        let mut t = Tern::new_on(ip, config);
        t.ready_bound = bound;
        t.spawn();
        t
    }

    /// Writes the config (`{ip}` → 127.0.0.1) into a fresh temporary folder
    /// without starting the server.
    pub fn new(config: &str) -> Tern {
        Tern::new_on("127.0.0.1", config)
    }

    /// Writes the config (`{ip}` → `ip`) without starting the server.
    pub fn new_on(ip: &str, config: &str) -> Tern {
        let dir = tempfile::Builder::new()
            .prefix("tern-test-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("tern.toml");
        let mut config = config.replace("{ip}", ip);
        if !config.contains("[store]")
            && let Some(section) = engine::store_section()
        {
            config.push_str(&section);
        }
        std::fs::write(&path, &config).expect("write config");
        let parsed = tern::config::Config::from_file(&path)
            .unwrap_or_else(|e| panic!("test config does not parse: {e}\n{config}"));
        Tern {
            data_dir: parsed.data_dir.clone(),
            engine: tern::store::backend::EngineSettings::from_config(&parsed),
            dir,
            config: path,
            child: None,
            ports: HashMap::new(),
            ip: ip.to_string(),
            ready_bound: READY_BOUND,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts `tern serve` (the first time after `new`, or again after
    /// `stop`) and waits until its listeners and control socket are up.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let listeners = self.data_dir.join("listeners");
        let _ = std::fs::remove_file(&listeners);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = Command::new(tern_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env("TERN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tern");
        self.child = Some(watch(child));
        // 1. The listeners file: written once every listener is bound.
        let text = wait_for("tern to listen", self.ready_bound, || {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                panic!("tern exited during start-up ({status}):\n{}", self.log());
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
        // 2. The control socket, so that `tern user …` reaches the running server.
        let sock = self.data_dir.join("control.sock");
        wait_for("the control socket", self.ready_bound, || {
            std::os::unix::net::UnixStream::connect(&sock).ok()
        });
    }

    /// The port of the listener of this protocol (the last, if several).
    pub fn port(&self, protocol: &str) -> u16 {
        *self
            .ports
            .get(protocol)
            .unwrap_or_else(|| panic!("no {protocol} listener in {:?}", self.ports))
    }

    /// The port as a command-line argument.
    pub fn port_arg(&self, protocol: &str) -> String {
        self.port(protocol).to_string()
    }

    /// `IP:PORT` of a listener.
    pub fn addr(&self, protocol: &str) -> String {
        format!("{}:{}", self.ip, self.port(protocol))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("tern.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs `tern ARGS --config …` with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(tern_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
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

    /// `tern ARGS --config …`, which must succeed; its standard output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args, "");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "tern {args:?} failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// The lines of `tern trace ID` about plugin `name` (`… plugin NAME: …`).
    pub fn plugin_trace(&self, id: &str, name: &str) -> Vec<String> {
        let needle = format!("plugin {name}: ");
        self.cli_ok(&["trace", id])
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }

    /// `tern trace --client IP --since 1h`: the last hour's traces of a
    /// client, refused attempts included.
    pub fn client_trace(&self, ip: &str) -> String {
        self.cli_ok(&["trace", "--client", ip, "--since", "1h"])
    }

    /// `tern user add ADDRESS --password-stdin`; panics unless it succeeds.
    pub fn add_user(&self, address: &str, password: &str) {
        let out = self.cli(
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

    /// SIGTERM, then waits for a clean exit (status 0). No-op when stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        child.terminate();
        // Past the bound the panic drops `child`, which kills it.
        let Some(status) = child.wait_within(READY_BOUND) else {
            panic!(
                "tern serve did not stop within {READY_BOUND:?} of SIGTERM:\n{}",
                self.log()
            );
        };
        assert!(
            status.success(),
            "tern serve exited with {status} after SIGTERM:\n{}",
            self.log()
        );
    }

    /// The running server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal (`HUP`, `TERM` …) to the running server and returns
    /// at once (the caller may still talk to it).
    pub fn signal(&self, signal: &str) {
        if let Some(c) = self.child.as_ref() {
            kill(c.id(), signal);
        }
    }

    /// SIGKILL, no goodbye: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        // A `Watched` dropped while it runs is killed and reaped.
        drop(self.child.take());
    }

    /// SIGKILL, then start again on the same config and data.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Rewrites the config so every listener keeps the port it got, so a
    /// restart comes back on the same addresses (port-0 listeners are
    /// replaced in order, matching the `listeners` file).
    pub fn pin_ports(&self) {
        let listeners =
            std::fs::read_to_string(self.data_dir.join("listeners")).expect("listeners");
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

    /// Waits until every queued message has left the queue (delivered or
    /// bounced), failing the test after `bound` with the queue as it is.
    pub fn wait_queue_empty(&self, bound: Duration) {
        let start = Instant::now();
        while !self.queue_list().contains("Mail queue is empty") {
            assert!(
                start.elapsed() < bound,
                "queue not empty after {bound:?}:\n{}",
                self.queue_list()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
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

    /// Stops the server (if running) and returns every message in the
    /// user's INBOX, full bytes as stored (with the headers Tern added).
    pub fn mailbox(&mut self, user: &str) -> Vec<Vec<u8>> {
        self.stop();
        block_on(async {
            let store = self.open_store().await;
            let metas = store.messages(user, "INBOX").await.expect("list messages");
            let mut out = Vec::with_capacity(metas.len());
            for m in &metas {
                out.push(store.read_blob(m.blob).await.expect("read blob"));
            }
            out
        })
    }
}

impl Tern {
    /// Opens the stopped server's store. sled's I/O threads let go of its
    /// file lock a little after the last handle drops (an earlier
    /// `mailbox` call's, say), so a `Locked` answer is waited out, up to
    /// the harness's bound.
    pub async fn open_store(&self) -> tern::store::Store {
        let deadline = Instant::now() + READY_BOUND;
        loop {
            let opened = match tern::store::backend::Backend::open(&self.engine).await {
                Ok(backend) => tern::store::Store::on(backend).await,
                Err(e) => Err(e.into()),
            };
            match opened {
                Ok(store) => return store,
                Err(tern::store::StoreError::Locked(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("open store: {e}"),
            }
        }
    }
}

/// Runs store calls from a (synchronous) test.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(future)
}

impl Drop for Tern {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "----- tern log ({}) -----\n{}",
                self.config.display(),
                self.log()
            );
        }
    }
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

/// The base of the SMTP suites' configs: smtp, submission and submissions
/// listeners on 127.0.0.1 port 0 for `mx.example.test`.
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

/// `BASE_CONFIG` plus `extra`, which comes after the `[[listen]]` tables
/// and so must consist of tables (`[limits]`, `[aliases]`, …).
pub fn smtp_config(extra: &str) -> String {
    format!("{BASE_CONFIG}\n{extra}\n")
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

/// One `[[plugin]]` entry: `name`, the component at `path`, its `timeout`
/// and `config` (the inside of its config table).
pub fn plugin_entry(name: &str, path: &str, timeout: &str, config: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{path}\"\ntimeout = \"{timeout}\"\nconfig = {{ {config} }}\n"
    )
}

/// `tern check-config` on a config whose one `[[plugin]]` entry loads
/// `wasm`, its entry ending in `entry` (grants, say); in `dir`.
pub fn check_plugin_config(dir: &std::path::Path, wasm: &str, entry: &str) -> Output {
    let cfg = dir.join("tern.toml");
    let text = config(
        "mx.example.test",
        "example.test",
        &format!("[[plugin]]\nname = \"probe\"\npath = \"{wasm}\"\n{entry}"),
    )
    .replace("{ip}", "127.0.0.1");
    std::fs::write(&cfg, text).expect("config");
    Command::new(tern_bin())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .expect("tern")
}

/// Runs `tern serve` on the `tern.toml` `check_plugin_config` wrote in
/// `dir`, which must refuse to start: what it said (stdout and stderr).
pub fn serve_refuses(dir: &std::path::Path) -> String {
    let out = Command::new(tern_bin())
        .args(["serve", "--config"])
        .arg(dir.join("tern.toml"))
        .current_dir(dir)
        .output()
        .expect("tern");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "tern serve started: {said}");
    said
}

/// Checks a line the Python probes print (`<rcpt> <reply> in <secs>s`) for
/// a plugin call cut off by its timeout (the `on_error` tempfail): the
/// peer would hold it forever, so the bound is far above any timeout the
/// suites set (a loaded machine cannot fail it) and far below a hang.
pub fn cut_off_by_timeout(line: &str, out: &str) {
    assert!(line.contains(" 451 4.7.1 Temporary local problem"), "{out}");
    let secs: f64 = line
        .rsplit_once(" in ")
        .and_then(|(_, t)| t.trim_end_matches('s').parse().ok())
        .expect("time");
    assert!(secs < 30.0, "took {secs}s: {out}");
}
