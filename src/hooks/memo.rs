//! Verdicts a policy plugin said hold for a client's address for a while
//! (`verdicts.same-for-client`, the way postscreen remembers clients that
//! passed its DNSBL test): per plugin entry, by hook, client address and
//! the listener's address, each with its expiry. `dispatch.rs` asks here
//! before it calls a policy hook, and a hit gives the remembered verdict
//! without taking an instance or calling the plugin. Bounded: when full,
//! expired entries are dropped, and if none had expired a new verdict is
//! not remembered (the plugin is simply called as before).

use super::Verdict;
use super::declared::Hook;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest a verdict is remembered (a day).
pub const MAX_SECONDS: u32 = 86_400;
/// Most verdicts remembered per plugin entry.
const MAX_ENTRIES: usize = 65_536;

/// What a remembered verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub hook: Hook,
    pub client: IpAddr,
    /// The listener's address (the session's local address).
    pub local: SocketAddr,
}

struct Entry {
    verdict: Verdict,
    at: Instant,
    until: Instant,
}

/// A remembered verdict, found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub verdict: Verdict,
    /// When the plugin gave it.
    pub at: Instant,
    /// How long it was given for.
    pub lasts: Duration,
}

/// One plugin entry's remembered verdicts.
#[derive(Default)]
pub struct Memo {
    /// Anything was ever remembered: plugins that never call
    /// `same-for-client` cost a load, not a lock.
    used: AtomicBool,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Memo {
    /// The verdict remembered for `key` at `now`, unless none or expired.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Hit> {
        if !self.used.load(Ordering::Relaxed) {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(key)?;
        if entry.until <= now {
            entries.remove(key);
            return None;
        }
        Some(Hit {
            verdict: entry.verdict.clone(),
            at: entry.at,
            lasts: entry.until.saturating_duration_since(entry.at),
        })
    }

    /// Remembers `verdict` for `key` for `seconds` (capped at a day; 0
    /// remembers nothing). Whether it was remembered.
    pub fn put(&self, key: Key, verdict: Verdict, seconds: u32, now: Instant) -> bool {
        let seconds = seconds.min(MAX_SECONDS);
        if seconds == 0 {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= MAX_ENTRIES {
                return false;
            }
        }
        let until = now + Duration::from_secs(u64::from(seconds));
        entries.insert(
            key,
            Entry {
                verdict,
                at: now,
                until,
            },
        );
        self.used.store(true, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Reply;

    fn key(hook: Hook, client: &str) -> Key {
        Key {
            hook,
            client: client.parse().expect("address"),
            local: "127.0.0.1:25".parse().expect("address"),
        }
    }

    #[test]
    fn a_verdict_holds_for_its_client_hook_and_listener_until_it_expires() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let k = key(Hook::Connect, "192.0.2.1");
        assert_eq!(memo.get(&k, t0), None, "nothing remembered yet");
        assert!(memo.put(k, Verdict::Continue, 300, t0));
        let later = t0 + Duration::from_secs(299);
        let hit = memo.get(&k, later).expect("remembered");
        assert_eq!(hit.verdict, Verdict::Continue);
        assert_eq!(later - hit.at, Duration::from_secs(299));
        assert_eq!(hit.lasts, Duration::from_secs(300));
        // Another client, hook or listener is not covered.
        assert_eq!(memo.get(&key(Hook::Connect, "192.0.2.2"), later), None);
        assert_eq!(memo.get(&key(Hook::RcptTo, "192.0.2.1"), later), None);
        let other_listener = Key {
            local: "127.0.0.1:587".parse().expect("address"),
            ..k
        };
        assert_eq!(memo.get(&other_listener, later), None);
        // Expired: gone.
        assert_eq!(memo.get(&k, t0 + Duration::from_secs(300)), None);
        assert_eq!(memo.get(&k, t0), None, "an expired entry is removed");
    }

    #[test]
    fn zero_seconds_remembers_nothing_and_a_day_is_the_most() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let k = key(Hook::RcptTo, "2001:db8::1");
        assert!(!memo.put(k, Verdict::Continue, 0, t0));
        assert_eq!(memo.get(&k, t0), None);
        let refusal = Verdict::Reject(Reply::new(554, "5.7.1", "listed"));
        assert!(memo.put(k, refusal.clone(), u32::MAX, t0));
        let day = Duration::from_secs(u64::from(MAX_SECONDS));
        assert_eq!(
            memo.get(&k, t0 + day - Duration::from_secs(1))
                .map(|h| h.verdict),
            Some(refusal)
        );
        assert_eq!(memo.get(&k, t0 + day), None);
    }

    #[test]
    fn when_full_expired_entries_make_room_and_live_ones_are_kept() {
        let memo = Memo::default();
        let t0 = Instant::now();
        let client = |n: usize| -> IpAddr {
            std::net::Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + n as u128)
                .into()
        };
        let at = |n: usize| Key {
            hook: Hook::Connect,
            client: client(n),
            local: "127.0.0.1:25".parse().expect("address"),
        };
        // Half expire after 10 s, half after 100 s.
        for n in 0..MAX_ENTRIES {
            let secs = if n % 2 == 0 { 10 } else { 100 };
            assert!(memo.put(at(n), Verdict::Continue, secs, t0));
        }
        // Full of live entries: a new one is not remembered.
        assert!(!memo.put(at(MAX_ENTRIES), Verdict::Continue, 10, t0));
        assert!(memo.get(&at(0), t0).is_some());
        // Once half have expired, there is room, and the rest stay.
        let later = t0 + Duration::from_secs(11);
        assert!(memo.put(at(MAX_ENTRIES), Verdict::Continue, 10, later));
        assert!(memo.get(&at(MAX_ENTRIES), later).is_some());
        assert!(memo.get(&at(1), later).is_some());
        assert!(memo.get(&at(0), later).is_none());
    }
}
