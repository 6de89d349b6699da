//! A commit the database cannot confirm: PostgreSQL waiting for a
//! synchronous standby that never answers (what a primary cut off from
//! its standby does under Patroni's `synchronous_mode`; the server's
//! statement_timeout does not end that wait). Such a commit must come back
//! `Unavailable` within `statement_timeout` (never a hang, never `Ok`: no
//! standby has the write set, and a failover would lose it), and the
//! connection it ran on must leave the pool. When the standby question is
//! settled, the next write set goes through without a restart. The same
//! for a primary fenced read-only under Tern's pooled connections.

use super::PostgresBackend;
use crate::store::backend::{BackendError, Batch, Space};
use crate::testing::postgres::PrivatePostgres;
use std::time::{Duration, Instant};

/// Sets a server-wide setting and waits until a new session sees it.
async fn set_system(server: &PrivatePostgres, name: &str, value: &str) {
    let session = server.session().await;
    for sql in [
        format!("ALTER SYSTEM SET {name} = '{value}'"),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        session.batch_execute(&sql).await.expect(&sql);
    }
    let started = Instant::now();
    loop {
        let now = server
            .session()
            .await
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .expect("show")
            .get::<_, String>(0);
        if now == value {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "reload not seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The engine on `server`, statements (and COMMITs) bounded at 2 s.
async fn open(server: &PrivatePostgres) -> PostgresBackend {
    let mut settings = server.settings();
    settings.pool_size = 4;
    settings.statement_timeout = Duration::from_secs(2);
    PostgresBackend::open(&settings).await.expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_no_synchronous_standby_confirms_is_unavailable_not_acknowledged() {
    let server = PrivatePostgres::start();
    let engine = open(&server).await;
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"before".to_vec(), b"1".to_vec());
    engine
        .commit(&batch)
        .await
        .expect("a commit with no standby configured");
    let pooled = engine.pool.status().size;
    assert!(pooled >= 1, "the connection went back to the pool");

    set_system(&server, "synchronous_standby_names", "ghost").await;
    let started = Instant::now();
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"unconfirmed".to_vec(), b"1".to_vec());
    match engine.commit(&batch).await {
        Err(BackendError::Unavailable(why)) => assert!(why.contains("confirm"), "{why}"),
        Ok(()) => panic!("a commit no synchronous standby confirmed was acknowledged"),
        Err(other) => panic!("expected Unavailable, got {other}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "bounded by statement_timeout: {waited:?}"
    );
    assert_eq!(
        engine.pool.status().size,
        pooled - 1,
        "the connection left mid-COMMIT was closed, not pooled"
    );
    // Reads are not held up by the standby.
    assert!(
        engine
            .get(Space::Meta, b"before")
            .await
            .expect("read")
            .is_some()
    );

    set_system(&server, "synchronous_standby_names", "").await;
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"after".to_vec(), b"1".to_vec());
    engine
        .commit(&batch)
        .await
        .expect("commits go through again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_turned_read_only_leaves_the_pool() {
    let server = PrivatePostgres::start();
    let engine = open(&server).await;
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"before".to_vec(), b"1".to_vec());
    engine.commit(&batch).await.expect("commit");
    let pooled = engine.pool.status().size;

    // A fenced primary: its sessions, pooled ones too, turn read-only.
    set_system(&server, "default_transaction_read_only", "on").await;
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"fenced".to_vec(), b"1".to_vec());
    match engine.commit(&batch).await {
        Err(BackendError::Unavailable(why)) => assert!(why.contains("read-only"), "{why}"),
        other => panic!("expected Unavailable (25006), got {other:?}"),
    }
    assert_eq!(
        engine.pool.status().size,
        pooled - 1,
        "the read-only connection was closed, not pooled"
    );

    set_system(&server, "default_transaction_read_only", "off").await;
    engine.commit(&batch).await.expect("writable again");
}
