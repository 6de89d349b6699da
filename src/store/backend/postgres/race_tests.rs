//! A write set without conditions never conflicts, on PostgreSQL as on
//! sled: when a race fails it (here a deadlock, which PostgreSQL settles
//! by aborting one side; a serialization failure beside readers of its
//! keys is the other such race), the engine commits it again instead of
//! handing the caller a `Conflict` it has no condition to explain (the
//! conformance suite's concurrent sets saw one, now and then).

use super::PostgresBackend;
use crate::store::backend::{Batch, Space};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_set_without_conditions_that_loses_a_deadlock_is_committed() {
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
        tokio::spawn(async move { backend.commit(&puts(&["t/a", "t/b"], "new")).await })
    };
    until_a_lock_wait(&other, "the write set").await;
    // Now the other session waits for t/a: a deadlock, which the write
    // set's session finds and loses. The other session goes on.
    other
        .execute(update, &[&b"t/a".as_slice()])
        .await
        .expect("t/a");
    other.batch_execute("COMMIT").await.expect("commit");

    writing
        .await
        .expect("task")
        .expect("committed, not a conflict");
    for key in ["t/a", "t/b"] {
        let value = backend.get(Space::Meta, key.as_bytes()).await.expect("get");
        assert_eq!(
            value.as_deref(),
            Some(b"new".as_slice()),
            "{key}: the write set's"
        );
    }
}
