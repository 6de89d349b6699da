//! The database schema, versioned: `tern_schema` holds the version this
//! database is at; on open, every migration above it runs in one
//! SERIALIZABLE transaction together with the version bump, so nodes that
//! start at once migrate once (the others conflict, retry, and find the
//! work done). A database at a version newer than this binary knows is
//! refused with both versions named: an older node must never write a
//! layout it does not understand.

use super::super::{BackendError, retry};
use super::{PostgresBackend, classify};
use tokio_postgres::IsolationLevel;

/// The version this binary writes and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// Migration N takes a database from version N-1 to N.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: the key-value table of every space, and the id sequence.
    "CREATE TABLE tern_kv (
         space SMALLINT NOT NULL,
         key BYTEA NOT NULL,
         value BYTEA NOT NULL,
         PRIMARY KEY (space, key)
     );
     CREATE SEQUENCE tern_ids START 1;",
];

pub(super) async fn migrate(backend: &PostgresBackend) -> Result<(), BackendError> {
    retry(|| migrate_once(backend)).await
}

async fn migrate_once(backend: &PostgresBackend) -> Result<(), BackendError> {
    let mut client = backend.client().await?;
    // Outside the transaction, so that its creation is visible at once to
    // every node; a concurrent creation is a conflict and is retried.
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS tern_schema (
                 id INT PRIMARY KEY CHECK (id = 1),
                 version INT NOT NULL
             )",
        )
        .await
        .map_err(classify_ddl)?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .start()
        .await
        .map_err(classify)?;
    let row = tx
        .query_opt("SELECT version FROM tern_schema WHERE id = 1", &[])
        .await
        .map_err(classify)?;
    let current: i32 = match row {
        Some(r) => r.try_get(0).map_err(classify)?,
        None => 0,
    };
    if current > SCHEMA_VERSION {
        return Err(BackendError::Open(format!(
            "the database's schema is version {current}, newer than this tern knows \
             (version {SCHEMA_VERSION}); upgrade tern on this node"
        )));
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tracing::info!(version = i + 1, "migrating the PostgreSQL schema");
        tx.batch_execute(sql).await.map_err(classify_ddl)?;
    }
    tx.execute(
        "INSERT INTO tern_schema (id, version) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(classify)?;
    tx.commit().await.map_err(classify)
}

/// DDL racing another node's: "already exists" is a conflict to retry.
fn classify_ddl(e: tokio_postgres::Error) -> BackendError {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(code)
            if *code == SqlState::DUPLICATE_TABLE
                || *code == SqlState::DUPLICATE_OBJECT
                || *code == SqlState::UNIQUE_VIOLATION =>
        {
            BackendError::Conflict
        }
        _ => classify(e),
    }
}

/// Sets the recorded version (tests of the "newer schema" refusal).
#[cfg(test)]
pub(crate) async fn force_version(
    backend: &PostgresBackend,
    version: i32,
) -> Result<(), BackendError> {
    let client = backend.client().await?;
    client
        .execute(
            "UPDATE tern_schema SET version = $1 WHERE id = 1",
            &[&version],
        )
        .await
        .map_err(classify)?;
    Ok(())
}
