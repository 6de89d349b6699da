//! PostgreSQL going away under load (`pg_ctl stop -m immediate`, as a crash
//! or a failover would), and coming back: while it is gone new mail is
//! refused with 4xx (never 5xx, never a hang), nothing acknowledged is
//! lost, and Tern serves again by itself, without a restart. It needs its
//! own private PostgreSQL (the harness's shared one must stay up), so it
//! names `[store]` itself and runs the same in both passes of `.ci/run`.

mod harness;

use harness::{FaultyHop, LoadSender, READY_BOUND, Tern, relay_under_load, wait_for};
use std::time::{Duration, Instant};
use tern::testing::postgres::PrivatePostgres;

#[test]
fn postgres_stopped_under_load_loses_nothing_and_tern_recovers_by_itself() {
    let mut pg = PrivatePostgres::start();
    let hop = FaultyHop::start("good", 0);
    let mut tern = Tern::start(&relay_under_load(
        hop.port,
        &format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{}\"\nsslmode = \"disable\"\npool_size = 8\n\
statement_timeout = \"5s\"\nconnect_timeout = \"2s\"\n",
            pg.url()
        ),
    ));
    let pid = tern.pid();
    let mut sender = LoadSender::start(tern.port("smtp"), 4);
    wait_for("20 acknowledged messages", READY_BOUND, || {
        (sender.acked().len() >= 20).then_some(())
    });

    pg.stop_immediate();
    let stopped = Instant::now();
    let refused_before = sender.refusals().len();
    // Senders keep trying while the database is gone: each attempt must be
    // refused, and promptly.
    wait_for("refusals while PostgreSQL is down", READY_BOUND, || {
        (sender.refusals().len() >= refused_before + 20).then_some(())
    });
    let acked_while_down = sender.acked().len();
    pg.start_again();
    let down_for = stopped.elapsed();
    wait_for(
        "deliveries again after PostgreSQL came back",
        READY_BOUND,
        || (sender.acked().len() >= acked_while_down + 20).then_some(()),
    );
    let sender_says = sender.stop();
    assert_eq!(tern.pid(), pid, "Tern was not restarted");

    tern.wait_queue_empty(Duration::from_secs(180));
    let acked = sender.acked();
    let tally = hop.tally();
    let refusals = sender.refusals();
    let permanent: Vec<&String> = refusals.iter().filter(|r| r.starts_with('5')).collect();
    let temporary = refusals.iter().filter(|r| r.starts_with('4')).count();
    println!(
        "PostgreSQL stopped (-m immediate) for {:.1} s under load: sender {sender_says}; {}; \
refusals: {temporary} 4xx, {} 5xx, {} resets/timeouts",
        down_for.as_secs_f64(),
        tally.summary(&acked),
        permanent.len(),
        refusals.len() - temporary - permanent.len()
    );
    assert!(
        permanent.is_empty(),
        "5xx while the database was down: {permanent:?}"
    );
    assert!(
        temporary > 0,
        "no 4xx while the database was down: {refusals:?}"
    );
    let lost = tally.lost(&acked);
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    tern.stop();
    assert!(
        tern.log().contains("4.3.0"),
        "the refusals say the store is unavailable (4.3.0)"
    );
}
