//! The PostgreSQL engine: the seam's surface over one table of byte keys
//! and values (`tern_kv`, keyed by space and key, `bytea` ordering is
//! bytewise like sled's) and one sequence (`tern_ids`), through
//! tokio-postgres with a deadpool pool.
//!
//! Write sets are SERIALIZABLE transactions: the conditions are read, then
//! the puts and deletes are sent as one statement each (arrays through
//! `unnest`), so a write set costs the same few round trips however many
//! keys it writes. A condition that does not hold is a `Conflict` for the
//! caller's retry loop; a write set that lost a race (a serialization
//! failure, a deadlock, a unique violation) is tried again here, its
//! conditions read afresh, so `Conflict` means what it means on sled and a
//! caller may read it as "the condition failed"; a lost connection, an exhausted pool or a statement timeout is
//! `Unavailable` (the receivers answer 451 4.3.0 and try again later). No
//! advisory locks and no LISTEN/NOTIFY are needed for correctness, so the
//! SQL stays portable to PostgreSQL-protocol distributed databases.
//!
//! Durability: a commit returns after its WAL record is flushed
//! (`synchronous_commit = on` is set on every connection), so the
//! seam's durability point costs nothing more here.

#[cfg(test)]
mod race_tests;
mod schema;
mod settings;
#[cfg(test)]
mod unconfirmed_tests;

pub use settings::{PostgresSettings, SslMode};

use super::{BackendError, Batch, KeyRange, KeyValues, ScanOrder, Space, Write};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::broadcast;
use tokio_postgres::IsolationLevel;
use tokio_postgres::error::SqlState;

/// A pool of connections to one database (cheap to clone).
#[derive(Clone)]
pub struct PostgresBackend {
    pool: Pool,
    pub(super) changes: broadcast::Sender<String>,
    /// How long a COMMIT may wait for its confirmation (`statement_timeout`).
    commit_bound: std::time::Duration,
}

impl PostgresBackend {
    /// Connects, creates or migrates the schema, and returns the engine.
    /// An unreachable database is `Open` naming the host(s), never the
    /// password.
    pub async fn open(settings: &PostgresSettings) -> Result<PostgresBackend, BackendError> {
        let config = settings.client_config()?;
        let hosts = settings.describe_hosts(&config);
        let tls = settings.tls()?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(settings.wait_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| BackendError::Open(format!("PostgreSQL at {hosts}: {e}")))?;
        let backend = PostgresBackend {
            pool,
            changes: broadcast::channel(1024).0,
            commit_bound: settings.statement_timeout,
        };
        schema::migrate(&backend).await.map_err(|e| match e {
            BackendError::Unavailable(why) | BackendError::Engine(why) => {
                BackendError::Open(format!("cannot use PostgreSQL at {hosts}: {why}"))
            }
            other => other,
        })?;
        Ok(backend)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, BackendError> {
        self.pool
            .get()
            .await
            .map_err(|e| BackendError::Unavailable(pool_error(e)))
    }

    /// Runs `work` on a pooled connection. A connection on which it met
    /// `Unavailable` is closed, not given back: it may be dead, shutting
    /// down, read-only now (a demoted or fenced primary), or mid-COMMIT
    /// after a timeout, and the pool's fast recycling would hand it out
    /// again; a fresh one goes through `target_session_attrs` to whichever
    /// host is the writable primary now.
    async fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let mut client = self.client().await?;
        let result = work(&mut client).await;
        if matches!(result, Err(BackendError::Unavailable(_))) {
            drop(deadpool_postgres::Object::take(client));
        }
        result
    }

