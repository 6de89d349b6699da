//! Subscriptions that outlive their folder. A folder's own record says
//! whether it is subscribed; when a subscribed folder is deleted, its name
//! stays subscribed (RFC 3501 6.3.6 and RFC 9051 6.3.7: the server must
//! not remove a name from the subscription list on its own) under
//! `s/<user>\0<name>`, until UNSUBSCRIBE, or until a folder of that name is
//! created again, which then starts out subscribed.

use super::backend::{KeyRange, ScanOrder, Space};
use super::mailbox::canonical_folder;
use super::{Store, StoreError};

pub(super) fn kept_key(user: &str, folder: &str) -> Vec<u8> {
    format!("s/{user}\0{folder}").into_bytes()
}

pub(super) fn kept_prefix(user: &str) -> Vec<u8> {
    format!("s/{user}\0").into_bytes()
}

impl Store {
    /// Subscribed names that have no folder (any more).
    pub async fn kept_subscriptions(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let prefix = kept_prefix(user);
        let kept = self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
            .await?;
        Ok(kept
            .iter()
            .map(|(key, _)| String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            .collect())
    }

    /// Whether `folder`, which does not exist, is still subscribed.
    pub async fn subscription_kept(&self, user: &str, folder: &str) -> Result<bool, StoreError> {
        let key = kept_key(user, &canonical_folder(folder));
        Ok(self.inner.backend.get(Space::Meta, &key).await?.is_some())
    }
}
