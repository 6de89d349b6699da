//! The MTA-STS policy cache (`t/<domain>` in `Space::Meta`): for each policy
//! domain, the last policy fetched over HTTPS (its text, as served), the
//! `id` of the `_mta-sts` TXT record it was fetched for, when it was
//! fetched and when it expires (`max_age` later). RFC 8461 section 5 says
//! how `outbound/mta_sts` uses it; this file only keeps it, over the
//! storage seam (a policy is replaced whole, so the last fetch wins).

use super::backend::{Batch, Space};
use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsPolicyRecord {
    /// The TXT record's `id` the policy was fetched for.
    pub id: String,
    /// The policy file as served.
    pub text: String,
    /// Unix seconds of the fetch.
    pub fetched: i64,
    /// Unix seconds after which the policy no longer applies.
    pub expires: i64,
}

fn sts_key(domain: &str) -> Vec<u8> {
    format!("t/{}", domain.to_ascii_lowercase()).into_bytes()
}

impl Store {
    /// The cached policy of `domain`, expired or not.
    pub async fn sts_policy(&self, domain: &str) -> Result<Option<StsPolicyRecord>, StoreError> {
        match self
            .inner
            .backend
            .get(Space::Meta, &sts_key(domain))
            .await?
        {
            Some(v) => Ok(Some(decode("MTA-STS policy", &v)?)),
            None => Ok(None),
        }
    }

    /// Replaces the cached policy of `domain`. Not flushed: a policy lost
    /// in a crash is fetched again.
    pub async fn set_sts_policy(
        &self,
        domain: &str,
        record: &StsPolicyRecord,
    ) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.put(Space::Meta, sts_key(domain), encode(record));
        Ok(self.inner.backend.commit(batch).await?)
    }
}
