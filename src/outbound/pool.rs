//! Connection reuse: after a transaction, a healthy session (RSET answered)
//! waits here, keyed by next hop, for the next message to the same place —
//! like Postfix's connection cache. Idle sessions are closed after a short
//! time; a reused session that turns out dead costs one retry on a new one.

use super::client::ClientSession;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct ConnectionPool {
    idle: Mutex<HashMap<String, Vec<(ClientSession, Instant)>>>,
    max_idle_per_hop: usize,
    idle_time: Duration,
}

impl ConnectionPool {
    pub fn new(max_idle_per_hop: usize, idle_time: Duration) -> ConnectionPool {
        ConnectionPool {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_hop,
            idle_time,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(ClientSession, Instant)>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session to `key` that has not idled too long, if any.
    pub fn take(&self, key: &str) -> Option<ClientSession> {
        let mut map = self.lock();
        let list = map.get_mut(key)?;
        while let Some((session, since)) = list.pop() {
            if since.elapsed() < self.idle_time {
                return Some(session);
            }
            // Too old: dropped (the peer may have closed it already).
        }
        None
    }

    /// Parks a session; returns it if there is no room (the caller closes it).
    pub fn give(&self, key: &str, session: ClientSession) -> Option<ClientSession> {
        let mut map = self.lock();
        let list = map.entry(key.to_string()).or_default();
        if list.len() >= self.max_idle_per_hop {
            return Some(session);
        }
        list.push((session, Instant::now()));
        None
    }

    /// Removes sessions that idled too long, for the caller to close.
    pub fn expired(&self) -> Vec<ClientSession> {
        let mut map = self.lock();
        let mut out = Vec::new();
        for list in map.values_mut() {
            let (old, fresh): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|(_, t)| t.elapsed() >= self.idle_time);
            *list = fresh;
            out.extend(old.into_iter().map(|(s, _)| s));
        }
        map.retain(|_, l| !l.is_empty());
        out
    }

    /// Every idle session (at shutdown).
    pub fn drain(&self) -> Vec<ClientSession> {
        let mut map = self.lock();
        map.drain()
            .flat_map(|(_, l)| l.into_iter().map(|(s, _)| s))
            .collect()
    }
}
