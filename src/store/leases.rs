//! Leases: a named claim on some work or resource (a queue entry's
//! delivery, a slot of a destination's connection limit, a POP3 maildrop),
//! held by one holder until a deadline, under `L/<name>` in `Space::Meta`.
//! This is how several nodes sharing one database divide work among
//! themselves with nothing but the seam's conditional writes: a lease is
//! taken only if the record is absent, lapsed or already the taker's, and
//! renewed or dropped only while it is still the holder's (each write
//! requires the record as read). A holder that dies simply stops renewing;
//! its lease lapses and the work is taken over. No advisory lock, no
//! notification: portable to any engine behind the seam.
//!
//! Deadlines are wall-clock milliseconds, so the nodes' clocks must agree
//! to well within a lease's length (NTP does).

use super::backend::{Batch, KeyRange, ScanOrder, Space};
use super::{Store, StoreError, decode, encode};
use crate::clock::now_ms;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A lease record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Who holds it (a node id, or a node id and a session).
    pub holder: String,
    /// Unix milliseconds after which it has lapsed.
    pub until_ms: i64,
    /// Tells this taking of the lease from any other (a holder that took
    /// it again holds a new one; the old one can no longer be renewed).
    #[serde(default)]
    pub token: u64,
}

/// A lease this process holds: its name and the record it last wrote.
#[derive(Debug, Clone)]
pub struct Lease {
    key: Vec<u8>,
    written: Vec<u8>,
    pub record: LeaseRecord,
}

impl Lease {
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.key[LEASE_PREFIX.len()..]).unwrap_or("")
    }
}

const LEASE_PREFIX: &[u8] = b"L/";

