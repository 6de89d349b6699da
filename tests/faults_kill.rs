//! SIGKILL at random moments under load: a Python sender (4 threads,
//! `fixtures/load_sender.py`) keeps sending through Tern to a smarthost
//! (`fixtures/faulty_smtp.py` in good mode) while the server is killed
//! with SIGKILL 20 times and started again. Afterwards every message that
//! got a 250 must have been delivered (or bounced); none may be lost.
//! Duplicates (a kill between the next hop's 250 and the queue's record of
//! it) are allowed by at-least-once delivery, counted and reported.

mod harness;

use harness::{FaultyHop, LoadSender, Tern, relay_under_load};
use std::time::{Duration, SystemTime};

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

#[test]
fn sigkill_loop_loses_nothing() {
    let hop = FaultyHop::start("good", 0);
    let mut tern = Tern::start(&relay_under_load(hop.port, ""));
    tern.pin_ports();
    let mut sender = LoadSender::start(tern.port("smtp"), 4);
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
    let sender_says = sender.stop();

    // Everything acknowledged must leave the queue: delivered or bounced.
    tern.wait_queue_empty(Duration::from_secs(180));
    let acked = sender.acked();
    let tally = hop.tally();
    println!(
        "SIGKILL loop (20 kills, {}): sender {sender_says}; {}",
        harness::engine::name(),
        tally.summary(&acked)
    );
    assert!(
        acked.len() >= 20,
        "too little traffic to mean anything: {}",
        acked.len()
    );
    let lost = tally.lost(&acked);
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
