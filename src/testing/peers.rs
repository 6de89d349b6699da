//! The independent peers a suite (or a benchmark) runs beside the server:
//! a dnslib DNS server answering from a JSON zone the test may rewrite
//! (`tests/fixtures/dns_server.py`), and an aiosmtpd sink standing in for
//! the next hop (`tests/fixtures/smtp_sink.py`, which writes each message
//! as `N.eml` with its envelope in `N.json`). Each is a Python process that
//! writes its port to a file when it listens; it is killed when its guard
//! drops (or, if the test process is killed, by `reaper`'s guardian).

use super::reaper::{Watched, watch};
use super::{READY_BOUND, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Starts `cmd` (a Python peer) and waits for the port it writes to
/// `port_file`; `what` names it in failures.
pub fn start_python_peer(mut cmd: Command, port_file: &Path, what: &str) -> (Watched, u16) {
    let mut child = watch(cmd.stdout(Stdio::null()).spawn().expect("start python3"));
    let port = wait_for(what, READY_BOUND, || {
        if let Ok(Some(s)) = child.try_wait() {
            panic!(
                "{what} exited: {s} (are the Python modules installed? scripts/install-test-deps)"
            );
        }
        std::fs::read_to_string(port_file).ok()?.trim().parse().ok()
    });
    (child, port)
}

/// A file of `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A dnslib server answering from a JSON zone that tests may rewrite.
pub struct DnsServer {
    /// Killed when dropped.
    _child: Watched,
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
        let mut cmd = Command::new("python3");
        cmd.arg(fixture("dns_server.py"))
            .arg(&zone_path)
            .arg(&port_file);
        let (child, port) = start_python_peer(cmd, &port_file, "the DNS server (dnslib)");
        DnsServer {
            _child: child,
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

    /// Every question asked so far, as "name TYPE", in order.
    pub fn queries(&self) -> Vec<String> {
        let mut path = self.zone.clone().into_os_string();
        path.push(".queries");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The aiosmtpd sink standing in for a smarthost or the next hop.
pub struct Sink {
    /// Killed when dropped.
    _child: Watched,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    pub fn start() -> Sink {
        let dir = tempfile::tempdir().expect("tempdir");
        let port_file = dir.path().join("port");
        std::fs::create_dir(dir.path().join("mail")).expect("mail dir");
        let mut cmd = Command::new("python3");
        cmd.arg(fixture("smtp_sink.py"))
            .arg(&port_file)
            .arg(dir.path().join("mail"));
        let (child, port) = start_python_peer(cmd, &port_file, "the SMTP sink (aiosmtpd)");
        Sink {
            _child: child,
            port,
            dir,
        }
    }

    /// The folder the sink writes `N.eml` and `N.json` into.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// `(envelope recipients, message)` of each message received so far.
    pub fn received(&self) -> Vec<(Vec<String>, String)> {
        let mail = self.mail_dir();
        let mut out = Vec::new();
        for n in 1.. {
            let Ok(eml) = std::fs::read_to_string(mail.join(format!("{n}.eml"))) else {
                break;
            };
            let json = std::fs::read_to_string(mail.join(format!("{n}.json"))).expect("json");
            let env: serde_json::Value = serde_json::from_str(&json).expect("envelope");
            let to = env["to"]
                .as_array()
                .expect("to")
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect();
            out.push((to, eml));
        }
        out
    }
}

/// A loopback TCP server that accepts connections and never says
/// anything (for deadlines); its thread holds them until the test ends.
pub fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}