fn lease_key(name: &str) -> Vec<u8> {
    let mut k = LEASE_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Store {
    /// Whether other processes may share this store (a database engine):
    /// then work is divided with leases and changes made elsewhere are
    /// polled for. sled is held by one process alone.
    pub fn is_shared(&self) -> bool {
        self.engine_name() != "sled"
    }

    /// Takes lease `name` for `holder` until `ttl` from now, if it is free,
    /// lapsed or already `holder`'s; None: someone else holds it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let key = lease_key(name);
        let backend = &self.inner.backend;
        self.attempt(|| async {
            let old = backend.get(Space::Meta, &key).await?;
            if let Some(v) = &old {
                let held: LeaseRecord = decode("lease", v)?;
                if held.holder != holder && held.until_ms > now_ms() {
                    return Ok(None);
                }
            }
            let record = LeaseRecord {
                holder: holder.to_string(),
                until_ms: now_ms().saturating_add(ttl_ms(ttl)),
                token: rand::random(),
            };
            let written = encode(&record);
            let mut batch = Batch::new();
            batch.require(Space::Meta, key.clone(), old.as_deref());
            batch.put(Space::Meta, key.clone(), written.clone());
            backend.commit(batch).await?;
            Ok(Some(Lease {
                key: key.clone(),
                written,
                record,
            }))
        })
        .await
    }

    /// Lease `name` as written for `holder` with at least `left` to run,
    /// read and not written: the work is already this holder's (a queue
    /// entry leased by the write that queued it). None: take it instead.
    pub async fn adopt_lease(
        &self,
        name: &str,
        holder: &str,
        left: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let key = lease_key(name);
        let Some(written) = self.inner.backend.get(Space::Meta, &key).await? else {
            return Ok(None);
        };
        let record: LeaseRecord = decode("lease", &written)?;
        if record.holder != holder || record.until_ms < now_ms().saturating_add(ttl_ms(left)) {
            return Ok(None);
        }
        Ok(Some(Lease {
            key,
            written,
            record,
        }))
    }

    /// Adds to `batch` a new lease `name` for `holder`, `ttl` from now
    /// (written with the work it guards, so nobody can take it between).
    pub(super) fn lease_in(&self, batch: &mut Batch, name: &str, holder: &str, ttl: Duration) {
        let record = LeaseRecord {
            holder: holder.to_string(),
            until_ms: now_ms().saturating_add(ttl_ms(ttl)),
            token: rand::random(),
        };
        batch.put(Space::Meta, lease_key(name), encode(&record));
    }

    /// Extends a lease held here by `ttl` from now. False: it was lost
    /// (lapsed and taken by another holder, or dropped).
    pub async fn renew_lease(&self, lease: &mut Lease, ttl: Duration) -> Result<bool, StoreError> {
        let record = LeaseRecord {
            holder: lease.record.holder.clone(),
            until_ms: now_ms().saturating_add(ttl_ms(ttl)),
            token: lease.record.token,
        };
        let written = encode(&record);
        let (key, held) = (&lease.key, &lease.written);
        // A conflict is read again (as in `drop_lease`): the lease is lost
        // only when it is no longer as written here, not when PostgreSQL
        // failed the write set to serialize beside another writer.
        let renewed = self
            .attempt(|| async {
                let now = self.inner.backend.get(Space::Meta, key).await?;
                if now.as_deref() != Some(held.as_slice()) {
                    return Ok(false);
                }
                let mut batch = Batch::new();
                batch.require(Space::Meta, key.clone(), Some(held));
                batch.put(Space::Meta, key.clone(), written.clone());
                self.inner.backend.commit(batch).await?;
                Ok(true)
            })
            .await?;
        if renewed {
            lease.written = written;
            lease.record = record;
        }
        Ok(renewed)
    }

    /// Gives a lease up (nothing if it was lost meanwhile).
    pub async fn drop_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        // A conflict is read again and retried: on PostgreSQL a write set
        // can fail to serialize beside another writer of the same row
        // without the lease having changed hands, and a lease left behind
        // holds its name until it lapses (a POP3 mailbox locked for a
        // minute after its session logged out). Once another holder has
        // it, the read finds that and there is nothing left to delete.
        self.attempt(|| async {
            let mut batch = Batch::new();
            self.drop_lease_in(&mut batch, lease).await?;
            if !batch.is_empty() {
                self.inner.backend.commit(batch).await?;
            }
            Ok(())
        })
        .await
    }

    /// Adds the lease's release to a write set: deleted if it is still as
    /// written here (read now, so a lease another holder took over after
    /// it lapsed is left to them, and the write set does not fail for it).
    pub(super) async fn drop_lease_in(
        &self,
        batch: &mut Batch,
        lease: &Lease,
    ) -> Result<(), StoreError> {
        let now = self.inner.backend.get(Space::Meta, &lease.key).await?;
        if now.as_deref() == Some(lease.written.as_slice()) {
            batch.require(Space::Meta, lease.key.clone(), now.as_deref());
            batch.delete(Space::Meta, lease.key.clone());
        }
        Ok(())
    }

    /// The live holder of lease `name`, if any.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<LeaseRecord>, StoreError> {
        match self
            .inner
            .backend
            .get(Space::Meta, &lease_key(name))
            .await?
        {
            Some(v) => {
                let r: LeaseRecord = decode("lease", &v)?;
                Ok((r.until_ms > now_ms()).then_some(r))
            }
            None => Ok(None),
        }
    }

    /// Every live lease whose name starts with `prefix`: (name, record).
    pub async fn leases(&self, prefix: &str) -> Result<Vec<(String, LeaseRecord)>, StoreError> {
        let found = self
            .inner
            .backend
            .scan(
                Space::Meta,
                &KeyRange::prefix(&lease_key(prefix)),
                ScanOrder::ALL,
            )
            .await?;
        let now = now_ms();
        let mut out = Vec::new();
        for (k, v) in found {
            let r: LeaseRecord = decode("lease", &v)?;
            if r.until_ms > now {
                let name = String::from_utf8_lossy(&k[LEASE_PREFIX.len()..]).into_owned();
                out.push((name, r));
            }
        }
        Ok(out)
    }

    /// Keeps a lease alive from a task of its own (renewed every third of
    /// `ttl`) until the returned guard is dropped or released.
    pub fn keep_lease(&self, lease: Lease, ttl: Duration) -> KeptLease {
        let (tx, rx) = tokio::sync::watch::channel(lease.clone());
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut lease = lease;
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew_lease(&mut lease, ttl).await {
                    Ok(true) => {
                        let _ = tx.send(lease.clone());
                    }
                    Ok(false) => {
                        tracing::warn!(lease = lease.name(), "lease lost to another holder");
                        return;
                    }
                    // A database hiccup: try again at the next turn (the
                    // lease lasts three turns).
                    Err(e) => tracing::warn!(lease = lease.name(), "renewing a lease failed: {e}"),
                }
            }
        });
        KeptLease {
            store: self.clone(),
            current: rx,
            task: Some(task),
        }
    }
}

