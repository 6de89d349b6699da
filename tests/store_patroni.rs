//! Tern on a highly-available PostgreSQL: Patroni with etcd, three members
//! in synchronous mode (`harness/patroni.rs`), Tern's `[store] url` listing
//! all three with `target_session_attrs=read-write`. Under steady SMTP load
//! the primary is moved twice: first a planned switchover (`patronictl`),
//! then a crash (SIGKILL to the new primary's Patroni and postmaster).
//! Each time Tern must follow the new primary by itself (same process, new
//! mail acknowledged again), everything refused meanwhile must have been
//! refused with a 4xx (never a 5xx, never a reset) and promptly (no attempt
//! over 30 s), and once the load stops and the queue drains, every
//! acknowledged message must have reached the next hop. Skipped, saying
//! why, only when Patroni, etcd or PostgreSQL 15 is not installed
//! (`scripts/install-test-deps` installs them).

mod harness;

use harness::patroni::{self, PatroniCluster};
use harness::{FaultyHop, LoadSender, READY_BOUND, Tern, relay_under_load, wait_for};
use std::time::{Duration, Instant};

/// The longest any SMTP attempt may take, whatever the database does.
const LONGEST_ATTEMPT: Duration = Duration::from_secs(30);

#[test]
fn patroni_switchover_and_crash_under_load_lose_nothing_and_tern_follows() {
    if let Some(why) = patroni::missing() {
        eprintln!(
            "SKIPPED patroni_switchover_and_crash_under_load_lose_nothing_and_tern_follows: {why}"
        );
        return;
    }
    let mut cluster = PatroniCluster::start(3);
    let hop = FaultyHop::start("good", 0);
    let mut tern = Tern::start(&relay_under_load(
        hop.port,
        &format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{}\"\nsslmode = \"disable\"\npool_size = 8\n",
            cluster.url()
        ),
    ));
    let pid = tern.pid();
    let mut sender = LoadSender::start(tern.port("smtp"), 4);
    wait_for("20 acknowledged messages", READY_BOUND, || {
        (sender.acked().len() >= 20).then_some(())
    });

    // 1. A planned switchover to the synchronous standby.
    let first = cluster.leader().expect("a leader");
    let standby = cluster.sync_standby().expect("a synchronous standby");
    let switched = Instant::now();
    cluster.switchover(&standby);
    let switch_recovery = follow(&cluster, &sender, &first, switched);
    println!(
        "switchover {first} -> {standby}: Tern acknowledged mail again {:.1} s after it began",
        switch_recovery.as_secs_f64()
    );

    // 2. The old primary is back as a replica; now the primary crashes.
    cluster.wait_healthy(3, Duration::from_secs(120));
    let victim = cluster.leader().expect("a leader");
    let killed = Instant::now();
    cluster.kill(&victim);
    let crash_recovery = follow(&cluster, &sender, &victim, killed);
    println!(
        "SIGKILL of {victim} (Patroni and postmaster): Tern acknowledged mail again {:.1} s later \
         (Patroni's leader key lives 10 s)",
        crash_recovery.as_secs_f64()
    );

    let sender_says = sender.stop();
    assert_eq!(tern.pid(), pid, "Tern was not restarted");
    tern.wait_queue_empty(Duration::from_secs(180));
    let acked = sender.acked();
    let tally = hop.tally();
    let refusals = sender.refusals();
    let temporary = refusals.iter().filter(|r| r.starts_with('4')).count();
    let other: Vec<&String> = refusals.iter().filter(|r| !r.starts_with('4')).collect();
    let slowest = sender.slowest_attempt();
    println!(
        "Patroni failovers under load: sender {sender_says}; {}; refusals: {temporary} 4xx, \
         {} other {other:?}; slowest attempt {:.1} s; recovered after {:.1} s (switchover) \
         and {:.1} s (crash)",
        tally.summary(&acked),
        other.len(),
        slowest.as_secs_f64(),
        switch_recovery.as_secs_f64(),
        crash_recovery.as_secs_f64(),
    );
    let lost = tally.lost(&acked);
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(
        other.is_empty(),
        "refused otherwise than with a 4xx (a 5xx, a reset or a timeout): {other:?}"
    );
    assert!(
        slowest < LONGEST_ATTEMPT,
        "an SMTP attempt took {slowest:?} during the failovers"
    );
    tern.stop();
}

/// Waits until a member other than `old` leads and Tern has acknowledged
/// ten messages more than it had by then; returns the time since `since`.
fn follow(cluster: &PatroniCluster, sender: &LoadSender, old: &str, since: Instant) -> Duration {
    wait_for("a new leader", Duration::from_secs(90), || {
        cluster.leader().filter(|l| l != old)
    });
    let acked = sender.acked().len();
    wait_for(
        "mail acknowledged on the new primary",
        Duration::from_secs(90),
        || (sender.acked().len() >= acked + 10).then_some(()),
    );
    since.elapsed()
}
