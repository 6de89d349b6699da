//! Users' Sieve scripts: per user, named scripts (name → text) of which at
//! most one is active, under the `[sieve]` limits. A script is compiled with
//! tern-sieve before it is saved; one that does not compile is refused with
//! its line:column error, so every stored script compiles.
//!
//! Layout: `e/<user>\0<name>` holds a script's text (UTF-8), `E/<user>` the
//! user's index (the names and which one is active, JSON). Written over the
//! storage seam: every change reads the index and commits only if it is
//! still what was read (retried on conflict), so two sessions — or two
//! nodes — saving at once never pass the count limit together, and the
//! index and the scripts never disagree.

use super::backend::{Backend, BackendError, Batch, Space, retry};
use super::{Store, StoreError, decode, encode};
use crate::config::SieveConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest script name, in bytes.
pub const MAX_SCRIPT_NAME: usize = 512;

/// Why a script request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SieveError {
    #[error("there is no script named {0:?}")]
    NoSuchScript(String),
    #[error("a script named {0:?} already exists")]
    Exists(String),
    #[error("{0:?} is the active script; activate another (or none) first")]
    Active(String),
    #[error("the script is {size} bytes, above the limit of {max}")]
    TooBig { size: u64, max: u64 },
    #[error("a user may keep at most {max} scripts")]
    TooMany { max: usize },
    #[error("bad script name: {0}")]
    BadName(&'static str),
    #[error("the script is not UTF-8")]
    NotUtf8,
    /// The script does not compile: line:column and the reason.
    #[error("{0}")]
    Compile(tern_sieve::CompileError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<BackendError> for SieveError {
    fn from(e: BackendError) -> Self {
        SieveError::Store(StoreError::from(e))
    }
}

/// One user's scripts and the active one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    names: BTreeSet<String>,
    active: Option<String>,
}

fn index_key(user: &str) -> Vec<u8> {
    format!("E/{user}").into_bytes()
}

/// The prefix of a user's script records (`e/<user>\0`).
pub(super) fn scripts_prefix(user: &str) -> Vec<u8> {
    format!("e/{user}\0").into_bytes()
}

/// The user's index record key, for `delete_user`.
pub(super) fn user_index_key(user: &str) -> Vec<u8> {
    index_key(user)
}

fn script_key(user: &str, name: &str) -> Vec<u8> {
    let mut k = scripts_prefix(user);
    k.extend_from_slice(name.as_bytes());
    k
}

/// RFC 5804 section 1.6: a name is non-empty UTF-8 without control
/// characters (U+0000–U+001F, U+007F–U+009F) or the line and paragraph
/// separators (U+2028, U+2029).
pub fn check_script_name(name: &str) -> Result<(), SieveError> {
    if name.is_empty() {
        return Err(SieveError::BadName("the name is empty"));
    }
    if name.len() > MAX_SCRIPT_NAME {
        return Err(SieveError::BadName("the name is too long"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(SieveError::BadName("the name has control characters"));
    }
    Ok(())
}

/// Checks a script against the size limit and compiles it.
pub fn check_script(text: &[u8], limits: &SieveConfig) -> Result<(), SieveError> {
    let size = text.len() as u64;
    if size > limits.max_script_size.0 {
        return Err(SieveError::TooBig {
            size,
            max: limits.max_script_size.0,
        });
    }
    let text = std::str::from_utf8(text).map_err(|_| SieveError::NotUtf8)?;
    tern_sieve::compile(text).map_err(SieveError::Compile)?;
    Ok(())
}

async fn read_index(b: &Backend, user: &str) -> Result<(Option<Vec<u8>>, Index), SieveError> {
    let raw = b.get(Space::Meta, &index_key(user)).await?;
    let index = match &raw {
        Some(v) => decode("sieve index", v)?,
        None => Index::default(),
    };
    Ok((raw, index))
}

/// A write set on top of the index as it was read.
fn guarded(user: &str, raw: &Option<Vec<u8>>, index: &Index) -> Batch {
    let mut batch = Batch::new();
    batch.require(Space::Meta, index_key(user), raw.as_deref());
    if index.names.is_empty() && index.active.is_none() {
        batch.delete(Space::Meta, index_key(user));
    } else {
        batch.put(Space::Meta, index_key(user), encode(index));
    }
    batch
}

/// Runs one guarded change: `decide` gets the index read and either returns
/// a write set (built with `guarded`) or refuses; conflicts are retried.
async fn change<T, F>(b: &Backend, user: &str, decide: F) -> Result<T, SieveError>
where
    F: Fn(&Option<Vec<u8>>, Index) -> Result<(Batch, T), SieveError>,
{
    let decide = &decide;
    retry(move || async move {
        let (raw, index) = match read_index(b, user).await {
            Ok(x) => x,
            Err(SieveError::Store(StoreError::Backend(e))) => return Err(e),
            Err(e) => return Ok(Err(e)),
        };
        match decide(&raw, index) {
            Ok((batch, out)) => {
                b.commit(batch).await?;
                Ok(Ok(out))
            }
            Err(e) => Ok(Err(e)),
        }
    })
    .await?
}

/// Would a script of `size` bytes under `name` fit (HAVESPACE)?
fn room_for(index: &Index, name: &str, size: u64, limits: &SieveConfig) -> Result<(), SieveError> {
    if size > limits.max_script_size.0 {
        return Err(SieveError::TooBig {
            size,
            max: limits.max_script_size.0,
        });
    }
    if !index.names.contains(name) && index.names.len() >= limits.max_scripts {
        return Err(SieveError::TooMany {
            max: limits.max_scripts,
        });
    }
    Ok(())
}

/// One store's scripts: `Store::sieve()`, or any engine (tests).
#[derive(Clone, Copy)]
pub struct SieveScripts<'a>(&'a Backend);

impl Store {
    /// The users' Sieve scripts.
    pub fn sieve(&self) -> SieveScripts<'_> {
        SieveScripts(&self.inner.backend)
    }
}

impl<'a> SieveScripts<'a> {
    /// The scripts kept in `backend`.
    pub fn on(backend: &'a Backend) -> SieveScripts<'a> {
        SieveScripts(backend)
    }

    /// Saves `text` as the user's script `name` (replacing one of that
    /// name; an active script stays active). The user must exist; the
    /// script must fit the limits and compile.
    pub async fn put(
        &self,
        user: &str,
        name: &str,
        text: &[u8],
        limits: &SieveConfig,
    ) -> Result<(), SieveError> {
        check_script_name(name)?;
        check_script(text, limits)?;
        let user = user.to_ascii_lowercase();
        let b = self.0;
        let user_key = format!("u/{user}").into_bytes();
        retry(|| async {
            let Some(account) = b.get(Space::Meta, &user_key).await? else {
                return Ok(Err(SieveError::Store(StoreError::NoSuchUser(user.clone()))));
            };
            let (raw, mut index) = match read_index(b, &user).await {
                Ok(x) => x,
                Err(SieveError::Store(StoreError::Backend(e))) => return Err(e),
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = room_for(&index, name, text.len() as u64, limits) {
                return Ok(Err(e));
            }
            index.names.insert(name.to_string());
            let mut batch = guarded(&user, &raw, &index);
            // The account must still be there when the script lands.
            batch.require(Space::Meta, user_key.clone(), Some(&account));
            batch.put(Space::Meta, script_key(&user, name), text.to_vec());
            b.commit(batch).await?;
            Ok(Ok(()))
        })
        .await?
    }

    /// HAVESPACE: would a script of `size` bytes named `name` be accepted?
    pub async fn have_space(
        &self,
        user: &str,
        name: &str,
        size: u64,
        limits: &SieveConfig,
    ) -> Result<(), SieveError> {
        check_script_name(name)?;
        let (_, index) = read_index(self.0, &user.to_ascii_lowercase()).await?;
        room_for(&index, name, size, limits)
    }

    /// The text of the user's script `name`.
    pub async fn get(&self, user: &str, name: &str) -> Result<Vec<u8>, SieveError> {
        let user = user.to_ascii_lowercase();
        self.0
            .get(Space::Meta, &script_key(&user, name))
            .await?
            .ok_or_else(|| SieveError::NoSuchScript(name.to_string()))
    }

    /// The user's scripts in name order, each with whether it is active.
    pub async fn list(&self, user: &str) -> Result<Vec<(String, bool)>, SieveError> {
        let (_, index) = read_index(self.0, &user.to_ascii_lowercase()).await?;
        Ok(index
            .names
            .iter()
            .map(|n| (n.clone(), index.active.as_deref() == Some(n.as_str())))
            .collect())
    }

    /// The active script's name and text, if the user has one (what
    /// delivery runs).
    pub async fn active(&self, user: &str) -> Result<Option<(String, Vec<u8>)>, SieveError> {
        let user = user.to_ascii_lowercase();
        let (_, index) = read_index(self.0, &user).await?;
        let Some(name) = index.active else {
            return Ok(None);
        };
        let text = self.get(&user, &name).await?;
        Ok(Some((name, text)))
    }

    /// Makes `name` the active script, or (None) leaves the user with none.
    pub async fn activate(&self, user: &str, name: Option<&str>) -> Result<(), SieveError> {
        let user = user.to_ascii_lowercase();
        change(self.0, &user, |raw, mut index| {
            if let Some(n) = name
                && !index.names.contains(n)
            {
                return Err(SieveError::NoSuchScript(n.to_string()));
            }
            index.active = name.map(str::to_string);
            Ok((guarded(&user, raw, &index), ()))
        })
        .await
    }

    /// Renames a script; the active one stays active under its new name.
    pub async fn rename(&self, user: &str, old: &str, new: &str) -> Result<(), SieveError> {
        check_script_name(new)?;
        let user = user.to_ascii_lowercase();
        let b = self.0;
        // Every change to the user's scripts rewrites the index, so its
        // condition also covers the text read here.
        retry(|| async {
            let (raw, mut index) = match read_index(b, &user).await {
                Ok(x) => x,
                Err(SieveError::Store(StoreError::Backend(e))) => return Err(e),
                Err(e) => return Ok(Err(e)),
            };
            if !index.names.contains(old) {
                return Ok(Err(SieveError::NoSuchScript(old.to_string())));
            }
            if old == new {
                return Ok(Ok(()));
            }
            if index.names.contains(new) {
                return Ok(Err(SieveError::Exists(new.to_string())));
            }
            let Some(text) = b.get(Space::Meta, &script_key(&user, old)).await? else {
                return Ok(Err(SieveError::NoSuchScript(old.to_string())));
            };
            index.names.remove(old);
            index.names.insert(new.to_string());
            if index.active.as_deref() == Some(old) {
                index.active = Some(new.to_string());
            }
            let mut batch = guarded(&user, &raw, &index);
            batch.delete(Space::Meta, script_key(&user, old));
            batch.put(Space::Meta, script_key(&user, new), text);
            b.commit(batch).await?;
            Ok(Ok(()))
        })
        .await?
    }

    /// Deletes a script; the active one cannot be deleted (RFC 5804 2.10).
    pub async fn delete(&self, user: &str, name: &str) -> Result<(), SieveError> {
        let user = user.to_ascii_lowercase();
        change(self.0, &user, |raw, mut index| {
            if !index.names.contains(name) {
                return Err(SieveError::NoSuchScript(name.to_string()));
            }
            if index.active.as_deref() == Some(name) {
                return Err(SieveError::Active(name.to_string()));
            }
            index.names.remove(name);
            let mut batch = guarded(&user, raw, &index);
            batch.delete(Space::Meta, script_key(&user, name));
            Ok((batch, ()))
        })
        .await
    }
}

#[cfg(test)]
#[path = "sieve_tests.rs"]
mod tests;