/// A lease being renewed in the background; dropping it gives it up.
pub struct KeptLease {
    store: Store,
    current: tokio::sync::watch::Receiver<Lease>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl KeptLease {
    /// Whether it is still being renewed (not lost to another holder).
    pub fn is_kept(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops renewing; returns the lease as last written, to be dropped
    /// with the write set that ends the work (`drop_lease_in`).
    pub fn stop(mut self) -> Lease {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.current.borrow().clone()
    }
}

impl Drop for KeptLease {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return; // stopped: the caller drops it
        };
        task.abort();
        let lease = self.current.borrow().clone();
        let store = self.store.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = store.drop_lease(&lease).await {
                    tracing::warn!(lease = lease.name(), "giving a lease up failed: {e}");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `op` while another session has rewritten the row of lease
    /// `name` with the same bytes and holds its lock, and lets go once `op`
    /// waits for that lock: PostgreSQL then fails `op`'s write set to
    /// serialize ("concurrent update") though the lease did not change.
    async fn beside_a_writer_of_its_row<T: Send + 'static>(
        server: &crate::testing::postgres::PrivatePostgres,
        name: &str,
        op: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let other = server.session().await;
        other.batch_execute("BEGIN").await.unwrap();
        let rewritten = other
            .execute(
                "UPDATE tern_kv SET value = value WHERE space = 0 AND key = $1",
                &[&lease_key(name)],
            )
            .await
            .unwrap();
        assert_eq!(rewritten, 1);
        let op = tokio::spawn(op);
        crate::testing::postgres::until_a_lock_wait(&other, "the lease's write").await;
        other.batch_execute("COMMIT").await.unwrap();
        op.await.unwrap()
    }

    /// A lease renewed, then given up, each while another session writes
    /// its row: renewing still renews (it is not reported lost), and
    /// giving up still deletes it (it is not left to lapse, which kept a
    /// POP3 mailbox locked for a minute after logout).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_renewed_or_given_up_beside_another_writer_of_its_row() {
        let server = crate::testing::postgres::PrivatePostgres::start();
        let store = Store::on(server.engine(|_| {}).await).await.unwrap();
        let ttl = Duration::from_secs(60);
        let lease = store
            .take_lease("pop3/ann", "node-a#1", ttl)
            .await
            .unwrap()
            .expect("a free lease");

        let renewing = {
            let (store, mut lease) = (store.clone(), lease.clone());
            async move {
                let renewed = store.renew_lease(&mut lease, ttl).await;
                (renewed, lease)
            }
        };
        let (renewed, lease) = beside_a_writer_of_its_row(&server, "pop3/ann", renewing).await;
        assert!(renewed.expect("renewed"), "reported lost");
        assert_eq!(
            store
                .lease_holder("pop3/ann")
                .await
                .unwrap()
                .map(|r| r.until_ms),
            Some(lease.record.until_ms),
            "the renewal was written"
        );

        let giving_up = {
            let store = store.clone();
            async move { store.drop_lease(&lease).await }
        };
        beside_a_writer_of_its_row(&server, "pop3/ann", giving_up)
            .await
            .expect("given up");
        assert!(
            store.lease_holder("pop3/ann").await.unwrap().is_none(),
            "the lease stayed behind"
        );
        // Another holder may take the name at once.
        assert!(
            store
                .take_lease("pop3/ann", "node-b#2", ttl)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn one_holder_at_a_time_until_it_lapses_or_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let long = Duration::from_secs(60);
        let a = store.take_lease("q/1", "node-a", long).await.unwrap();
        let a = a.expect("free lease taken");
        assert!(
            store
                .take_lease("q/1", "node-b", long)
                .await
                .unwrap()
                .is_none()
        );
        // The holder itself may take it again (a restarted node).
        assert!(
            store
                .take_lease("q/1", "node-a", long)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store.lease_holder("q/1").await.unwrap().unwrap().holder,
            "node-a"
        );
        // `a` was superseded by the re-take: renewing it finds it changed.
        let mut stale = a;
        assert!(!store.renew_lease(&mut stale, long).await.unwrap());
        let mut fresh = store
            .take_lease("q/1", "node-a", long)
            .await
            .unwrap()
            .unwrap();
        assert!(store.renew_lease(&mut fresh, long).await.unwrap());
        store.drop_lease(&fresh).await.unwrap();
        assert!(store.lease_holder("q/1").await.unwrap().is_none());
        // A lapsed lease is free for anyone.
        let short = store
            .take_lease("q/2", "node-a", Duration::from_millis(0))
            .await
            .unwrap()
            .unwrap();
        let b = store
            .take_lease("q/2", "node-b", long)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.record.holder, "node-b");
        // Dropping the lapsed one leaves b's in place.
        store.drop_lease(&short).await.unwrap();
        assert_eq!(
            store.lease_holder("q/2").await.unwrap().unwrap().holder,
            "node-b"
        );
        let live = store.leases("q/").await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].0, "q/2");
    }
}
