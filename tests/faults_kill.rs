//! SIGKILL at random moments under load: a Python sender (4 threads,
//! `fixtures/load_sender.py`) keeps sending through Tern to a smarthost
//! (`fixtures/faulty_smtp.py` in good mode) while the server is killed
//! with SIGKILL 20 times and started again. Afterwards every message that
//! got a 250 must have been delivered (or bounced); none may be lost.
//! Duplicates (a kill between the next hop's 250 and the queue's record of
//! it) are allowed by at-least-once delivery, counted and reported.

mod harness;

use harness::{READY_BOUND, Tern, config, wait_for};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A tiny xorshift generator (the kill moments; seeded from the clock and
/// printed, so a failing run can be repeated).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn message_id(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .map(|l| l[11..].trim().to_string())
}

#[test]
fn sigkill_loop_loses_nothing() {
    let sink_dir = tempfile::tempdir().expect("tempdir");
    let port_file = sink_dir.path().join("port");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut sink = Command::new("python3")
        .arg(fixtures.join("faulty_smtp.py"))
        .args(["good", "0"])
        .arg(&port_file)
        .arg(sink_dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("sink");
    let sink_port: u16 = wait_for("the sink", READY_BOUND, || {
        std::fs::read_to_string(&port_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let mut tern = Tern::start(&config(
        "mx.example.test",
        "example.test",
        &format!(
            "[relay]\ntrusted_networks = [\"127.0.0.0/8\"]\nsmarthost = \"127.0.0.1:{sink_port}\"\n\
[queue]\nretry_intervals = [\"1s\"]\nreply_timeout = \"5s\"\n"
        ),
    ));
    tern.pin_ports();
    let work = tempfile::tempdir().expect("tempdir");
    let acked_file = work.path().join("acked");
    let stop_file = work.path().join("stop");
    let sender = Command::new("python3")
        .arg(fixtures.join("load_sender.py"))
        .arg(tern.port("smtp").to_string())
        .arg(&acked_file)
        .arg(&stop_file)
        .arg("4")
        .stdout(Stdio::piped())
        .spawn()
        .expect("sender");

    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    println!("kill moments seeded with {seed}");
    let mut rng = Rng(seed);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(150 + rng.below(850)));
        tern.restart(); // SIGKILL, then start again on the same ports
    }
    // Let the sender run a little on the last incarnation, then stop it.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&stop_file, b"").expect("stop file");
    let out = sender.wait_with_output().expect("sender output");
    let sender_says = String::from_utf8_lossy(&out.stdout).into_owned();

    // Everything acknowledged must leave the queue: delivered or bounced.
    let start = Instant::now();
    while !tern.queue_list().contains("Mail queue is empty") {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "queue not empty after 180 s:\n{}",
            tern.queue_list()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = sink.kill();
    let _ = sink.wait();

    let acked: HashSet<String> = std::fs::read_to_string(&acked_file)
        .expect("acked")
        .lines()
        .map(str::to_string)
        .collect();
    let mut delivered: HashMap<String, usize> = HashMap::new();
    let mut bounced: HashSet<String> = HashSet::new();
    for entry in std::fs::read_dir(sink_dir.path()).expect("sink dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&path).expect("eml")).into_owned();
        if text.contains("MAILER-DAEMON@") {
            // A bounce: the original's Message-ID is in its attached headers.
            let original = text.split("text/rfc822-headers").nth(1).unwrap_or("");
            if let Some(id) = message_id(original) {
                bounced.insert(id);
            }
        } else if let Some(id) = message_id(&text) {
            *delivered.entry(id).or_insert(0) += 1;
        }
    }
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !delivered.contains_key(*id) && !bounced.contains(*id))
        .collect();
    let duplicated = delivered.values().filter(|n| **n > 1).count();
    let extra_copies: usize = delivered.values().map(|n| n.saturating_sub(1)).sum();
    let unacked_delivered = delivered.keys().filter(|id| !acked.contains(*id)).count();
    println!(
        "SIGKILL loop (20 kills): sender {}; acknowledged {}, delivered {}, bounced {}, lost {}, \
duplicated {} ({} extra copies), delivered without acknowledgement {}",
        sender_says.trim(),
        acked.len(),
        delivered.keys().filter(|id| acked.contains(*id)).count(),
        bounced.len(),
        lost.len(),
        duplicated,
        extra_copies,
        unacked_delivered
    );
    assert!(
        acked.len() >= 20,
        "too little traffic to mean anything: {}",
        acked.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
