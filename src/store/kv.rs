//! The plugins' key-value areas: one private namespace per plugin under
//! `k/<plugin>\0<key>` in the `meta` tree, with optional expiry, for
//! greylisting, rate limits and the like. A value is stored as 8 bytes of
//! expiry (Unix milliseconds, big-endian; 0 = never) followed by the bytes.
//! Expired entries read as absent and are removed when met. Counters are
//! decimal ASCII, so `get` on a counter reads `b"42"`.
//!
//! Written over the storage seam (`backend/`), so it is the same on every
//! engine: a counter is a read and a write set guarded by the value read
//! (retried on conflict), so two sessions — or two nodes — incrementing
//! at once never lose an update.
//!
//! Writes are not flushed one by one: the engine's own background flush
//! (sled: every half second, and at shutdown; PostgreSQL: at commit) makes
//! them durable, which is what greylisting needs; nothing here is a promise
//! made to a client.

use super::backend::{BackendError, Batch, KeyRange, ScanOrder, Space, retry};
use super::{Store, StoreError};
// Expiry times are unsigned milliseconds.
use crate::clock::now_ms_unsigned as now_ms;

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

impl From<BackendError> for KvError {
    fn from(e: BackendError) -> Self {
        KvError::Store(StoreError::from(e))
    }
}

/// What a counter update decided: a write, or a refusal (not retried).
enum Counted {
    Value(i64),
    Refused(KvError),
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
    pub async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let k = kv_key(plugin, key);
        let backend = &self.inner.backend;
        let Some(raw) = backend.get(Space::Meta, &k).await? else {
            return Ok(None);
        };
        match decode_entry(&raw, now_ms()) {
            Some((_, v)) => Ok(Some(v.to_vec())),
            None => {
                // Expired: remove it unless someone rewrote it meanwhile
                // (then that write stands and this one conflicts).
                let mut batch = Batch::new();
                batch.require(Space::Meta, k.clone(), Some(&raw));
                batch.delete(Space::Meta, k);
                match backend.commit(batch).await {
                    Ok(()) | Err(BackendError::Conflict) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Sets a plugin's key, expiring after `ttl_seconds` when given.
    pub async fn kv_set(
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
        let mut batch = Batch::new();
        batch.put(
            Space::Meta,
            kv_key(plugin, key),
            encode_entry(expiry(ttl_seconds), value),
        );
        Ok(self.inner.backend.commit(batch).await?)
    }

    /// Removes a plugin's key; true when a live value was there.
    pub async fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let k = kv_key(plugin, key);
        let backend = &self.inner.backend;
        let old = retry(|| async {
            let old = backend.get(Space::Meta, &k).await?;
            let mut batch = Batch::new();
            batch.require(Space::Meta, k.clone(), old.as_deref());
            batch.delete(Space::Meta, k.clone());
            backend.commit(batch).await?;
            Ok(old)
        })
        .await?;
        Ok(old.is_some_and(|raw| decode_entry(&raw, now_ms()).is_some()))
    }

    /// Adds `delta` to a counter (absent or expired: 0) and returns the new
    /// value. A new counter gets `ttl_seconds`; an existing one keeps its expiry.
    pub async fn kv_increment(
        &self,
        plugin: &str,
        key: &str,
        delta: i64,
        ttl_seconds: Option<u64>,
    ) -> Result<i64, KvError> {
        check_key(key)?;
        let k = kv_key(plugin, key);
        let backend = &self.inner.backend;
        let counted = retry(|| async {
            let old = backend.get(Space::Meta, &k).await?;
            let (expires, current) =
                match old.as_deref().and_then(|raw| decode_entry(raw, now_ms())) {
                    Some((e, v)) => match std::str::from_utf8(v)
                        .ok()
                        .and_then(|t| t.parse::<i64>().ok())
                    {
                        Some(n) => (e, n),
                        None => return Ok(Counted::Refused(KvError::NotACounter)),
                    },
                    None => (expiry(ttl_seconds), 0),
                };
            let Some(next) = current.checked_add(delta) else {
                return Ok(Counted::Refused(KvError::Overflow));
            };
            let mut batch = Batch::new();
            batch.require(Space::Meta, k.clone(), old.as_deref());
            batch.put(
                Space::Meta,
                k.clone(),
                encode_entry(expires, next.to_string().as_bytes()),
            );
            backend.commit(batch).await?;
            Ok(Counted::Value(next))
        })
        .await?;
        match counted {
            Counted::Value(n) => Ok(n),
            Counted::Refused(e) => Err(e),
        }
    }

    /// Removes every key of a plugin (tests, and `tern plugin` tooling).
    pub async fn kv_clear(&self, plugin: &str) -> Result<usize, KvError> {
        let mut prefix = b"k/".to_vec();
        prefix.extend_from_slice(plugin.as_bytes());
        prefix.push(0);
        let backend = &self.inner.backend;
        let keys = backend
            .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
            .await?;
        let mut batch = Batch::new();
        for (key, _) in &keys {
            batch.delete(Space::Meta, key.clone());
        }
        backend.commit(batch).await?;
        Ok(keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_get_delete_and_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.kv_set("a", "k", b"v1", None).await.unwrap();
        store.kv_set("b", "k", b"v2", None).await.unwrap();
        assert_eq!(
            store.kv_get("a", "k").await.unwrap().as_deref(),
            Some(&b"v1"[..])
        );
        assert_eq!(
            store.kv_get("b", "k").await.unwrap().as_deref(),
            Some(&b"v2"[..])
        );
        // A plugin named "a\0x" cannot reach "a"'s keys through key text.
        assert_eq!(store.kv_get("a", "\0k").await.unwrap(), None);
        assert!(store.kv_delete("a", "k").await.unwrap());
        assert!(!store.kv_delete("a", "k").await.unwrap());
        assert_eq!(store.kv_get("a", "k").await.unwrap(), None);
        assert_eq!(store.kv_clear("b").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn expiry_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.kv_set("p", "gone", b"x", Some(0)).await.unwrap();
        assert_eq!(store.kv_get("p", "gone").await.unwrap(), None);
        assert_eq!(
            store.kv_increment("p", "n", 2, Some(3600)).await.unwrap(),
            2
        );
        assert_eq!(store.kv_increment("p", "n", -5, None).await.unwrap(), -3);
        assert_eq!(
            store.kv_get("p", "n").await.unwrap().as_deref(),
            Some(&b"-3"[..])
        );
        store.kv_set("p", "s", b"text", None).await.unwrap();
        assert!(matches!(
            store.kv_increment("p", "s", 1, None).await,
            Err(KvError::NotACounter)
        ));
        assert!(matches!(
            store
                .kv_set("p", &"x".repeat(MAX_KV_KEY + 1), b"", None)
                .await,
            Err(KvError::KeyTooLong)
        ));
        drop(store);
        let store = crate::store::reopen_for_test(dir.path()).await;
        assert_eq!(
            store.kv_get("p", "n").await.unwrap().as_deref(),
            Some(&b"-3"[..]),
            "kept across a reopen"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_increments_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        crate::store::race(&store, 8, 50, |store| async move {
            store
                .kv_increment("rate", "client", 1, Some(60))
                .await
                .unwrap();
        })
        .await;
        assert_eq!(
            store.kv_get("rate", "client").await.unwrap().as_deref(),
            Some(&b"400"[..])
        );
    }
}
