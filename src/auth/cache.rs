//! Successful password checks remembered for a while (Dovecot's
//! `auth_cache`): IMAP clients open several connections and log in again
//! and again, and each argon2 check costs tens of milliseconds of CPU.
//!
//! What is kept is never the password: per account, the stored PHC hash
//! that was verified and an HMAC-SHA256 of (account, that hash, the
//! password) under a random key made when the process starts. A login is
//! taken from the cache only when the hash read from the store *now* is
//! byte-identical to the one verified and the digest of the password given
//! now matches, so a password change or a deleted account (here or on
//! another node sharing the store) stops it at once. Failed checks are
//! never remembered; a wrong password always costs the full check (and the
//! failure delay). Entries expire after a TTL and the least recently used
//! go first beyond the size bound.

use ring::hmac;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One account's last successful check.
struct Entry {
    /// The stored hash the password was verified against.
    stored_hash: String,
    digest: hmac::Tag,
    verified_at: Instant,
    /// Position in the use order (`Inner::order`).
    tick: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Use order: tick → account, oldest first.
    order: BTreeMap<u64, String>,
    next_tick: u64,
}

impl Inner {
    fn remove(&mut self, account: &str) {
        if let Some(e) = self.entries.remove(account) {
            self.order.remove(&e.tick);
        }
    }

    fn touch(&mut self, account: &str) {
        let tick = self.next_tick;
        self.next_tick += 1;
        if let Some(e) = self.entries.get_mut(account) {
            self.order.remove(&e.tick);
            e.tick = tick;
            self.order.insert(tick, account.to_string());
        }
    }
}

/// A bounded, expiring memory of verified logins. Size 0: off.
pub struct VerifiedLogins {
    key: hmac::Key,
    capacity: usize,
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl VerifiedLogins {
    pub fn new(capacity: usize, ttl: Duration) -> VerifiedLogins {
        VerifiedLogins {
            key: hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
            capacity: if ttl.is_zero() { 0 } else { capacity },
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The digest of one (account, stored hash, password); every part is
    /// length-prefixed so no two triples share an input.
    fn digest_input(account: &str, stored_hash: &str, password: &str) -> Vec<u8> {
        let mut input = Vec::with_capacity(24 + account.len() + stored_hash.len() + password.len());
        for part in [account, stored_hash, password] {
            input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            input.extend_from_slice(part.as_bytes());
        }
        input
    }

    /// Whether `password` was verified for `account` against exactly
    /// `stored_hash` (the hash in the store now) within the TTL.
    pub fn hit(&self, account: &str, stored_hash: &str, password: &str) -> bool {
        if !self.enabled() {
            return false;
        }
        let input = Self::digest_input(account, stored_hash, password);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = inner.entries.get(account) else {
            return false;
        };
        if entry.verified_at.elapsed() >= self.ttl || entry.stored_hash != stored_hash {
            // Expired, or the password changed since: never valid again.
            inner.remove(account);
            return false;
        }
        // Constant-time comparison of the digests.
        if hmac::verify(&self.key, &input, entry.digest.as_ref()).is_err() {
            return false;
        }
        inner.touch(account);
        true
    }

    /// Remembers that `password` was just verified against `stored_hash`.
    /// Call only after a successful full check.
    pub fn remember(&self, account: &str, stored_hash: &str, password: &str) {
        if !self.enabled() {
            return;
        }
        let digest = hmac::sign(
            &self.key,
            &Self::digest_input(account, stored_hash, password),
        );
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(account);
        while inner.entries.len() >= self.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
        let tick = inner.next_tick;
        inner.next_tick += 1;
        inner.entries.insert(
            account.to_string(),
            Entry {
                stored_hash: stored_hash.to_string(),
                digest,
                verified_at: Instant::now(),
                tick,
            },
        );
        inner.order.insert(tick, account.to_string());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn remembers_only_the_verified_password_against_the_same_hash() {
        let cache = VerifiedLogins::new(10, HOUR);
        assert!(!cache.hit("bob@x.test", "$argon2id$A", "pw"));
        cache.remember("bob@x.test", "$argon2id$A", "pw");
        assert!(cache.hit("bob@x.test", "$argon2id$A", "pw"));
        // A wrong password never hits, and does not evict the entry.
        assert!(!cache.hit("bob@x.test", "$argon2id$A", "pw2"));
        assert!(!cache.hit("bob@x.test", "$argon2id$A", ""));
        assert!(cache.hit("bob@x.test", "$argon2id$A", "pw"));
        // Another account with the same password and hash text: no.
        assert!(!cache.hit("eve@x.test", "$argon2id$A", "pw"));
    }

    #[test]
    fn a_changed_hash_invalidates_at_once() {
        let cache = VerifiedLogins::new(10, HOUR);
        cache.remember("bob@x.test", "$argon2id$old", "pw");
        // The password was changed (here or on another node): the stored
        // hash differs, the old password no longer passes, and the entry
        // is gone even should the old hash come back.
        assert!(!cache.hit("bob@x.test", "$argon2id$new", "pw"));
        assert!(!cache.hit("bob@x.test", "$argon2id$old", "pw"));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_bound_holds_and_evicts_the_least_recently_used() {
        let cache = VerifiedLogins::new(3, HOUR);
        for i in 0..3 {
            cache.remember(&format!("u{i}"), "h", "pw");
        }
        assert!(cache.hit("u0", "h", "pw")); // u1 is now the oldest
        cache.remember("u3", "h", "pw");
        assert_eq!(cache.len(), 3);
        assert!(!cache.hit("u1", "h", "pw"));
        for u in ["u0", "u2", "u3"] {
            assert!(cache.hit(u, "h", "pw"), "{u}");
        }
        for i in 0..100 {
            cache.remember(&format!("v{i}"), "h", "pw");
            assert!(cache.len() <= 3);
        }
        // Remembering an account again replaces, never duplicates.
        cache.remember("v99", "h", "pw");
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.inner.lock().unwrap().order.len(), 3);
    }

    #[test]
    fn entries_expire_and_size_zero_is_off() {
        let cache = VerifiedLogins::new(10, Duration::from_nanos(1));
        cache.remember("bob", "h", "pw");
        std::thread::sleep(Duration::from_millis(2));
        assert!(!cache.hit("bob", "h", "pw"));
        assert_eq!(cache.len(), 0);
        let off = VerifiedLogins::new(0, HOUR);
        off.remember("bob", "h", "pw");
        assert!(!off.hit("bob", "h", "pw"));
        assert_eq!(off.len(), 0);
    }
}
