//! Connection reuse: after a transaction, a healthy session (RSET answered)
//! waits here, keyed by next hop, for the next message to the same place —
//! like Postfix's connection cache. Idle sessions are closed after a short
//! time; a reused session that turns out dead costs one retry on a new one.

use super::client::ClientSession;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle sessions by next hop, each hop's list in the order they were
/// parked (the longest idle first). Generic over the session for tests.
pub struct ConnectionPool<S = ClientSession> {
    idle: Mutex<HashMap<String, Vec<(S, Instant)>>>,
    max_idle_per_hop: usize,
    idle_time: Duration,
}

impl<S> ConnectionPool<S> {
    pub fn new(max_idle_per_hop: usize, idle_time: Duration) -> ConnectionPool<S> {
        ConnectionPool {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_hop,
            idle_time,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(S, Instant)>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session to `key` that has not idled too long, if any.
    pub fn take(&self, key: &str) -> Option<S> {
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
    pub fn give(&self, key: &str, session: S) -> Option<S> {
        let mut map = self.lock();
        // The hop's key is made only for a hop seen for the first time.
        match map.get_mut(key) {
            Some(list) if list.len() < self.max_idle_per_hop => {
                list.push((session, Instant::now()));
            }
            None if self.max_idle_per_hop > 0 => {
                map.insert(key.to_string(), vec![(session, Instant::now())]);
            }
            _ => return Some(session),
        }
        None
    }

    /// Removes sessions that idled too long, for the caller to close.
    /// The queue asks after every event, so when nothing has idled too
    /// long this moves and allocates nothing: a hop's list is in parking
    /// order, and only its front can be too old.
    pub fn expired(&self) -> Vec<S> {
        self.expired_at(Instant::now())
    }

    fn expired_at(&self, now: Instant) -> Vec<S> {
        let mut map = self.lock();
        let mut out = Vec::new();
        map.retain(|_, list| {
            let old = list.partition_point(|(_, since)| {
                now.saturating_duration_since(*since) >= self.idle_time
            });
            out.extend(list.drain(..old).map(|(s, _)| s));
            !list.is_empty()
        });
        out
    }

    /// Every idle session (at shutdown).
    pub fn drain(&self) -> Vec<S> {
        let mut map = self.lock();
        map.drain()
            .flat_map(|(_, l)| l.into_iter().map(|(s, _)| s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of numbered sessions, per hop, parked `at` seconds after
    /// `base` (in the future, so that `take` finds them all fresh).
    fn pool(base: Instant, hops: &[(&str, &[(u32, u64)])]) -> ConnectionPool<u32> {
        let p = ConnectionPool::new(8, Duration::from_secs(60));
        for (hop, sessions) in hops {
            let list = sessions
                .iter()
                .map(|&(s, at)| (s, base + Duration::from_secs(at)))
                .collect();
            p.lock().insert(hop.to_string(), list);
        }
        p
    }

    #[test]
    fn expired_takes_only_the_sessions_idle_too_long_and_forgets_empty_hops() {
        let base = Instant::now();
        let p = pool(
            base,
            &[
                ("a", &[(1, 0), (2, 100), (3, 990)]),
                ("b", &[(4, 10)]),
                ("c", &[(5, 995)]),
            ],
        );
        let now = base + Duration::from_secs(1000);
        let mut old = p.expired_at(now);
        old.sort();
        assert_eq!(old, vec![1, 2, 4]);
        assert!(p.expired_at(now).is_empty());
        assert!(!p.lock().contains_key("b"));
        assert_eq!(p.take("a"), Some(3));
        assert_eq!(p.take("a"), None);
        assert_eq!(p.take("c"), Some(5));
    }

    #[test]
    fn give_parks_up_to_the_limit_and_take_returns_the_newest() {
        let p: ConnectionPool<u32> = ConnectionPool::new(2, Duration::from_secs(60));
        assert_eq!(p.give("a", 1), None);
        assert_eq!(p.give("a", 2), None);
        assert_eq!(p.give("a", 3), Some(3));
        assert_eq!(p.take("a"), Some(2));
        assert_eq!(p.take("a"), Some(1));
        assert_eq!(p.take("a"), None);
        let none: ConnectionPool<u32> = ConnectionPool::new(0, Duration::from_secs(60));
        assert_eq!(none.give("a", 1), Some(1));
        assert!(none.lock().is_empty());
    }
}
