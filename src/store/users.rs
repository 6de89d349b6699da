//! Local accounts: one record per address (`u/<address>`), with an argon2
//! password hash. Adding a user creates their folders; deleting one removes
//! their mail. Written over the storage seam: an account is created only if
//! its record is still absent, and a password change applies only to the
//! record it read, so two admins (or two nodes) never both succeed at
//! creating one address.

use super::backend::{Batch, KeyRange, ScanOrder, Space, retry};
use super::mailbox::{SPECIAL_FOLDERS, folder_key, new_folder};
use super::subscriptions::kept_prefix;
use super::{Store, StoreError, decode, encode, now};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub address: String,
    pub password_hash: String,
    pub created: i64,
    /// The user's own quota (`tern user quota`); absent: the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<super::quota::QuotaOverride>,
}

fn user_key(address: &str) -> Vec<u8> {
    format!("u/{address}").into_bytes()
}

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| StoreError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

/// A hash of a random password, verified against when the user does not
/// exist, so that timing does not tell whether an account exists.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password never used").unwrap_or_default())
}

/// Whether `password` is the one `hash` was made from (slow by design).
fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Store {
    pub async fn add_user(&self, address: &str, password: &str) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        let password = password.to_string();
        let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| StoreError::Hash(e.to_string()))??;
        let record = UserRecord {
            address: address.clone(),
            password_hash,
            created: now(),
            quota: None,
        };
        let backend = &self.inner.backend;
        let mut batch = Batch::new();
        batch.require(Space::Meta, user_key(&address), None);
        batch.put(Space::Meta, user_key(&address), encode(&record));
        for (name, _) in SPECIAL_FOLDERS {
            let folder = new_folder(name, backend.next_id().await?);
            batch.put(Space::Meta, folder_key(&address, name), encode(&folder));
        }
        // Only the condition conflicts (the engines retry races): the
        // address is taken.
        match backend.commit(batch).await {
            Err(super::backend::BackendError::Conflict) => Err(StoreError::UserExists(address)),
            other => Ok(other?),
        }
    }

    pub async fn user(&self, address: &str) -> Result<Option<UserRecord>, StoreError> {
        let key = user_key(&address.to_ascii_lowercase());
        match self.inner.backend.get(Space::Meta, &key).await? {
            Some(v) => Ok(Some(decode("user", &v)?)),
            None => Ok(None),
        }
    }

    pub async fn user_exists(&self, address: &str) -> Result<bool, StoreError> {
        Ok(self.user(address).await?.is_some())
    }

    pub async fn list_users(&self) -> Result<Vec<String>, StoreError> {
        let records = self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(b"u/"), ScanOrder::ALL)
            .await?;
        records
            .iter()
            .map(|(_, v)| decode::<UserRecord>("user", v).map(|r| r.address))
            .collect()
    }

    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), StoreError> {
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| StoreError::Hash(e.to_string()))??;
        self.update_user(address, |record| record.password_hash = hash.clone())
            .await
    }

    /// Changes a user's record as `change` says, applied to the record as
    /// it is when the change commits (retried when it raced another).
    pub(super) async fn update_user(
        &self,
        address: &str,
        change: impl Fn(&mut UserRecord),
    ) -> Result<(), StoreError> {
        let key = user_key(&address.to_ascii_lowercase());
        let backend = &self.inner.backend;
        retry(|| async {
            let Some(old) = backend.get(Space::Meta, &key).await? else {
                return Ok(Err(StoreError::NoSuchUser(address.to_string())));
            };
            let mut record: UserRecord = match decode("user", &old) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            change(&mut record);
            let mut batch = Batch::new();
            batch.require(Space::Meta, key.clone(), Some(&old));
            batch.put(Space::Meta, key.clone(), encode(&record));
            backend.commit(batch).await?;
            Ok(Ok(()))
        })
        .await?
    }

    /// Removes the account and all its mail.
    pub async fn delete_user(&self, address: &str) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        if !self.user_exists(&address).await? {
            return Err(StoreError::NoSuchUser(address));
        }
        for folder in self.folders(&address).await? {
            self.delete_folder_contents(&address, &folder.name).await?;
        }
        let backend = &self.inner.backend;
        let mut batch = Batch::new();
        for prefix in [
            format!("f/{address}\0").into_bytes(),
            kept_prefix(&address),
            super::sieve::scripts_prefix(&address),
            super::pulls::user_prefix(&address),
        ] {
            for (key, _) in backend
                .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
                .await?
            {
                batch.delete(Space::Meta, key);
            }
        }
        batch.delete(Space::Meta, super::sieve::user_index_key(&address));
        batch.delete(Space::Meta, super::quota::usage_key(&address));
        batch.delete(Space::Meta, user_key(&address));
        Ok(backend.commit(batch).await?)
    }

    /// Checks a password (slow by design: the hash is checked on a blocking
    /// thread). Returns the canonical address on success. An unknown
    /// address costs the same check against a decoy, so timing does not
    /// tell which accounts exist.
    pub async fn verify_password(
        &self,
        address: &str,
        password: &str,
    ) -> Result<Option<String>, StoreError> {
        let record = self.user(address).await?;
        let ok = check_password(record.as_ref(), password).await?;
        Ok(match (ok, record) {
            (true, Some(r)) => Some(r.address),
            _ => None,
        })
    }
}

/// Whether `password` is the one `record`'s hash was made from, checked on
/// a blocking thread; no record (no such user) costs the same check
/// against a decoy and is never a match.
pub async fn check_password(
    record: Option<&UserRecord>,
    password: &str,
) -> Result<bool, StoreError> {
    let hash = record.map_or_else(|| decoy_hash().to_string(), |r| r.password_hash.clone());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || password_matches(&hash, &password))
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?;
    Ok(ok && record.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn add_verify_passwd_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user("Bob@Example.test", "secret").await.unwrap();
        assert!(matches!(
            store.add_user("bob@example.test", "x").await,
            Err(StoreError::UserExists(_))
        ));
        assert_eq!(
            store
                .verify_password("bob@example.test", "secret")
                .await
                .unwrap()
                .as_deref(),
            Some("bob@example.test")
        );
        assert_eq!(
            store
                .verify_password("bob@example.test", "wrong")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .verify_password("nobody@example.test", "secret")
                .await
                .unwrap(),
            None
        );
        store.set_password("bob@example.test", "new").await.unwrap();
        assert!(
            store
                .verify_password("bob@example.test", "new")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store.list_users().await.unwrap(),
            vec!["bob@example.test".to_string()]
        );
        assert_eq!(
            store.folders("bob@example.test").await.unwrap().len(),
            SPECIAL_FOLDERS.len()
        );
        store.delete_user("bob@example.test").await.unwrap();
        assert!(store.list_users().await.unwrap().is_empty());
        assert!(store.folders("bob@example.test").await.unwrap().is_empty());
    }
}
