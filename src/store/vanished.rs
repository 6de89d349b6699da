//! Expunged UIDs remembered per folder, for QRESYNC (RFC 7162 section
//! 3.2.5.2 and 3.2.6: VANISHED (EARLIER) after a SELECT ... QRESYNC or a
//! UID FETCH ... (CHANGEDSINCE m VANISHED)). Each change that removes
//! messages (EXPUNGE, MOVE's source, POP3's deletions at QUIT) writes, in
//! its own write set, `x/<user>\0<folder>\0<modseq, 8 bytes big-endian>` →
//! the UIDs it removed (JSON), under the mod-sequence it gave the folder.
//! The history is bounded: at most `MAX_VANISHED_RECORDS` changes per
//! folder; older ones are dropped and `X/<user>\0<folder>` (the horizon)
//! keeps the highest mod-sequence dropped. A question from before the
//! horizon is answered `None`, and the session then reports every UID the
//! client may know that no longer exists (RFC 7162 3.2.5.2 allows UIDs
//! the client never saw; clients ignore them).

use super::backend::{Batch, KeyRange, KeyValues, ScanOrder, Space};
use super::{Store, StoreError, decode, encode};

/// Changes remembered per folder before the oldest are dropped.
pub const MAX_VANISHED_RECORDS: usize = 1000;

fn records_prefix(user: &str, folder: &str) -> Vec<u8> {
    format!("x/{user}\0{folder}\0").into_bytes()
}

fn record_key(user: &str, folder: &str, modseq: u64) -> Vec<u8> {
    let mut k = records_prefix(user, folder);
    k.extend_from_slice(&modseq.to_be_bytes());
    k
}

fn horizon_key(user: &str, folder: &str) -> Vec<u8> {
    format!("X/{user}\0{folder}").into_bytes()
}

fn modseq_of(key: &[u8], prefix_len: usize) -> u64 {
    key.get(prefix_len..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

impl Store {
    /// Adds to `batch` the record of `uids` removed at `modseq` (in the
    /// write set that gave the folder that mod-sequence, so two changes
    /// never write one record), dropping the oldest beyond the bound.
    pub(super) async fn record_vanished(
        &self,
        user: &str,
        folder: &str,
        modseq: u64,
        uids: &[u32],
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        if uids.is_empty() {
            return Ok(());
        }
        batch.put(Space::Meta, record_key(user, folder, modseq), encode(&uids));
        let prefix = records_prefix(user, folder);
        let keys = self.history(&prefix).await?;
        let excess = (keys.len() + 1).saturating_sub(MAX_VANISHED_RECORDS);
        if excess > 0 {
            let mut horizon = 0;
            for (key, _) in &keys[..excess] {
                horizon = horizon.max(modseq_of(key, prefix.len()));
                batch.delete(Space::Meta, key.clone());
            }
            batch.put(Space::Meta, horizon_key(user, folder), encode(&horizon));
        }
        Ok(())
    }

    async fn history(&self, prefix: &[u8]) -> Result<KeyValues, StoreError> {
        Ok(self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(prefix), ScanOrder::ALL)
            .await?)
    }

    /// The UIDs removed from `folder` by changes after `modseq`, or `None`
    /// when the history no longer reaches back to it.
    pub async fn vanished_since(
        &self,
        user: &str,
        folder: &str,
        modseq: u64,
    ) -> Result<Option<Vec<u32>>, StoreError> {
        let folder = super::canonical_folder(folder);
        let backend = &self.inner.backend;
        let horizon: u64 = match backend
            .get(Space::Meta, &horizon_key(user, &folder))
            .await?
        {
            Some(v) => decode("vanished horizon", &v)?,
            None => 0,
        };
        if modseq < horizon {
            return Ok(None);
        }
        let start = record_key(user, &folder, modseq.saturating_add(1));
        let prefix = records_prefix(user, &folder);
        let range = KeyRange {
            start,
            end: KeyRange::prefix(&prefix).end,
        };
        let mut out = Vec::new();
        for (_, value) in backend.scan(Space::Meta, &range, ScanOrder::ALL).await? {
            let uids: Vec<u32> = decode("vanished uids", &value)?;
            out.extend(uids);
        }
        out.sort_unstable();
        out.dedup();
        Ok(Some(out))
    }

    /// Moves a folder's history to its new name (RENAME keeps UIDVALIDITY).
    pub(super) async fn rename_vanished(
        &self,
        user: &str,
        from: &str,
        to: &str,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let prefix = records_prefix(user, from);
        for (key, value) in self.history(&prefix).await? {
            batch.delete(Space::Meta, key.clone());
            batch.put(
                Space::Meta,
                record_key(user, to, modseq_of(&key, prefix.len())),
                value,
            );
        }
        let backend = &self.inner.backend;
        if let Some(h) = backend.get(Space::Meta, &horizon_key(user, from)).await? {
            batch.delete(Space::Meta, horizon_key(user, from));
            batch.put(Space::Meta, horizon_key(user, to), h);
        }
        Ok(())
    }

    /// Forgets a deleted folder's history (a new one gets a new UIDVALIDITY).
    pub(super) async fn drop_vanished(
        &self,
        user: &str,
        folder: &str,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        for (key, _) in self.history(&records_prefix(user, folder)).await? {
            batch.delete(Space::Meta, key);
        }
        batch.delete(Space::Meta, horizon_key(user, folder));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: &str = "bob@example.test";

    #[tokio::test]
    async fn expunges_are_remembered_with_their_modseq_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user(BOB, "pw").await.unwrap();
        store.create_folder(BOB, "Box").await.unwrap();
        let mut uids = Vec::new();
        for _ in 0..4 {
            let (_, uid) = store
                .append(BOB, "Box", b"Subject: x\r\n\r\ny\r\n", Vec::new(), None)
                .await
                .unwrap();
            uids.push(uid);
        }
        let before = store
            .folder(BOB, "Box")
            .await
            .unwrap()
            .unwrap()
            .highest_modseq;
        store.expunge(BOB, "Box", &uids[..2]).await.unwrap();
        let mid = store
            .folder(BOB, "Box")
            .await
            .unwrap()
            .unwrap()
            .highest_modseq;
        store.expunge(BOB, "Box", &uids[3..]).await.unwrap();
        assert_eq!(
            store.vanished_since(BOB, "Box", before).await.unwrap(),
            Some(vec![uids[0], uids[1], uids[3]])
        );
        assert_eq!(
            store.vanished_since(BOB, "Box", mid).await.unwrap(),
            Some(vec![uids[3]])
        );
        store.rename_folder(BOB, "Box", "Old").await.unwrap();
        assert_eq!(
            store.vanished_since(BOB, "Old", mid).await.unwrap(),
            Some(vec![uids[3]])
        );
        // Beyond the bound the oldest go and older questions get None.
        let mut last = 0;
        for _ in 0..MAX_VANISHED_RECORDS + 1 {
            let (_, uid) = store
                .append(BOB, "Old", b"Subject: x\r\n\r\ny\r\n", Vec::new(), None)
                .await
                .unwrap();
            store.expunge(BOB, "Old", &[uid]).await.unwrap();
            last = uid;
        }
        assert_eq!(
            store.vanished_since(BOB, "Old", before).await.unwrap(),
            None
        );
        let now = store
            .folder(BOB, "Old")
            .await
            .unwrap()
            .unwrap()
            .highest_modseq;
        assert_eq!(
            store.vanished_since(BOB, "Old", now - 1).await.unwrap(),
            Some(vec![last])
        );
    }
}