    pub(super) async fn get(
        &self,
        space: Space,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, BackendError> {
        self.with_client(async |client| {
            let stmt = client
                .prepare_cached("SELECT value FROM tern_kv WHERE space = $1 AND key = $2")
                .await
                .map_err(classify)?;
            let row = client
                .query_opt(&stmt, &[&space.number(), &key])
                .await
                .map_err(classify)?;
            row.map(|r| r.try_get::<_, Vec<u8>>(0).map_err(classify))
                .transpose()
        })
        .await
    }

    pub(super) async fn scan(
        &self,
        space: Space,
        range: &KeyRange,
        order: ScanOrder,
    ) -> Result<KeyValues, BackendError> {
        let limit = order
            .limit
            .map_or(i64::MAX, |l| l.min(i64::MAX as usize) as i64);
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.with_client(async |client| scan_on(client, space, range, order.reverse, limit).await)
            .await
    }

    pub(super) async fn commit(&self, batch: &Batch) -> Result<(), BackendError> {
        // A race (a serialization failure, a deadlock) is `Conflict` from
        // `commit_on` and is tried again: each try reads the conditions
        // afresh in its own transaction, so the same set again is right.
        // Only a condition that does not hold reaches the caller as a
        // `Conflict`, as on sled.
        super::retry(|| self.with_client(async |client| self.commit_on(client, batch).await))
            .await?
            .map_err(|ConditionFailed| BackendError::Conflict)
    }

    /// One try of a write set: `Ok(Err(ConditionFailed))` when a condition
    /// does not hold (nothing written), `Err(Conflict)` when it lost a race.
    async fn commit_on(
        &self,
        client: &mut deadpool_postgres::Object,
        batch: &Batch,
    ) -> Result<Result<(), ConditionFailed>, BackendError> {
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .start()
            .await
            .map_err(classify)?;
        if !batch.conditions.is_empty() {
            let spaces: Vec<i16> = batch.conditions.iter().map(|c| c.0.number()).collect();
            let keys: Vec<&[u8]> = batch.conditions.iter().map(|c| c.1.as_slice()).collect();
            let stmt = tx
                .prepare_cached(
                    "SELECT t.space, t.key, t.value FROM tern_kv t \
                     JOIN unnest($1::int2[], $2::bytea[]) AS c(space, key) \
                     ON t.space = c.space AND t.key = c.key",
                )
                .await
                .map_err(classify)?;
            let rows = tx.query(&stmt, &[&spaces, &keys]).await.map_err(classify)?;
            let mut found = std::collections::HashMap::new();
            for row in rows {
                let space: i16 = row.try_get(0).map_err(classify)?;
                let key: Vec<u8> = row.try_get(1).map_err(classify)?;
                let value: Vec<u8> = row.try_get(2).map_err(classify)?;
                found.insert((space, key), value);
            }
            for (space, key, expected) in &batch.conditions {
                if found.get(&(space.number(), key.clone())) != expected.as_ref() {
                    // Dropping the transaction rolls it back.
                    return Ok(Err(ConditionFailed));
                }
            }
        }
        let (mut put_spaces, mut put_keys, mut put_values) = (Vec::new(), Vec::new(), Vec::new());
        let (mut del_spaces, mut del_keys) = (Vec::new(), Vec::new());
        for ((space, key), write) in &batch.writes {
            match write {
                Write::Put(value) => {
                    put_spaces.push(space.number());
                    put_keys.push(key.as_slice());
                    put_values.push(value.as_slice());
                }
                Write::Delete => {
                    del_spaces.push(space.number());
                    del_keys.push(key.as_slice());
                }
            }
        }
        if !put_keys.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO tern_kv (space, key, value) \
                     SELECT * FROM unnest($1::int2[], $2::bytea[], $3::bytea[]) \
                     ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .await
                .map_err(classify)?;
            tx.execute(&stmt, &[&put_spaces, &put_keys, &put_values])
                .await
                .map_err(classify)?;
        }
        if !del_keys.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "DELETE FROM tern_kv t USING unnest($1::int2[], $2::bytea[]) AS d(space, key) \
                     WHERE t.space = d.space AND t.key = d.key",
                )
                .await
                .map_err(classify)?;
            tx.execute(&stmt, &[&del_spaces, &del_keys])
                .await
                .map_err(classify)?;
        }
        // The durability point (synchronous_commit=on): timed as sled's
        // group commits are, in tern_store_flush_seconds. With synchronous
        // replication (Patroni's synchronous_mode) the COMMIT waits for a
        // standby, and statement_timeout does not end that wait: a standby
        // cut off would hold the SMTP session until the cluster settles
        // (a minute or more). So Tern bounds the wait itself: unconfirmed
        // in time is `Unavailable` (451 4.3.0, the sender tries again) and
        // the connection is closed, never reused.
        let began = std::time::Instant::now();
        match tokio::time::timeout(self.commit_bound, tx.commit()).await {
            Ok(done) => done.map_err(classify)?,
            Err(_) => {
                return Err(BackendError::Unavailable(format!(
                    "the database did not confirm a commit within {:?} \
                     (a synchronous standby unreachable?)",
                    self.commit_bound
                )));
            }
        }
        crate::metrics::observe_flush(began.elapsed());
        Ok(Ok(()))
    }

    pub(super) async fn next_id(&self) -> Result<u64, BackendError> {
        self.with_client(async |client| {
            let stmt = client
                .prepare_cached("SELECT nextval('tern_ids')")
                .await
                .map_err(classify)?;
            let row = client.query_one(&stmt, &[]).await.map_err(classify)?;
            let id: i64 = row.try_get(0).map_err(classify)?;
            u64::try_from(id).map_err(|_| BackendError::Engine(format!("sequence gave {id}")))
        })
        .await
    }
}

