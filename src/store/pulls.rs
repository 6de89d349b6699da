//! What `tern migrate` has copied from another IMAP server, per user,
//! source account and source folder (`i/<user>\0<source>\0<folder>`): the
//! source folder's UIDVALIDITY and the highest source UID copied. Each
//! mark is written in the write set that stores the message it counts, so
//! an interrupted run resumes after the last message stored, never
//! before it (no duplicate) nor after (no gap).

use super::backend::Space;
use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullMark {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

fn mark_key(user: &str, source: &str, folder: &str) -> Vec<u8> {
    format!("i/{user}\0{source}\0{folder}").into_bytes()
}

pub(super) fn user_prefix(user: &str) -> Vec<u8> {
    format!("i/{user}\0").into_bytes()
}

impl Store {
    /// How far the copy of `source`'s `folder` has got (None: not begun).
    pub async fn pull_mark(
        &self,
        user: &str,
        source: &str,
        folder: &str,
    ) -> Result<Option<PullMark>, StoreError> {
        let key = mark_key(user, source, folder);
        match self.inner.backend.get(Space::Meta, &key).await? {
            Some(v) => Ok(Some(decode("pull mark", &v)?)),
            None => Ok(None),
        }
    }

    /// Stores one message copied from `source`'s folder `from` into the
    /// user's `folder`, with the new mark, in one write set.
    #[allow(clippy::too_many_arguments)]
    pub async fn append_pulled(
        &self,
        user: &str,
        folder: &str,
        bytes: &[u8],
        flags: Vec<String>,
        internal_date: Option<i64>,
        source: &str,
        from: &str,
        mark: PullMark,
    ) -> Result<u32, StoreError> {
        let extra = (mark_key(user, source, from), encode(&mark));
        let (_, uid) = self
            .append_with(user, folder, bytes, flags, internal_date, Some(extra))
            .await?;
        Ok(uid)
    }
}
