//! Abuse limits that count across sessions: connections open per client
//! address (`limits.max_connections_per_client`; clients in
//! `relay.trusted_networks` are exempt, as Postfix exempts `$mynetworks`)
//! and sessions logged in per user (`limits.max_sessions_per_user`). Each
//! admission is a guard that gives its place back when dropped, so a
//! session that ends in any way (QUIT, error, timeout, panic) frees it.
//! Per-session limits (commands, errors) live in the sessions; login
//! failures per address in `auth.rs`.

use crate::config::in_networks;
use ipnet::IpNet;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
#[derive(Debug)]
pub struct Limits {
    clients: Counter<IpAddr>,
    users: Counter<String>,
    /// Client networks no per-address count applies to.
    exempt: Vec<IpNet>,
}

/// A connection's place in its client address's count (None: an exempt
/// client, not counted).
#[derive(Debug)]
pub struct ClientSlot {
    limits: Arc<Limits>,
    ip: Option<IpAddr>,
}

/// A logged-in session's place in its user's count.
#[derive(Debug)]
pub struct UserSlot {
    limits: Arc<Limits>,
    user: String,
}

impl Limits {
    pub fn new(max_per_client: usize, max_per_user: usize, exempt: Vec<IpNet>) -> Arc<Limits> {
        Arc::new(Limits {
            clients: Counter::new(max_per_client),
            users: Counter::new(max_per_user),
            exempt,
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

    /// A place for one more logged-in session of `user`, or None at the limit.
    pub fn user(self: &Arc<Limits>, user: &str) -> Option<UserSlot> {
        let user = user.to_ascii_lowercase();
        self.users.take(&user).then(|| UserSlot {
            limits: self.clone(),
            user,
        })
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

    #[test]
    fn slots_are_counted_and_given_back() {
        let limits = Limits::new(2, 1, Vec::new());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let a = limits.client(ip).unwrap();
        let _b = limits.client(ip).unwrap();
        assert!(limits.client(ip).is_none());
        assert!(limits.client(other).is_some());
        drop(a);
        assert!(limits.client(ip).is_some());
        let u = limits.user("Bob@x.test").unwrap();
        assert!(limits.user("bob@X.test").is_none());
        assert_eq!(limits.sessions_of("bob@x.test"), 1);
        drop(u);
        assert_eq!(limits.sessions_of("bob@x.test"), 0);
        assert!(limits.user("bob@x.test").is_some());
    }

    #[test]
    fn exempt_networks_are_not_counted() {
        let limits = Limits::new(1, 1, vec!["127.0.0.0/8".parse().unwrap()]);
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