/// One REPEATABLE READ, READ ONLY transaction held open on a connection
/// of its own: every read in it sees the database as it was at its first
/// statement (what pg_dump does), while write sets go on beside it.
pub struct PgSnapshot {
    client: Option<deadpool_postgres::Object>,
}

impl PostgresBackend {
    pub(super) async fn snapshot(&self) -> Result<PgSnapshot, BackendError> {
        let client = self.client().await?;
        client
            .batch_execute(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                 SELECT count(*) FROM tern_kv WHERE false",
            )
            .await
            .map_err(classify)?;
        Ok(PgSnapshot {
            client: Some(client),
        })
    }
}

impl PgSnapshot {
    /// Up to `limit` keys of `range` from its start, as of the snapshot,
    /// and where the next page starts (None: the range is done).
    pub(super) async fn page(
        &self,
        space: Space,
        range: &KeyRange,
        limit: usize,
    ) -> Result<(KeyValues, Option<Vec<u8>>), BackendError> {
        let Some(client) = &self.client else {
            return Err(BackendError::Engine("the snapshot has ended".into()));
        };
        let limit = limit.max(1);
        let page = scan_on(client, space, range, false, limit as i64).await?;
        let next = match page.last() {
            Some((last, _)) if page.len() >= limit => Some(super::after(last)),
            _ => None,
        };
        Ok((page, next))
    }

    /// Ends the transaction and gives the connection back to the pool.
    pub(super) async fn end(mut self) -> Result<(), BackendError> {
        if let Some(client) = self.client.take() {
            client.batch_execute("ROLLBACK").await.map_err(classify)?;
        }
        Ok(())
    }
}

impl Drop for PgSnapshot {
    /// Not ended: the connection, its transaction still open, is closed
    /// rather than returned to the pool.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl PostgresBackend {
    pub(super) async fn ensure_ids_above(&self, id: u64) -> Result<(), BackendError> {
        let id = i64::try_from(id)
            .map_err(|_| BackendError::Engine(format!("id {id} is beyond PostgreSQL's bigint")))?;
        self.with_client(async |client| {
            client
                .execute(
                    "SELECT setval('tern_ids', GREATEST($1, (SELECT last_value FROM tern_ids)))",
                    &[&id],
                )
                .await
                .map_err(classify)?;
            Ok(())
        })
        .await
    }
}

/// One page of a range scan on `client` (the pool's, or a snapshot's
/// connection inside its transaction).
async fn scan_on(
    client: &deadpool_postgres::ClientWrapper,
    space: Space,
    range: &KeyRange,
    reverse: bool,
    limit: i64,
) -> Result<KeyValues, BackendError> {
    let direction = if reverse { "DESC" } else { "ASC" };
    let end = if range.end.is_some() {
        "AND key < $4"
    } else {
        ""
    };
    let sql = format!(
        "SELECT key, value FROM tern_kv WHERE space = $1 AND key >= $2 {end} \
         ORDER BY key {direction} LIMIT $3"
    );
    let stmt = client.prepare_cached(&sql).await.map_err(classify)?;
    let space = space.number();
    let rows = match &range.end {
        Some(end) => {
            client
                .query(&stmt, &[&space, &range.start, &limit, end])
                .await
        }
        None => client.query(&stmt, &[&space, &range.start, &limit]).await,
    }
    .map_err(classify)?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(classify)?,
                r.try_get(1).map_err(classify)?,
            ))
        })
        .collect()
}

/// A write set's condition did not hold: the one `Conflict` that reaches
/// the caller.
struct ConditionFailed;

/// Sorts a database error into what the caller can do about it.
pub(super) fn classify(e: tokio_postgres::Error) -> BackendError {
    if let Some(code) = e.code() {
        if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
        {
            return BackendError::Conflict;
        }
        if *code == SqlState::QUERY_CANCELED
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || code.code().starts_with("08")
        {
            return BackendError::Unavailable(describe(&e));
        }
        return BackendError::Engine(describe(&e));
    }
    // No SQLSTATE: the connection itself failed (closed, I/O, TLS).
    BackendError::Unavailable(describe(&e))
}

/// The server's own words for a database error (tokio-postgres's Display
/// says only "db error"), else the client's.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => e.to_string(),
        deadpool_postgres::PoolError::Timeout(kind) => {
            format!("no database connection within the time limit ({kind:?})")
        }
        other => other.to_string(),
    }
}

/// Records schema `version` as the database's (the test of the refusal of
/// a schema newer than this binary).
#[cfg(test)]
pub(super) async fn force_schema_version(engine: &super::Backend, version: i32) {
    let super::Backend::Postgres(pg) = engine else {
        panic!("not a PostgreSQL engine");
    };
    schema::force_version(pg, version)
        .await
        .expect("set the schema version");
}
