//! Per-user storage quotas: what a user's mail takes (`Usage`: bytes and
//! messages, every copy counted at its size, as IMAP's RFC822.SIZE) and
//! what they may keep (`[users] default_quota`, or the override stored in
//! the user's record by `tern user quota`). The usage is one counter per
//! user (`Q/<user>`), changed in the same write set as the messages it
//! counts (`writeset.rs`: every copy added or removed), so it is exact on
//! every engine and reading it costs one key. A user whose counter is
//! absent (mail stored before quotas existed) is counted once, by a scan of
//! their messages, in the first change that needs the counter.
//!
//! Deliveries check with `Quota::admits` before they commit; APPEND, COPY
//! and queued local deliveries ask the write set to enforce it at commit,
//! where the counter read is the one the commit is conditional on.

use super::backend::{KeyRange, ScanOrder, Space};
use super::mailbox::MessageMeta;
use super::{Store, StoreError, decode};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// What a user's mail takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

/// A quota set for one user, overriding `[users] default_quota`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaOverride {
    /// No limit, whatever the default.
    Unlimited,
    /// At most this many bytes.
    Bytes(u64),
}

/// A user's limit (None: unlimited) and usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: Option<u64>,
    pub usage: Usage,
}

/// Whether a message of some size may be added (`Quota::admits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Yes,
    /// It would take the user over their quota: try later (452 4.2.2).
    Full,
    /// It alone is larger than the whole quota: never (552 5.2.2).
    TooBig,
}

impl Quota {
    /// Whether `size` more bytes fit.
    pub fn admits(&self, size: u64) -> Admission {
        admits(self.limit, self.usage.bytes, size)
    }
}

fn admits(limit: Option<u64>, used: u64, size: u64) -> Admission {
    match limit {
        Some(limit) if size > limit => Admission::TooBig,
        Some(limit) if used.saturating_add(size) > limit => Admission::Full,
        _ => Admission::Yes,
    }
}

/// The value `Inner::default_quota` holds for "no default quota".
pub(super) const NO_DEFAULT: u64 = u64::MAX;

pub(super) fn usage_key(user: &str) -> Vec<u8> {
    format!("Q/{user}").into_bytes()
}

impl Store {
    /// Sets the quota of users without an override (`[users]
    /// default_quota`; None: unlimited). The server sets it at start.
    pub fn set_default_quota(&self, bytes: Option<u64>) {
        self.inner
            .default_quota
            .store(bytes.unwrap_or(NO_DEFAULT), Ordering::Relaxed);
    }

    fn default_quota(&self) -> Option<u64> {
        let v = self.inner.default_quota.load(Ordering::Relaxed);
        (v != NO_DEFAULT).then_some(v)
    }

    /// Sets (or with None, removes) a user's own quota.
    pub async fn set_quota(
        &self,
        address: &str,
        quota: Option<QuotaOverride>,
    ) -> Result<(), StoreError> {
        self.update_user(address, |record| record.quota = quota)
            .await
    }

    /// The limit that applies to a user: their override, else the default.
    pub(super) async fn limit_of(&self, user: &str) -> Result<Option<u64>, StoreError> {
        let own = self.user(user).await?.and_then(|r| r.quota);
        Ok(match own {
            Some(QuotaOverride::Unlimited) => None,
            Some(QuotaOverride::Bytes(n)) => Some(n),
            None => self.default_quota(),
        })
    }

    /// A user's limit and usage now.
    pub async fn quota(&self, user: &str) -> Result<Quota, StoreError> {
        let user = user.to_ascii_lowercase();
        let limit = self.limit_of(&user).await?;
        let usage = match self
            .inner
            .backend
            .get(Space::Meta, &usage_key(&user))
            .await?
        {
            Some(v) => decode("usage", &v)?,
            None => self.count_usage(&user).await?,
        };
        Ok(Quota { limit, usage })
    }

    /// Counts a user's mail the slow way (every message record): only for
    /// a user whose counter does not exist yet.
    pub(super) async fn count_usage(&self, user: &str) -> Result<Usage, StoreError> {
        let prefix = format!("m/{user}\0").into_bytes();
        let mut usage = Usage::default();
        for (_, v) in self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
            .await?
        {
            let meta: MessageMeta = decode("message", &v)?;
            usage.bytes += meta.size;
            usage.messages += 1;
        }
        Ok(usage)
    }

