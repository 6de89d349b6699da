//! Abuse limits that count across sessions: connections open per client
//! address (`limits.max_connections_per_client`; clients in
//! `relay.trusted_networks` are exempt, as Postfix exempts `$mynetworks`)
//! and sessions logged in per user (`limits.max_sessions_per_user`). Each
//! admission is a guard that gives its place back when dropped, so a
//! session that ends in any way (QUIT, error, timeout, panic) frees it.
//! Per-session limits (commands, errors) live in the sessions; login
//! failures per address in `auth.rs`.
//!
//! Across nodes: on a store shared with other nodes (`Store::is_shared`)
//! a user's sessions are counted for the whole cluster. A login first
//! takes its place in this process's count (refused at once if the node
//! alone is at the limit), then one store lease of its own,
//! `sess/<user>/<node>/<token>` (`store/leases.rs`), kept alive every
//! third of [`SESSION_LEASE`] and dropped at logout; the user's live leases
//! are counted after taking it, and a login that finds more than the limit
//! gives its lease back and is refused (two logins racing for the last
//! place may both be refused, never both admitted). A node that dies
//! stops renewing, and its sessions stop counting within a lease's length.
//! A login whose lease cannot be written (the database failing) is let
//! in on this node's count alone.

use crate::config::in_networks;
use crate::store::{KeptLease, Store, StoreError};
use ipnet::IpNet;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a session's lease lasts unrenewed (a dead node's sessions stop
/// counting after this).
pub const SESSION_LEASE: Duration = Duration::from_secs(60);

/// Counts holders per key, up to a maximum each.
#[derive(Debug)]
struct Counter<K: Hash + Eq + Clone> {
    max: usize,
    counts: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(max: usize) -> Counter<K> {
        Counter {
            max,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, key: &K) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return false;
        }
        *n += 1;
        true
    }

    fn give_back(&self, key: &K) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(key);
            }
        }
    }

    fn count(&self, key: &K) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(key).copied().unwrap_or(0)
    }
}

/// The shared counters.
pub struct Limits {
    clients: Counter<IpAddr>,
    users: Counter<String>,
    /// Client networks no per-address count applies to.
    exempt: Vec<IpNet>,
    /// A store shared with other nodes: sessions per user are counted
    /// there too.
    shared: Option<Store>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("clients", &self.clients)
            .field("users", &self.users)
            .field("across_nodes", &self.shared.is_some())
            .finish()
    }
}

/// A connection's place in its client address's count (None: an exempt
/// client, not counted).
#[derive(Debug)]
pub struct ClientSlot {
    limits: Arc<Limits>,
    ip: Option<IpAddr>,
}

/// A logged-in session's place in its user's count (and, on a shared
/// store, its lease; dropping the slot gives both up).
pub struct UserSlot {
    limits: Arc<Limits>,
    user: String,
    _lease: Option<KeptLease>,
}

impl std::fmt::Debug for UserSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSlot")
            .field("user", &self.user)
            .finish()
    }
}

impl Limits {
    /// The counters; `store`: count sessions per user there as well when
    /// it is shared with other nodes.
    pub fn new(
        max_per_client: usize,
        max_per_user: usize,
        exempt: Vec<IpNet>,
        store: Option<Store>,
    ) -> Arc<Limits> {
        Arc::new(Limits {
            clients: Counter::new(max_per_client),
            users: Counter::new(max_per_user),
            exempt,
            shared: store.filter(Store::is_shared),
        })
    }

    /// A place for one more connection from `ip`, or None at the limit.
    pub fn client(self: &Arc<Limits>, ip: IpAddr) -> Option<ClientSlot> {
        if in_networks(&self.exempt, ip) {
            return Some(ClientSlot {
                limits: self.clone(),
                ip: None,
            });
        }
        self.clients.take(&ip).then(|| ClientSlot {
            limits: self.clone(),
            ip: Some(ip),
        })
    }

    /// A place for one more logged-in session of `user`, or None at the
    /// limit (this node's, or on a shared store the cluster's).
    pub async fn user(self: &Arc<Limits>, user: &str) -> Option<UserSlot> {
        let user = user.to_ascii_lowercase();
        if !self.users.take(&user) {
            return None;
        }
        let mut slot = UserSlot {
            limits: self.clone(),
            user,
            _lease: None,
        };
        if let Some(store) = &self.shared {
            match cluster_place(store, &slot.user, self.users.max).await {
                Ok(Some(lease)) => slot._lease = Some(lease),
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(user = %slot.user, "counting sessions across nodes failed, this node's count stands: {e}");
                }
            }
        }
        Some(slot)
    }

    /// Connections open from `ip` now.
    pub fn connections_from(&self, ip: IpAddr) -> usize {
        self.clients.count(&ip)
    }

    /// Sessions logged in as `user` now.
    pub fn sessions_of(&self, user: &str) -> usize {
        self.users.count(&user.to_ascii_lowercase())
    }
}

/// Takes a session lease for `user` and counts the user's live ones; None
/// (the lease given back) when they are more than `max`.
async fn cluster_place(
    store: &Store,
    user: &str,
    max: usize,
) -> Result<Option<KeptLease>, StoreError> {
    let token: u64 = rand::random();
    let node = store.node();
    let prefix = format!("sess/{user}/");
    let name = format!("{prefix}{node}/{token:016x}");
    let holder = format!("{node}#{token:016x}");
    let Some(lease) = store.take_lease(&name, &holder, SESSION_LEASE).await? else {
        return Ok(None); // a fresh name: held only if the token repeated
    };
    // Kept from here on, so an error below gives it up too.
    let kept = store.keep_lease(lease, SESSION_LEASE);
    let live = store.leases(&prefix).await?.len();
    Ok((live <= max).then_some(kept))
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some(ip) = &self.ip {
            self.limits.clients.give_back(ip);
        }
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        self.limits.users.give_back(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_counted_and_given_back() {
        let limits = Limits::new(2, 1, Vec::new(), None);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let a = limits.client(ip).unwrap();
        let _b = limits.client(ip).unwrap();
        assert!(limits.client(ip).is_none());
        assert!(limits.client(other).is_some());
        drop(a);
        assert!(limits.client(ip).is_some());
        let u = limits.user("Bob@x.test").await.unwrap();
        assert!(limits.user("bob@X.test").await.is_none());
        assert_eq!(limits.sessions_of("bob@x.test"), 1);
        drop(u);
        assert_eq!(limits.sessions_of("bob@x.test"), 0);
        assert!(limits.user("bob@x.test").await.is_some());
    }

    #[test]
    fn exempt_networks_are_not_counted() {
        let limits = Limits::new(1, 1, vec!["127.0.0.0/8".parse().unwrap()], None);
        let trusted: IpAddr = "127.0.0.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.9".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| limits.client(trusted).unwrap()).collect();
        assert!(limits.client(mapped).is_some());
        assert_eq!(limits.connections_from(trusted), 0);
        drop(held);
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        let _one = limits.client(outside).unwrap();
        assert!(limits.client(outside).is_none());
    }
}
