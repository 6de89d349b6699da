//! Mail under load and faults: the misbehaving (or good) next hop
//! `fixtures/faulty_smtp.py` that stores what it accepts, the sender
//! `fixtures/load_sender.py` that keeps sending and records every
//! acknowledged Message-ID (and every refusal), and the tally that says
//! whether anything acknowledged was lost.

use super::{READY_BOUND, wait_for};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tern::testing::peers::{fixture, start_python_peer};
use tern::testing::reaper::{Watched, watch};

/// The next hop `faulty_smtp.py` in a mode ("good", "reset", …) with a
/// number of faults before it behaves; killed on drop.
pub struct FaultyHop {
    child: Watched,
    pub port: u16,
    out: tempfile::TempDir,
}

impl FaultyHop {
    pub fn start(mode: &str, faults: u32) -> FaultyHop {
        let out = tempfile::tempdir().expect("tempdir");
        let port_file = out.path().join("port");
        let mut cmd = Command::new("python3");
        cmd.arg(fixture("faulty_smtp.py"))
            .args([mode, &faults.to_string()])
            .arg(&port_file)
            .arg(out.path());
        let (child, port) = start_python_peer(cmd, &port_file, "the faulty hop");
        FaultyHop { child, port, out }
    }

    /// Messages stored by the good connections, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .expect("out dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("eml")).into_owned())
            .collect()
    }

    /// The most mail transactions it saw at once.
    pub fn max_transactions(&self) -> usize {
        std::fs::read_to_string(self.out.path().join("max_transactions"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Faults it has played so far.
    pub fn faults(&self) -> usize {
        std::fs::read_to_string(self.out.path().join("faults.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// What arrived, by the Message-ID of each message (bounces by the
    /// Message-ID of the message they return).
    pub fn tally(&self) -> Deliveries {
        let mut d = Deliveries::default();
        for text in self.messages() {
            if text.contains("MAILER-DAEMON@") {
                // A bounce: the original's Message-ID is in its attached headers.
                let original = text.split("text/rfc822-headers").nth(1).unwrap_or("");
                if let Some(id) = message_id(original) {
                    d.bounced.insert(id);
                }
            } else if let Some(id) = message_id(&text) {
                *d.delivered.entry(id).or_insert(0) += 1;
            }
        }
        d
    }
}

fn message_id(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .map(|l| l[11..].trim().to_string())
}

/// Copies received per Message-ID, and the bounced ones.
#[derive(Default)]
pub struct Deliveries {
    pub delivered: HashMap<String, usize>,
    pub bounced: HashSet<String>,
}

impl Deliveries {
    /// Acknowledged ids neither delivered nor bounced.
    pub fn lost<'a>(&self, acked: &'a HashSet<String>) -> Vec<&'a String> {
        acked
            .iter()
            .filter(|id| !self.delivered.contains_key(*id) && !self.bounced.contains(*id))
            .collect()
    }

    /// One line of figures for the test's output (and the closing note).
    pub fn summary(&self, acked: &HashSet<String>) -> String {
        let extra: usize = self.delivered.values().map(|n| n.saturating_sub(1)).sum();
        format!(
            "acknowledged {}, delivered {}, bounced {}, lost {}, duplicated {} ({extra} extra copies), \
delivered without acknowledgement {}",
            acked.len(),
            self.delivered
                .keys()
                .filter(|id| acked.contains(*id))
                .count(),
            self.bounced.len(),
            self.lost(acked).len(),
            self.delivered.values().filter(|n| **n > 1).count(),
            self.delivered
                .keys()
                .filter(|id| !acked.contains(*id))
                .count(),
        )
    }
}

/// The config of a server under load that relays everything from
/// loopback to the next hop on `hop_port` and retries every second, plus
/// `extra` (more `[queue]` keys first, then tables such as `[store]`).
pub fn relay_under_load(hop_port: u16, extra: &str) -> String {
    super::config(
        "mx.example.test",
        "example.test",
        &format!(
            "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nsmarthost = \"127.0.0.1:{hop_port}\"\n\
[queue]\nretry_intervals = [\"1s\"]\nreply_timeout = \"5s\"\n{extra}"
        ),
    )
}

/// `load_sender.py`: THREADS senders through PORT until stopped.
pub struct LoadSender {
    child: Option<Watched>,
    work: tempfile::TempDir,
}

impl LoadSender {
    pub fn start(port: u16, threads: u32) -> LoadSender {
        LoadSender::start_on("127.0.0.1", port, threads)
    }

    /// `start` against a server listening on `host` (Message-IDs then
    /// name the host, so senders to several servers never share one).
    pub fn start_on(host: &str, port: u16, threads: u32) -> LoadSender {
        let work = tempfile::tempdir().expect("tempdir");
        let child = Command::new("python3")
            .arg(fixture("load_sender.py"))
            .arg(port.to_string())
            .arg(work.path().join("acked"))
            .arg(work.path().join("stop"))
            .arg(threads.to_string())
            .arg(work.path().join("refused"))
            .arg(host)
            .arg(work.path().join("slowest"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("sender");
        LoadSender {
            child: Some(watch(child)),
            work,
        }
    }

    fn lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.work.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Message-IDs acknowledged with 250 so far.
    pub fn acked(&self) -> HashSet<String> {
        self.lines("acked").into_iter().collect()
    }

    /// Each refusal so far: a reply code, or "error: …" (reset, timeout).
    pub fn refusals(&self) -> Vec<String> {
        self.lines("refused")
    }

    /// The longest attempt so far, from connecting to QUIT or to the
    /// refusal.
    pub fn slowest_attempt(&self) -> std::time::Duration {
        let seconds: f64 = self
            .lines("slowest")
            .first()
            .and_then(|l| l.parse().ok())
            .unwrap_or(0.0);
        std::time::Duration::from_secs_f64(seconds)
    }

    /// Stops the threads and returns the sender's own count line.
    pub fn stop(&mut self) -> String {
        std::fs::write(self.work.path().join("stop"), b"").expect("stop file");
        match self.child.take() {
            Some(child) => {
                let out = child.wait_with_output().expect("sender output");
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            }
            None => String::new(),
        }
    }
}