    /// Whether adding `bytes` to `user`, whose usage is `usage`, is within
    /// their quota; `Err(OverQuota)` if not.
    pub(super) async fn enforce_quota(
        &self,
        user: &str,
        usage: Usage,
        bytes: u64,
    ) -> Result<(), StoreError> {
        let limit = self.limit_of(user).await?;
        match admits(limit, usage.bytes, bytes) {
            Admission::Yes => Ok(()),
            verdict => Err(StoreError::OverQuota {
                user: user.to_string(),
                too_big: verdict == Admission::TooBig,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::store_with_bob as store;

    const BOB: &str = "bob@example.test";

    async fn put(store: &Store, folder: &str, bytes: &[u8]) -> Result<(u32, u32), StoreError> {
        store.append(BOB, folder, bytes, vec![], None).await
    }

    async fn usage(store: &Store) -> (u64, u64) {
        let u = store.quota(BOB).await.unwrap().usage;
        (u.bytes, u.messages)
    }

    #[test]
    fn admission_distinguishes_full_from_too_big() {
        assert_eq!(admits(None, 5, u64::MAX), Admission::Yes);
        assert_eq!(admits(Some(100), 50, 50), Admission::Yes);
        assert_eq!(admits(Some(100), 51, 50), Admission::Full);
        assert_eq!(admits(Some(100), 0, 101), Admission::TooBig);
    }

    #[tokio::test]
    async fn usage_follows_appends_copies_moves_and_expunges() {
        let (_dir, store) = store().await;
        put(&store, "INBOX", b"0123456789").await.unwrap();
        put(&store, "INBOX", b"01234").await.unwrap();
        assert_eq!(usage(&store).await, (15, 2));
        assert_eq!(store.quota(BOB).await.unwrap().limit, None);
        let copy = |uid, to, remove| {
            let store = store.clone();
            async move { store.copy_messages(BOB, "INBOX", &[uid], to, remove).await }
        };
        copy(1, "Archive", false).await.unwrap();
        assert_eq!(usage(&store).await, (25, 3));
        copy(2, "Trash", true).await.unwrap();
        assert_eq!(usage(&store).await, (25, 3));
        store.expunge(BOB, "INBOX", &[1]).await.unwrap();
        assert_eq!(usage(&store).await, (15, 2));
        store.delete_folder(BOB, "Trash").await.unwrap();
        assert_eq!(usage(&store).await, (10, 1));
        // The counter agrees with a count from scratch.
        assert_eq!(store.count_usage(BOB).await.unwrap().bytes, 10);
    }

    #[tokio::test]
    async fn append_and_copy_are_refused_over_quota_and_move_is_not() {
        let (_dir, store) = store().await;
        store.set_default_quota(Some(25));
        put(&store, "INBOX", b"0123456789").await.unwrap();
        put(&store, "INBOX", b"0123456789").await.unwrap();
        let full = put(&store, "INBOX", b"0123456789").await;
        assert!(matches!(
            full,
            Err(StoreError::OverQuota { too_big: false, .. })
        ));
        let big = put(&store, "INBOX", &[b'x'; 26]).await;
        assert!(matches!(
            big,
            Err(StoreError::OverQuota { too_big: true, .. })
        ));
        let copy = store
            .copy_messages(BOB, "INBOX", &[1], "Archive", false)
            .await;
        assert!(matches!(copy, Err(StoreError::OverQuota { .. })));
        store
            .copy_messages(BOB, "INBOX", &[1], "Archive", true)
            .await
            .unwrap();
        // A refused change leaves nothing behind; the override wins.
        assert_eq!(usage(&store).await, (20, 2));
        store
            .set_quota(BOB, Some(QuotaOverride::Unlimited))
            .await
            .unwrap();
        put(&store, "INBOX", b"0123456789").await.unwrap();
        store
            .set_quota(BOB, Some(QuotaOverride::Bytes(5)))
            .await
            .unwrap();
        assert_eq!(store.quota(BOB).await.unwrap().limit, Some(5));
        store.set_quota(BOB, None).await.unwrap();
        assert_eq!(store.quota(BOB).await.unwrap().limit, Some(25));
    }

    #[tokio::test]
    async fn a_missing_counter_is_counted_once_from_the_messages() {
        let (_dir, store) = store().await;
        put(&store, "INBOX", b"0123456789").await.unwrap();
        // As a store from before quotas: the counter is gone.
        let mut batch = super::super::backend::Batch::new();
        batch.delete(Space::Meta, usage_key(BOB));
        store.inner.backend.commit(batch).await.unwrap();
        assert_eq!(usage(&store).await, (10, 1));
        put(&store, "INBOX", b"01234").await.unwrap();
        let stored = store
            .inner
            .backend
            .get(Space::Meta, &usage_key(BOB))
            .await
            .unwrap();
        let counted: Usage = decode("usage", &stored.unwrap()).unwrap();
        assert_eq!((counted.bytes, counted.messages), (15, 2));
    }

    #[tokio::test]
    async fn concurrent_deliveries_count_every_copy() {
        let (_dir, store) = store().await;
        super::super::race(&store, 4, 5, |s| async move {
            s.append(BOB, "INBOX", b"abc", vec![], None).await.unwrap();
        })
        .await;
        assert_eq!(usage(&store).await, (60, 20));
    }
}
