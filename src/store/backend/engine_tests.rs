//! Each engine through the conformance suite (`conformance.rs`), and what
//! is particular to each: sled's lock on its folder and what it keeps
//! across a reopen; PostgreSQL's schema version check on open, an
//! unreachable server, and a server that goes away and comes back.

use super::conformance::run_all;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sled_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Backend::open_sled(dir.path()).unwrap();
    run_all(&engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sled_keeps_what_was_synced_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Backend::open_sled(dir.path()).unwrap();
        let mut batch = Batch::new();
        batch.put(Space::Meta, b"kept".to_vec(), b"yes".to_vec());
        engine.commit(batch).await.unwrap();
        engine.sync().await.unwrap();
    }
    let engine = reopen_sled(dir.path()).await;
    assert_eq!(
        engine.get(Space::Meta, b"kept").await.unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    match Backend::open_sled(dir.path()) {
        Err(BackendError::Locked(msg)) => assert!(msg.contains("tern serve"), "{msg}"),
        Err(other) => panic!("a second open should be Locked, was {other}"),
        Ok(_) => panic!("a second open of the same folder must be refused"),
    }
}

/// sled lets go of its file lock a little after the last handle drops.
async fn reopen_sled(dir: &std::path::Path) -> Backend {
    for _ in 0..300 {
        match Backend::open_sled(dir) {
            Ok(b) => return b,
            Err(BackendError::Locked(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }
    panic!("sled still locked after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms() {
    let server = crate::testing::postgres::PrivatePostgres::start();
    let mut settings = server.settings();
    settings.pool_size = 8;
    let engine = Backend::open(&EngineSettings::Postgres(settings.clone()))
        .await
        .unwrap();
    run_all(&engine).await;
    // A second open of a migrated database (a second node) is fine and
    // sees the same data.
    let again = Backend::open(&EngineSettings::Postgres(settings.clone()))
        .await
        .unwrap();
    assert!(again.get(Space::Meta, b"t5/k").await.unwrap().is_some());
    // A database migrated by a newer tern is refused, naming both versions.
    postgres::force_schema_version(&engine, 99).await;
    let refused = Backend::open(&EngineSettings::Postgres(settings)).await;
    match refused {
        Err(BackendError::Open(msg)) => {
            assert!(msg.contains("99") && msg.contains("version 1"), "{msg}")
        }
        Err(other) => panic!("expected Open, got {other}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[tokio::test]
async fn postgres_unreachable_at_open_names_the_host_not_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings =
        PostgresSettings::new(format!("postgresql://tern:s3cretpw@127.0.0.1:{port}/tern"));
    settings.sslmode = postgres::SslMode::Disable;
    settings.connect_timeout = std::time::Duration::from_secs(2);
    settings.wait_timeout = std::time::Duration::from_secs(2);
    match Backend::open(&EngineSettings::Postgres(settings)).await {
        Err(BackendError::Open(msg)) => {
            assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
            assert!(!msg.contains("s3cretpw"), "the password leaked: {msg}");
        }
        Err(other) => panic!("expected Open, got {other}"),
        Ok(_) => panic!("nothing listens there"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_unavailable_and_it_recovers_by_itself() {
    let mut server = crate::testing::postgres::PrivatePostgres::start();
    let mut settings = server.settings();
    settings.pool_size = 4;
    settings.connect_timeout = std::time::Duration::from_secs(3);
    settings.wait_timeout = std::time::Duration::from_secs(3);
    let engine = Backend::open(&EngineSettings::Postgres(settings))
        .await
        .unwrap();
    let mut batch = Batch::new();
    batch.put(Space::Meta, b"before".to_vec(), b"1".to_vec());
    engine.commit(batch).await.unwrap();

    server.stop_immediate();
    // Every pooled connection is dead now: each operation fails with
    // Unavailable (never a hang, never Conflict), however many are tried.
    for attempt in 0..6 {
        let mut batch = Batch::new();
        batch.put(Space::Meta, b"during".to_vec(), vec![attempt]);
        match engine.commit(batch).await {
            Err(BackendError::Unavailable(_)) => {}
            other => panic!("attempt {attempt} while the database is down: {other:?}"),
        }
        assert!(matches!(
            engine.get(Space::Meta, b"before").await,
            Err(BackendError::Unavailable(_))
        ));
    }

    server.start_again();
    // Back: the pool replaces its broken connections on its own.
    let mut recovered = None;
    for _ in 0..50 {
        let mut batch = Batch::new();
        batch.put(Space::Meta, b"after".to_vec(), b"3".to_vec());
        match engine.commit(batch).await {
            Ok(()) => {
                recovered = Some(());
                break;
            }
            Err(BackendError::Unavailable(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            Err(other) => panic!("after the restart: {other}"),
        }
    }
    assert!(
        recovered.is_some(),
        "the engine did not recover within 10 s"
    );
    assert_eq!(
        engine.get(Space::Meta, b"before").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        engine.get(Space::Meta, b"during").await.unwrap(),
        None,
        "nothing half-written"
    );
    assert_eq!(
        engine.get(Space::Meta, b"after").await.unwrap().as_deref(),
        Some(&b"3"[..])
    );
}
