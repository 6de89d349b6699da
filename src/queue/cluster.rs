//! What the queue does when several nodes share the store (a database
//! engine; `Store::is_shared`): a node delivers an entry only while it
//! holds the entry's lease (`store/leases.rs`), renewed while the delivery
//! runs and given up in the write set that records its outcome (the node
//! that accepted an entry holds it from the write that queued it); each
//! node keeps a heartbeat lease `node/<node_id>`, and divides
//! `queue.max_per_destination` by the nodes alive, so the limit holds for
//! the cluster at no cost per message; and every `queue.lease` a node reads
//! the queue for entries it does not know of (accepted by another node
//! that died, or flushed from another node's command line). The retry schedule is the entries' own `next_attempt`,
//! so it is the cluster's. With sled (one process) none of this runs.

use crate::store::{KeptLease, Store, StoreError, delivery_lease};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// A node's claims on shared work.
pub(super) struct Claims {
    store: Store,
    node: String,
    ttl: Duration,
    shared: bool,
    /// This node's own lease `node/<node_id>`: it is alive.
    heartbeat: Mutex<Option<KeptLease>>,
    /// Nodes alive at the last scan (at least 1).
    live: AtomicUsize,
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
            heartbeat: Mutex::new(None),
            live: AtomicUsize::new(1),
        }
    }

    pub(super) fn shared(&self) -> bool {
        self.shared
    }

    /// How often to look for work other nodes left (a lease's length).
    pub(super) fn scan_interval(&self) -> Duration {
        self.ttl
    }

    /// Claims entry `id`'s delivery. The node that accepted an entry
    /// holds its lease from the write that queued it, so its first pass
    /// only reads the lease (`adopt_lease`).
    pub(super) async fn claim(&self, id: u64) -> Result<Claim, StoreError> {
        if !self.shared {
            return Ok(Claim::Mine(None));
        }
        let name = delivery_lease(id);
        let lease = match self
            .store
            .adopt_lease(&name, &self.node, self.ttl / 2)
            .await?
        {
            Some(lease) => Some(lease),
            None => self.store.take_lease(&name, &self.node, self.ttl).await?,
        };
        Ok(match lease {
            Some(lease) => Claim::Mine(Some(self.store.keep_lease(lease, self.ttl))),
            None => Claim::Elsewhere,
        })
    }

    /// Keeps this node's heartbeat lease and counts the nodes alive
    /// (every third of a lease). A node that stops renewing drops out of
    /// the count when its lease lapses. When this call (re)started the
    /// heartbeat, says how many other nodes are alive: Some(n).
    pub(super) async fn heartbeat(&self) -> Result<Option<usize>, StoreError> {
        if !self.shared {
            return Ok(None);
        }
        let alive = self
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(KeptLease::is_kept);
        if !alive {
            let name = format!("node/{}", self.node);
            if let Some(lease) = self.store.take_lease(&name, &self.node, self.ttl).await? {
                let kept = self.store.keep_lease(lease, self.ttl);
                *self.heartbeat.lock().unwrap_or_else(|p| p.into_inner()) = Some(kept);
            }
        }
        let live = self.store.leases("node/").await?.len().max(1);
        self.live.store(live, Ordering::Relaxed);
        Ok((!alive).then_some(live - 1))
    }

    /// This node's share of a cluster-wide limit: `max` divided among the
    /// nodes alive (at least 1 each), so the nodes together stay within it
    /// (unless there are more nodes than `max`).
    pub(super) fn share(&self, max: usize) -> usize {
        (max / self.live.load(Ordering::Relaxed).max(1)).max(1)
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

/// Deliveries in flight per destination on this node, within a limit
/// that may change as nodes come and go (`Claims::share`).
#[derive(Default)]
pub(super) struct Gates {
    open: Mutex<HashMap<String, usize>>,
    freed: Notify,
}

/// A place in a destination's gate; given back when dropped.
pub(super) struct Passage<'a> {
    gates: &'a Gates,
    destination: String,
}

impl Gates {
    /// Waits until fewer than `limit()` deliveries to `destination` run
    /// here, then takes a place.
    pub(super) async fn enter(&self, destination: &str, limit: impl Fn() -> usize) -> Passage<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                let n = open.entry(destination.to_string()).or_insert(0);
                if *n < limit().max(1) {
                    *n += 1;
                    return Passage {
                        gates: self,
                        destination: destination.to_string(),
                    };
                }
            }
            freed.await;
        }
    }
}

impl Drop for Passage<'_> {
    fn drop(&mut self) {
        let mut open = self.gates.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.destination) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.destination);
            }
        }
        drop(open);
        self.gates.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_gate_holds_its_limit_and_lets_the_next_in_when_one_leaves() {
        let gates = Arc::new(Gates::default());
        let a = gates.enter("d.test", || 2).await;
        let _b = gates.enter("d.test", || 2).await;
        let other = gates.enter("e.test", || 2).await;
        drop(other);
        let g = gates.clone();
        let third = tokio::spawn(async move {
            let _p = g.enter("d.test", || 2).await;
        });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "a third delivery waits");
        drop(a);
        third.await.expect("let in once one left");
    }
}
