//! A point-in-time view of a live store, for `tern backup` while mail keeps
//! flowing: reads through a [`Snapshot`] see every space as it was at the
//! moment it was taken, whatever is committed after. Each engine keeps it
//! its own way: PostgreSQL with one REPEATABLE READ transaction (as pg_dump
//! does), sled by recording the old value of each key written meanwhile
//! (`sled/capture.rs`). A write set committed before the snapshot is in it
//! whole, one committed after is not in it at all.

use super::{Backend, BackendError, KeyRange, KeyValues, postgres, sled};

/// The store as it was when [`Backend::snapshot`] returned.
pub struct Snapshot {
    engine: Engine,
}

enum Engine {
    Sled(sled::SledSnapshot),
    Postgres(Box<postgres::PgSnapshot>),
}

impl Backend {
    /// Takes a snapshot. On sled it waits for the write sets in flight and
    /// holds until dropped; only one at a time.
    pub async fn snapshot(&self) -> Result<Snapshot, BackendError> {
        let engine = match self {
            Backend::Sled(b) => Engine::Sled(b.snapshot()?),
            Backend::Postgres(b) => Engine::Postgres(Box::new(b.snapshot().await?)),
        };
        Ok(Snapshot { engine })
    }
}

impl Snapshot {
    /// About `limit` keys of `range` from its start, in key order, and where
    /// the next page starts (None: the range is done). A page may be empty
    /// before the end.
    pub async fn page(
        &self,
        space: super::Space,
        range: &KeyRange,
        limit: usize,
    ) -> Result<(KeyValues, Option<Vec<u8>>), BackendError> {
        match &self.engine {
            Engine::Sled(s) => s.page(space, range, limit),
            Engine::Postgres(s) => s.page(space, range, limit).await,
        }
    }

    /// Lets the snapshot go (PostgreSQL: ends its transaction).
    pub async fn end(self) -> Result<(), BackendError> {
        match self.engine {
            Engine::Sled(s) => {
                drop(s);
                Ok(())
            }
            Engine::Postgres(s) => (*s).end().await,
        }
    }
}
