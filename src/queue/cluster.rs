//! What the queue does when several nodes share the store (a database
//! engine; `Store::is_shared`): a node delivers an entry only while it
//! holds the entry's lease (`store/leases.rs`), renewed while the delivery
//! runs and given up in the write set that records its outcome; a
//! destination's connection limit is counted with one lease per slot, so
//! `queue.max_per_destination` holds for the cluster; and every
//! `queue.lease` a node reads the queue for entries it does not know of
//! (accepted by another node that died, or flushed from another node's
//! command line). The retry schedule is the entries' own `next_attempt`,
//! so it is the cluster's. With sled (one process) none of this runs.

use crate::store::{KeptLease, Store, StoreError, delivery_lease};
use rand::Rng;
use std::time::Duration;

/// A node's claims on shared work.
pub(super) struct Claims {
    store: Store,
    node: String,
    ttl: Duration,
    shared: bool,
}

/// Whether this node may deliver an entry now.
pub(super) enum Claim {
    /// Yes; with a shared store, while it keeps this lease.
    Mine(Option<KeptLease>),
    /// Another node is delivering it.
    Elsewhere,
}

impl Claims {
    pub(super) fn new(store: Store, node: String, ttl: Duration) -> Claims {
        let shared = store.is_shared();
        Claims {
            store,
            node,
            ttl,
            shared,
        }
    }

    pub(super) fn shared(&self) -> bool {
        self.shared
    }

    /// How often to look for work other nodes left (a lease's length).
    pub(super) fn scan_interval(&self) -> Duration {
        self.ttl
    }

    /// Claims entry `id`'s delivery.
    pub(super) async fn claim(&self, id: u64) -> Result<Claim, StoreError> {
        if !self.shared {
            return Ok(Claim::Mine(None));
        }
        match self
            .store
            .take_lease(&delivery_lease(id), &self.node, self.ttl)
            .await?
        {
            Some(lease) => Ok(Claim::Mine(Some(self.store.keep_lease(lease, self.ttl)))),
            None => Ok(Claim::Elsewhere),
        }
    }

    /// Waits for one of `max` cluster-wide connection slots to
    /// `destination` (None with sled: the node's own semaphore suffices).
    /// Slots are tried from a random one, so nodes spread over them.
    pub(super) async fn destination_slot(
        &self,
        destination: &str,
        max: usize,
    ) -> Option<KeptLease> {
        if !self.shared {
            return None;
        }
        let max = max.max(1);
        let mut wait = Duration::from_millis(100);
        loop {
            let start = rand::rng().random_range(0..max);
            for k in (0..max).map(|n| (start + n) % max) {
                let name = format!("d/{destination}/{k}");
                match self
                    .store
                    .take_lease(&name, &self.slot_holder(), self.ttl)
                    .await
                {
                    Ok(Some(lease)) => return Some(self.store.keep_lease(lease, self.ttl)),
                    Ok(None) => {}
                    Err(e) => {
                        // The database is failing: the delivery itself will
                        // meet the same, and defer; do not wait for it here.
                        tracing::warn!(destination, "taking a connection slot failed: {e}");
                        return None;
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }

    /// A slot's holder: unique per delivery, so two deliveries of one node
    /// never share a slot (a queue lease's holder is the node itself, which
    /// may take its own lease again after a restart).
    fn slot_holder(&self) -> String {
        format!("{}#{:016x}", self.node, rand::rng().random::<u64>())
    }

    /// Entries due at some time that this node may take over: (id, due),
    /// without those another node holds a lease on now.
    pub(super) async fn unclaimed(&self) -> Result<Vec<(u64, i64)>, StoreError> {
        let held: std::collections::HashSet<String> = self
            .store
            .leases("q/")
            .await?
            .into_iter()
            .filter(|(_, r)| r.holder != self.node)
            .map(|(name, _)| name)
            .collect();
        Ok(self
            .store
            .queue_entries()
            .await?
            .into_iter()
            .filter(|e| !held.contains(&delivery_lease(e.id)))
            .filter_map(|e| e.next_attempt().map(|at| (e.id, at)))
            .collect())
    }
}
