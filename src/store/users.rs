//! Local accounts: one record per address, with an argon2 password hash.
//! Adding a user creates their folders; deleting one removes their mail.

use super::mailbox::SPECIAL_FOLDERS;
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

impl Store {
    pub fn add_user(&self, address: &str, password: &str) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        let record = UserRecord {
            address: address.clone(),
            password_hash: hash_password(password)?,
            created: now(),
        };
        let _guard = self.lock();
        if self.inner.meta.contains_key(user_key(&address))? {
            return Err(StoreError::UserExists(address));
        }
        let mut batch = sled::Batch::default();
        batch.insert(user_key(&address), encode(&record));
        for (name, _) in SPECIAL_FOLDERS {
            self.create_folder_in(&address, name, &mut batch)?;
        }
        self.inner.meta.apply_batch(batch)?;
        Ok(())
    }

    pub fn user(&self, address: &str) -> Result<Option<UserRecord>, StoreError> {
        match self
            .inner
            .meta
            .get(user_key(&address.to_ascii_lowercase()))?
        {
            Some(v) => Ok(Some(decode("user", &v)?)),
            None => Ok(None),
        }
    }

    pub fn user_exists(&self, address: &str) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .meta
            .contains_key(user_key(&address.to_ascii_lowercase()))?)
    }

    pub fn list_users(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.meta.scan_prefix(b"u/") {
            let (_, v) = item?;
            let r: UserRecord = decode("user", &v)?;
            out.push(r.address);
        }
        Ok(out)
    }

    pub fn set_password(&self, address: &str, password: &str) -> Result<(), StoreError> {
        let mut record = self
            .user(address)?
            .ok_or_else(|| StoreError::NoSuchUser(address.to_string()))?;
        record.password_hash = hash_password(password)?;
        self.inner
            .meta
            .insert(user_key(&record.address), encode(&record))?;
        Ok(())
    }

    /// Removes the account and all its mail.
    pub fn delete_user(&self, address: &str) -> Result<(), StoreError> {
        let address = address.to_ascii_lowercase();
        if !self.user_exists(&address)? {
            return Err(StoreError::NoSuchUser(address));
        }
        for folder in self.folders(&address)? {
            self.delete_folder_contents(&address, &folder.name)?;
        }
        let _guard = self.lock();
        let mut batch = sled::Batch::default();
        for key in self.inner.meta.scan_prefix(format!("f/{address}\0")).keys() {
            batch.remove(key?);
        }
        for key in self.inner.meta.scan_prefix(kept_prefix(&address)).keys() {
            batch.remove(key?);
        }
        batch.remove(user_key(&address));
        self.inner.meta.apply_batch(batch)?;
        Ok(())
    }

    /// Checks a password (slow by design: call from a blocking task).
    /// Returns the canonical address on success.
    pub fn verify_password(
        &self,
        address: &str,
        password: &str,
    ) -> Result<Option<String>, StoreError> {
        let record = self.user(address)?;
        let hash = record
            .as_ref()
            .map(|r| r.password_hash.as_str())
            .unwrap_or(decoy_hash());
        let ok = PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        Ok(match (ok, record) {
            (true, Some(r)) => Some(r.address),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_passwd_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.add_user("Bob@Example.test", "secret").unwrap();
        assert!(matches!(
            store.add_user("bob@example.test", "x"),
            Err(StoreError::UserExists(_))
        ));
        assert_eq!(
            store
                .verify_password("bob@example.test", "secret")
                .unwrap()
                .as_deref(),
            Some("bob@example.test")
        );
        assert_eq!(
            store.verify_password("bob@example.test", "wrong").unwrap(),
            None
        );
        assert_eq!(
            store
                .verify_password("nobody@example.test", "secret")
                .unwrap(),
            None
        );
        store.set_password("bob@example.test", "new").unwrap();
        assert!(
            store
                .verify_password("bob@example.test", "new")
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store.list_users().unwrap(),
            vec!["bob@example.test".to_string()]
        );
        assert_eq!(
            store.folders("bob@example.test").unwrap().len(),
            SPECIAL_FOLDERS.len()
        );
        store.delete_user("bob@example.test").unwrap();
        assert!(store.list_users().unwrap().is_empty());
        assert!(store.folders("bob@example.test").unwrap().is_empty());
    }
}
