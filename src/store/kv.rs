//! The plugins' key-value areas: one private namespace per plugin under
//! `k/<plugin>\0<key>` in the `meta` tree, with optional expiry, for
//! greylisting, rate limits and the like. A value is stored as 8 bytes of
//! expiry (Unix milliseconds, big-endian; 0 = never) followed by the bytes.
//! Expired entries read as absent and are removed when met. Counters are
//! decimal ASCII, so `get` on a counter reads `b"42"`.
//!
//! Writes are not flushed one by one: sled's background flush (every half
//! second) and the flush at shutdown make them durable, which is what
//! greylisting needs; nothing here is a promise made to a client.

use super::{Store, StoreError};

/// Longest key a plugin may use, in bytes.
pub const MAX_KV_KEY: usize = 512;
/// Largest value a plugin may store, in bytes.
pub const MAX_KV_VALUE: usize = 64 * 1024;

fn kv_key(plugin: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + plugin.len() + key.len());
    k.extend_from_slice(b"k/");
    k.extend_from_slice(plugin.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

fn expiry(ttl_seconds: Option<u64>) -> u64 {
    match ttl_seconds {
        Some(s) => now_ms().saturating_add(s.saturating_mul(1000)).max(1),
        None => 0,
    }
}

fn encode_entry(expires: u64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expires.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// (expiry, value) of a live entry; None when expired or malformed.
fn decode_entry(raw: &[u8], now: u64) -> Option<(u64, &[u8])> {
    let (head, value) = raw.split_at_checked(8)?;
    let expires = u64::from_be_bytes(head.try_into().ok()?);
    if expires != 0 && expires <= now {
        return None;
    }
    Some((expires, value))
}

/// Why a key-value request was refused.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("key longer than {MAX_KV_KEY} bytes")]
    KeyTooLong,
    #[error("value longer than {MAX_KV_VALUE} bytes")]
    ValueTooLong,
    #[error("the value at this key is not a counter")]
    NotACounter,
    #[error("counter overflow")]
    Overflow,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for KvError {
    fn from(e: sled::Error) -> Self {
        KvError::Store(StoreError::Sled(e))
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KV_KEY {
        Err(KvError::KeyTooLong)
    } else {
        Ok(())
    }
}

impl Store {
    /// The value of a plugin's key, unless absent or expired.
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let k = kv_key(plugin, key);
        let Some(raw) = self.inner.meta.get(&k)? else {
            return Ok(None);
        };
        match decode_entry(&raw, now_ms()) {
            Some((_, v)) => Ok(Some(v.to_vec())),
            None => {
                // Expired: remove it unless someone rewrote it meanwhile.
                let _ = self
                    .inner
                    .meta
                    .compare_and_swap(&k, Some(raw), None as Option<&[u8]>)?;
                Ok(None)
            }
        }
    }

    /// Sets a plugin's key, expiring after `ttl_seconds` when given.
    pub fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        ttl_seconds: Option<u64>,
    ) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > MAX_KV_VALUE {
            return Err(KvError::ValueTooLong);
        }
        self.inner.meta.insert(
            kv_key(plugin, key),
            encode_entry(expiry(ttl_seconds), value),
        )?;
        Ok(())
    }

    /// Removes a plugin's key; true when a live value was there.
    pub fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let old = self.inner.meta.remove(kv_key(plugin, key))?;
        Ok(old.is_some_and(|raw| decode_entry(&raw, now_ms()).is_some()))
    }

    /// Adds `delta` to a counter (absent or expired: 0) and returns the new
    /// value. A new counter gets `ttl_seconds`; an existing one keeps its expiry.
    pub fn kv_increment(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl_seconds: Option<u64>,
    ) -> Result<i64, KvError> {
        check_key(key)?;
        let k = kv_key(plugin, key);
        let _guard = self.lock();
        let now = now_ms();
        let (expires, current) = match self.inner.meta.get(&k)? {
            Some(raw) => match decode_entry(&raw, now) {
                Some((e, v)) => {
                    let n = std::str::from_utf8(v)
                        .ok()
                        .and_then(|t| t.parse::<i64>().ok())
                        .ok_or(KvError::NotACounter)?;
                    (e, n)
                }
                None => (expiry(ttl_seconds), 0),
            },
            None => (expiry(ttl_seconds), 0),
        };
        let next = current.checked_add(delta).ok_or(KvError::Overflow)?;
        self.inner
            .meta
            .insert(k, encode_entry(expires, next.to_string().as_bytes()))?;
        Ok(next)
    }

    /// Removes every key of a plugin (tests, and `tern plugin` tooling).
    pub fn kv_clear(&self, plugin: &str) -> Result<usize, KvError> {
        let mut prefix = b"k/".to_vec();
        prefix.extend_from_slice(plugin.as_bytes());
        prefix.push(0);
        let mut n = 0;
        for key in self.inner.meta.scan_prefix(&prefix).keys() {
            self.inner.meta.remove(key?)?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_delete_and_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.kv_set("a", "k", b"v1", None).unwrap();
        store.kv_set("b", "k", b"v2", None).unwrap();
        assert_eq!(store.kv_get("a", "k").unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(store.kv_get("b", "k").unwrap().as_deref(), Some(&b"v2"[..]));
        // A plugin named "a\0x" cannot reach "a"'s keys through key text.
        assert_eq!(store.kv_get("a", "\0k").unwrap(), None);
        assert!(store.kv_delete("a", "k").unwrap());
        assert!(!store.kv_delete("a", "k").unwrap());
        assert_eq!(store.kv_get("a", "k").unwrap(), None);
        assert_eq!(store.kv_clear("b").unwrap(), 1);
    }

    #[test]
    fn expiry_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.kv_set("p", "gone", b"x", Some(0)).unwrap();
        assert_eq!(store.kv_get("p", "gone").unwrap(), None);
        assert_eq!(store.kv_increment("p", "n", 2, Some(3600)).unwrap(), 2);
        assert_eq!(store.kv_increment("p", "n", -5, None).unwrap(), -3);
        assert_eq!(store.kv_get("p", "n").unwrap().as_deref(), Some(&b"-3"[..]));
        store.kv_set("p", "s", b"text", None).unwrap();
        assert!(matches!(
            store.kv_increment("p", "s", 1, None),
            Err(KvError::NotACounter)
        ));
        assert!(matches!(
            store.kv_set("p", &"x".repeat(MAX_KV_KEY + 1), b"", None),
            Err(KvError::KeyTooLong)
        ));
        drop(store);
        let store = crate::store::reopen_for_test(dir.path());
        assert_eq!(
            store.kv_get("p", "n").unwrap().as_deref(),
            Some(&b"-3"[..]),
            "kept across a reopen"
        );
    }
}
