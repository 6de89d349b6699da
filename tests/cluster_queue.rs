//! Three nodes, one queue: three `tern serve` processes on 127.0.0.2–4
//! share one private PostgreSQL and relay to one next hop
//! (`fixtures/faulty_smtp.py`, good mode). SMTP load is spread over all
//! three; one node is killed with SIGKILL mid-load and never comes back.
//! Every acknowledged message must be delivered — the dead node's leased
//! deliveries and its queued entries finished by the others once its
//! leases lapse — duplicates are counted and reported, the cluster never
//! has more transactions open at the next hop than
//! `queue.max_per_destination`, and `tern queue list` on any node shows the
//! whole queue with the node that accepted each entry.

mod harness;

use harness::{FaultyHop, LoadSender, Tern, relay_under_load, wait_for};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tern::testing::ports::free_port;
use tern::testing::postgres::PrivatePostgres;

/// The config of node `n` of a cluster on `url`, relaying to `hop_port`.
/// (`node_id` is a top-level key: it goes before every table.)
fn node_config(n: u32, url: &str, hop_port: u16) -> String {
    let body = relay_under_load(
        hop_port,
        &format!(
            "lease = \"3s\"\nmax_per_destination = 3\n\
[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nsslmode = \"disable\"\npool_size = 4\n"
        ),
    );
    format!("node_id = \"n{n}\"\n{body}")
}

fn cluster(pg: &PrivatePostgres, db: &str, hop_port: u16, nodes: u32) -> Vec<Tern> {
    let url = pg.create_database(db);
    (1..=nodes)
        .map(|n| {
            let cfg = node_config(n, &url, hop_port);
            Tern::start_on(&format!("127.0.0.{}", n + 1), &cfg)
        })
        .collect()
}

#[test]
fn a_node_killed_mid_load_loses_nothing_and_its_work_is_taken_over() {
    let pg = PrivatePostgres::start();
    let hop = FaultyHop::start("good", 0);
    let mut nodes = cluster(&pg, "cluster_kill", hop.port, 3);
    let mut senders: Vec<LoadSender> = nodes
        .iter()
        .map(|t| LoadSender::start_on(&t.ip, t.port("smtp"), 2))
        .collect();
    // Load on all three until each has acknowledged some mail.
    wait_for(
        "mail acknowledged by every node",
        Duration::from_secs(120),
        || senders.iter().all(|s| s.acked().len() >= 15).then_some(()),
    );
    let killed_at = Instant::now();
    nodes[2].kill9();
    let dead_acked = senders[2].acked();
    // What the dead node left: its entries still queued, and leases it held.
    let left = nodes[0].queue_list();
    let orphans = left.matches("accepted by n3").count();
    let leased = left.matches("being delivered by n3").count();
    // The others go on a while after the kill.
    let before: usize = senders[..2].iter().map(|s| s.acked().len()).sum();
    wait_for(
        "more mail on the living nodes",
        Duration::from_secs(120),
        || {
            let now: usize = senders[..2].iter().map(|s| s.acked().len()).sum();
            (now >= before + 20).then_some(())
        },
    );
    let says: Vec<String> = senders.iter_mut().map(LoadSender::stop).collect();
    nodes[0].wait_queue_empty(Duration::from_secs(180));
    let took_over = killed_at.elapsed();

    let mut acked = HashSet::new();
    for s in &senders {
        acked.extend(s.acked());
    }
    let tally = hop.tally();
    println!(
        "three nodes, one SIGKILLed: senders {says:?}; node 3 had acknowledged {} \
({orphans} of them still queued at the kill, {leased} leased by it); {}; \
queue empty {:.1}s after the kill; most transactions at once at the next hop: {}",
        dead_acked.len(),
        tally.summary(&acked),
        took_over.as_secs_f64(),
        hop.max_transactions()
    );
    let lost = tally.lost(&acked);
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let refused: Vec<String> = senders.iter().flat_map(|s| s.refusals()).collect();
    assert!(
        refused.iter().all(|r| !r.starts_with('5')),
        "a permanent refusal under load: {refused:?}"
    );
    assert!(
        hop.max_transactions() <= 3,
        "max_per_destination = 3 exceeded across the cluster: {}",
        hop.max_transactions()
    );
    // Each living node relayed some of the mail, and says so.
    let texts = hop.messages();
    for n in ["n1", "n2", "n3"] {
        assert!(
            texts.iter().any(|m| m.contains(&format!("(node {n})"))),
            "no message received by node {n}"
        );
    }
}

#[test]
fn queue_commands_act_on_the_cluster_from_any_node() {
    let pg = PrivatePostgres::start();
    // A next hop that is not there: mail stays queued.
    let dead_port = free_port();
    let url = pg.create_database("cluster_cli");
    let nodes: Vec<Tern> = (1..=2)
        .map(|n| {
            let cfg = node_config(n, &url, dead_port)
                .replace("retry_intervals = [\"1s\"]", "retry_intervals = [\"1h\"]");
            Tern::start_on(&format!("127.0.0.{}", n + 1), &cfg)
        })
        .collect();
    let sent = harness::swaks(&[
        "--server",
        &nodes[0].addr("smtp"),
        "--from",
        "ann@elsewhere.test",
        "--to",
        "bob@far.test",
        "--header",
        "Subject: held",
    ]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stdout)
    );
    // Listed on the other node, with the node that accepted it.
    let listed = wait_for(
        "the entry listed on node 2",
        Duration::from_secs(60),
        || {
            let l = nodes[1].queue_list();
            l.contains("bob@far.test").then_some(l)
        },
    );
    assert!(listed.contains("accepted by n1"), "{listed}");
    let id = listed
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("a queue id")
        .to_string();
    // Deleted from node 2: gone for node 1 too.
    let out = nodes[1].cli_ok(&["queue", "delete", &id]);
    assert!(out.contains("deleted"), "{out}");
    assert!(nodes[0].queue_list().contains("Mail queue is empty"));
}
