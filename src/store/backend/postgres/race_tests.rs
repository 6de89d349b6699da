//! Only a condition makes a `Conflict`, on PostgreSQL as on sled: when a
//! race fails a write set (here a deadlock, which PostgreSQL settles by
//! aborting one side; a serialization failure beside readers of its keys
//! is the other such race), the engine tries it again, its conditions read
//! afresh, instead of handing the caller a `Conflict` it would take for a
//! failed condition (a taken address, a body committed after all).

use super::PostgresBackend;
use crate::store::backend::{BackendError, Batch, Space};
use crate::testing::postgres::{PrivatePostgres, until_a_lock_wait};

/// Puts `value` at each of `keys` (Meta), with no conditions.
fn puts(keys: &[&str], value: &str) -> Batch {
    let mut batch = Batch::new();
    for key in keys {
        batch.put(
            Space::Meta,
            key.as_bytes().to_vec(),
            value.as_bytes().to_vec(),
        );
    }
    batch
}

/// Commits `batch` (which writes t/a, then t/b) on a server where t/a and
/// t/b hold "old", while another session makes it lose a deadlock: the
/// other session updates t/b, waits for the write set to wait for t/b,
/// then updates t/a to "other" and commits. Returns what the commit
/// returned, the engine to read the result with, and the server (stopped
/// when dropped).
async fn lose_a_deadlock(
    batch: Batch,
) -> (Result<(), BackendError>, PostgresBackend, PrivatePostgres) {
    let server = PrivatePostgres::start();
    let backend = PostgresBackend::open(&server.settings())
        .await
        .expect("open");
    backend
        .commit(&puts(&["t/a", "t/b"], "old"))
        .await
        .expect("rows");

    // Another session holds t/b, and never detects the deadlock itself
    // (its deadlock_timeout is an hour): the engine's side is the one
    // PostgreSQL aborts.
    let other = server.session().await;
    let update = "UPDATE tern_kv SET value = 'other' WHERE space = 0 AND key = $1";
    other
        .batch_execute("SET deadlock_timeout = '1h'; BEGIN")
        .await
        .expect("begin");
    other
        .execute(update, &[&b"t/b".as_slice()])
        .await
        .expect("t/b");

    // The write set takes t/a, then waits for t/b.
    let writing = {
        let backend = backend.clone();
        tokio::spawn(async move { backend.commit(&batch).await })
    };
    until_a_lock_wait(&other, "the write set").await;
    // Now the other session waits for t/a: a deadlock, which the write
    // set's session finds and loses. The other session goes on.
    other
        .execute(update, &[&b"t/a".as_slice()])
        .await
        .expect("t/a");
    other.batch_execute("COMMIT").await.expect("commit");

    (writing.await.expect("task"), backend, server)
}

async fn values(backend: &PostgresBackend) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    for key in ["t/a", "t/b"] {
        out.push(backend.get(Space::Meta, key.as_bytes()).await.expect("get"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_set_without_conditions_that_loses_a_deadlock_is_committed() {
    let (result, backend, _server) = lose_a_deadlock(puts(&["t/a", "t/b"], "new")).await;
    result.expect("committed, not a conflict");
    assert_eq!(values(&backend).await, vec![Some(b"new".to_vec()); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_set_whose_condition_still_holds_after_a_lost_deadlock_is_committed() {
    let mut batch = puts(&["t/a", "t/b"], "new");
    batch.require(Space::Meta, b"t/c".to_vec(), None);
    let (result, backend, _server) = lose_a_deadlock(batch).await;
    result.expect("committed, not a conflict: t/c is still absent");
    assert_eq!(values(&backend).await, vec![Some(b"new".to_vec()); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_set_whose_condition_the_race_broke_is_a_conflict() {
    let mut batch = puts(&["t/a", "t/b"], "new");
    batch.require(Space::Meta, b"t/a".to_vec(), Some(b"old".as_slice()));
    let (result, backend, _server) = lose_a_deadlock(batch).await;
    assert!(
        matches!(result, Err(BackendError::Conflict)),
        "t/a is no longer \"old\": {result:?}"
    );
    assert_eq!(values(&backend).await, vec![Some(b"other".to_vec()); 2]);
}
