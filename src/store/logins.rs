//! Failed logins per client address, for a cluster: when several nodes
//! share the store, `auth.rs` counts each address's recent failures here
//! (`F/<address>`: the count and the time of the last one) instead of in
//! its own memory, so guesses spread over the nodes are slowed and cut off
//! as if they had all gone to one. Each failure is one conditional write
//! (retried when two nodes count at once, so none is lost); a record is
//! forgotten `forget` after its last failure: read as none, overwritten by
//! the next failure, deleted by a successful login from the address, and
//! swept now and then (`sweep_login_failures`).

use super::backend::{Batch, KeyRange, ScanOrder, Space};
use super::{Store, StoreError, decode, encode};
use crate::clock::now_ms;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An address's recent failures as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Failures {
    count: u32,
    /// Unix milliseconds of the last failure.
    last_ms: i64,
}

impl Failures {
    fn live(&self, forget: Duration) -> bool {
        now_ms().saturating_sub(self.last_ms)
            < i64::try_from(forget.as_millis()).unwrap_or(i64::MAX)
    }
}

const PREFIX: &str = "F/";

fn key(address: &str) -> Vec<u8> {
    format!("{PREFIX}{address}").into_bytes()
}

impl Store {
    /// Counts one more failed login from `address`; returns its recent
    /// failures, this one included.
    pub async fn add_login_failure(
        &self,
        address: &str,
        forget: Duration,
    ) -> Result<u32, StoreError> {
        let key = key(address);
        let backend = &self.inner.backend;
        self.attempt(|| async {
            let old = backend.get(Space::Meta, &key).await?;
            let before = match &old {
                Some(v) => Some(decode::<Failures>("login failures", v)?),
                None => None,
            };
            let count = match before {
                Some(f) if f.live(forget) => f.count.saturating_add(1),
                _ => 1,
            };
            let mut batch = Batch::new();
            batch.require(Space::Meta, key.clone(), old.as_deref());
            batch.put(
                Space::Meta,
                key.clone(),
                encode(&Failures {
                    count,
                    last_ms: now_ms(),
                }),
            );
            backend.commit(batch).await?;
            Ok(count)
        })
        .await
    }

    /// Recent failed logins from `address` (0: none, or forgotten).
    pub async fn login_failures(&self, address: &str, forget: Duration) -> Result<u32, StoreError> {
        match self.inner.backend.get(Space::Meta, &key(address)).await? {
            Some(v) => {
                let f: Failures = decode("login failures", &v)?;
                Ok(if f.live(forget) { f.count } else { 0 })
            }
            None => Ok(0),
        }
    }

    /// Forgets `address`'s failures (it logged in).
    pub async fn forget_login_failures(&self, address: &str) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.delete(Space::Meta, key(address));
        Ok(self.inner.backend.commit(batch).await?)
    }

    /// Deletes the records whose last failure is older than `forget`
    /// (each only if unchanged since read). Returns how many went.
    pub async fn sweep_login_failures(&self, forget: Duration) -> Result<usize, StoreError> {
        let found = self
            .inner
            .backend
            .scan(
                Space::Meta,
                &KeyRange::prefix(PREFIX.as_bytes()),
                ScanOrder::ALL,
            )
            .await?;
        let mut swept = 0;
        for (k, v) in found {
            let stale = decode::<Failures>("login failures", &v).map_or(true, |f| !f.live(forget));
            if !stale {
                continue;
            }
            let mut batch = Batch::new();
            batch.require(Space::Meta, k.clone(), Some(&v));
            batch.delete(Space::Meta, k);
            match self.inner.backend.commit(batch).await {
                Ok(()) => swept += 1,
                // A new failure came in meanwhile: the record lives on.
                Err(super::backend::BackendError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_count_up_and_are_forgotten() {
        let (_dir, store) = super::super::store_with_bob().await;
        let long = Duration::from_secs(900);
        assert_eq!(store.login_failures("192.0.2.1", long).await.unwrap(), 0);
        assert_eq!(store.add_login_failure("192.0.2.1", long).await.unwrap(), 1);
        assert_eq!(store.add_login_failure("192.0.2.1", long).await.unwrap(), 2);
        assert_eq!(store.login_failures("192.0.2.1", long).await.unwrap(), 2);
        assert_eq!(store.login_failures("192.0.2.2", long).await.unwrap(), 0);
        // Past `forget` a record counts for nothing and starts again.
        assert_eq!(
            store
                .login_failures("192.0.2.1", Duration::ZERO)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .add_login_failure("192.0.2.1", Duration::ZERO)
                .await
                .unwrap(),
            1
        );
        store.add_login_failure("192.0.2.3", long).await.unwrap();
        assert_eq!(store.sweep_login_failures(Duration::ZERO).await.unwrap(), 2);
        assert_eq!(store.login_failures("192.0.2.3", long).await.unwrap(), 0);
        store.add_login_failure("192.0.2.4", long).await.unwrap();
        assert_eq!(store.sweep_login_failures(long).await.unwrap(), 0);
        store.forget_login_failures("192.0.2.4").await.unwrap();
        assert_eq!(store.login_failures("192.0.2.4", long).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn racing_failures_are_all_counted() {
        let (_dir, store) = super::super::store_with_bob().await;
        super::super::race(&store, 4, 5, |s: Store| async move {
            s.add_login_failure("192.0.2.9", Duration::from_secs(900))
                .await
                .unwrap();
        })
        .await;
        assert_eq!(
            store
                .login_failures("192.0.2.9", Duration::from_secs(900))
                .await
                .unwrap(),
            20
        );
    }
}
