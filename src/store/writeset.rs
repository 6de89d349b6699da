//! One mail change as one conditional write set over the storage seam: the
//! folder records, blob records and messages a change reads are cached
//! here, every record read is `require`d unchanged at commit, and the
//! changed ones are written back in the same `Batch` as everything else
//! the change does (a delivery: the blob's last chunk and record, each
//! folder's counters, the messages and the queue entry). A writer that
//! raced another gets a conflict and runs its change again
//! (`Store::attempt`), so UIDs, mod-sequences and reference counts are
//! never given twice or lost, on any engine and across processes.
//!
//! Every copy added (`add_copy`) or removed (`remove_message`) changes its
//! user's usage counter (`quota.rs`) in the same write set; the counter is
//! read, and required unchanged, at commit. With `enforce_quota` a change
//! that adds bytes past a user's quota fails with `OverQuota` instead.
//!
//! Invariant the mailbox code keeps: every write to a message of a folder
//! also writes that folder's record (its highest mod-sequence at least),
//! so requiring the folder record covers the folder's messages too; a
//! folder is always read (`folder`) before its messages.

use super::backend::{BackendError, Batch, Space};
use super::blobs::{BlobRecord, blob_key, chunk_key};
use super::mailbox::{
    FolderInfo, MailboxEvent, MessageMeta, NewCopy, folder_key, message_key, new_folder,
};
use super::quota::{Usage, usage_key};
use super::{BlobId, Store, StoreError, decode, encode};
use std::collections::{BTreeMap, BTreeSet};

/// A folder as read, and whether the change altered or removed it.
struct Cached {
    user: String,
    name: String,
    info: Option<FolderInfo>,
    dirty: bool,
}

pub(super) struct WriteSet<'a> {
    store: &'a Store,
    pub(super) batch: Batch,
    folders: Vec<Cached>,
    /// Blob records read, with the references the change adds or drops.
    blobs: BTreeMap<BlobId, (BlobRecord, i64)>,
    /// Keys already required (each is read and required once).
    required: BTreeSet<Vec<u8>>,
    touched: Vec<MailboxEvent>,
    /// Per user, the bytes and messages this change adds (or removes).
    usage: BTreeMap<String, (i64, i64)>,
    /// Refuse a change that takes a user past their quota.
    enforce_quota: bool,
}

impl<'a> WriteSet<'a> {
    pub(super) fn new(store: &'a Store) -> WriteSet<'a> {
        WriteSet {
            store,
            batch: Batch::new(),
            folders: Vec::new(),
            blobs: BTreeMap::new(),
            required: BTreeSet::new(),
            touched: Vec::new(),
            usage: BTreeMap::new(),
            enforce_quota: false,
        }
    }

    /// Makes the commit fail with `OverQuota` if this change adds bytes
    /// past a user's quota (APPEND, COPY; a MOVE adds none).
    pub(super) fn enforce_quota(&mut self) {
        self.enforce_quota = true;
    }

    fn count(&mut self, user: &str, bytes: u64, sign: i64) {
        let entry = self.usage.entry(user.to_string()).or_default();
        entry.0 += sign * i64::try_from(bytes).unwrap_or(i64::MAX);
        entry.1 += sign;
    }

    /// Reads `key` and makes the write set apply only if it still holds
    /// what was read.
    pub(super) async fn read(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        let found = self.store.inner.backend.get(Space::Meta, &key).await?;
        if self.required.insert(key.clone()) {
            self.batch.require(Space::Meta, key, found.as_deref());
        }
        Ok(found)
    }

    async fn slot(&mut self, user: &str, name: &str) -> Result<usize, StoreError> {
        if let Some(i) = self
            .folders
            .iter()
            .position(|c| c.user == user && c.name == name)
        {
            return Ok(i);
        }
        let info = match self.read(folder_key(user, name)).await? {
            Some(v) => Some(decode::<FolderInfo>("folder", &v)?),
            None => None,
        };
        self.folders.push(Cached {
            user: user.to_string(),
            name: name.to_string(),
            info,
            dirty: false,
        });
        Ok(self.folders.len() - 1)
    }

    /// The folder as this change sees it (None: it does not exist).
    pub(super) async fn folder(
        &mut self,
        user: &str,
        name: &str,
    ) -> Result<Option<&FolderInfo>, StoreError> {
        let i = self.slot(user, name).await?;
        Ok(self.folders[i].info.as_ref())
    }

    /// The folder, to change (written back at commit); NoSuchFolder if absent.
    pub(super) async fn folder_mut(
        &mut self,
        user: &str,
        name: &str,
    ) -> Result<&mut FolderInfo, StoreError> {
        let i = self.slot(user, name).await?;
        let cached = &mut self.folders[i];
        cached.dirty = true;
        cached
            .info
            .as_mut()
            .ok_or_else(|| StoreError::NoSuchFolder(name.to_string()))
    }

    /// Creates a folder that this change found absent.
    pub(super) async fn create_folder(
        &mut self,
        user: &str,
        name: &str,
    ) -> Result<FolderInfo, StoreError> {
        let id = self.store.inner.backend.next_id().await?;
        let i = self.slot(user, name).await?;
        let cached = &mut self.folders[i];
        if cached.info.is_some() {
            return Err(StoreError::FolderExists(name.to_string()));
        }
        let info = new_folder(name, id);
        cached.info = Some(info.clone());
        cached.dirty = true;
        Ok(info)
    }

    /// Puts a whole folder record under `name` (a rename's new name).
    pub(super) async fn set_folder(
        &mut self,
        user: &str,
        name: &str,
        info: FolderInfo,
    ) -> Result<(), StoreError> {
        let i = self.slot(user, name).await?;
        let cached = &mut self.folders[i];
        cached.info = Some(info);
        cached.dirty = true;
        Ok(())
    }

    /// Removes a folder's record (its messages are the caller's).
    pub(super) async fn remove_folder(&mut self, user: &str, name: &str) -> Result<(), StoreError> {
        let i = self.slot(user, name).await?;
        let cached = &mut self.folders[i];
        cached.info = None;
        cached.dirty = true;
        Ok(())
    }

    /// A message of a folder this change has read (see the invariant above).
    pub(super) async fn message(
        &mut self,
        user: &str,
        folder: &str,
        uid: u32,
    ) -> Result<Option<MessageMeta>, StoreError> {
        self.slot(user, folder).await?;
        let key = message_key(user, folder, uid);
        match self.store.inner.backend.get(Space::Meta, &key).await? {
            Some(v) => Ok(Some(decode("message", &v)?)),
            None => Ok(None),
        }
    }

    pub(super) fn put_message(&mut self, user: &str, folder: &str, meta: &MessageMeta) {
        self.batch.put(
            Space::Meta,
            message_key(user, folder, meta.uid),
            encode(meta),
        );
    }

    /// Removes a message (`meta`, as read) for good: its user's usage drops.
    pub(super) fn remove_message(&mut self, user: &str, folder: &str, meta: &MessageMeta) {
        self.batch
            .delete(Space::Meta, message_key(user, folder, meta.uid));
        self.count(user, meta.size, -1);
    }

    /// Adds one copy of a blob to a folder: the next UID and the next
    /// mod-sequence. A missing INBOX or Junk is created when `create`.
    pub(super) async fn add_copy(
        &mut self,
        user: &str,
        folder: &str,
        copy: NewCopy,
        create: bool,
    ) -> Result<u32, StoreError> {
        if self.folder(user, folder).await?.is_none() {
            if !(create && (folder == "INBOX" || folder == "Junk")) {
                return Err(StoreError::NoSuchFolder(folder.to_string()));
            }
            self.create_folder(user, folder).await?;
        }
        let info = self.folder_mut(user, folder).await?;
        let uid = info.next_uid;
        info.next_uid += 1;
        info.highest_modseq += 1;
        let meta = MessageMeta {
            uid,
            blob: copy.blob,
            size: copy.size,
            flags: copy.flags,
            internal_date: copy.internal_date,
            modseq: info.highest_modseq,
        };
        self.put_message(user, folder, &meta);
        self.count(user, meta.size, 1);
        self.touch(user, folder);
        Ok(uid)
    }

    /// The record of a committed blob, read for this change.
    pub(super) async fn blob(&mut self, id: BlobId) -> Result<&BlobRecord, StoreError> {
        if !self.blobs.contains_key(&id) {
            let record = match self.read(blob_key(id)).await? {
                Some(v) => decode("blob", &v)?,
                // Another change may have dropped the message's last copy
                // (and its blob) since this one read the message: then it
                // raced, and runs again to see the message gone.
                None if self.stale().await? => return Err(self.conflict()),
                None => return Err(StoreError::MissingBlob(id)),
            };
            self.blobs.insert(id, (record, 0));
        }
        Ok(&self.blobs[&id].0)
    }

    /// Adds `delta` references to a blob; at zero the blob and its chunks
    /// go in this same write set (so exactly one change drops it).
    pub(super) async fn adjust_refs(&mut self, id: BlobId, delta: i64) -> Result<(), StoreError> {
        self.blob(id).await?;
        if let Some((_, d)) = self.blobs.get_mut(&id) {
            *d += delta;
        }
        Ok(())
    }

    /// Whether a record this change read has changed since (the commit
    /// would conflict).
    async fn stale(&self) -> Result<bool, StoreError> {
        for (space, key, expected) in &self.batch.conditions {
            if self.store.inner.backend.get(*space, key).await? != *expected {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The conflict error for this write set, naming the records it raced
    /// for (turns.rs).
    fn conflict(&self) -> StoreError {
        let keys = self
            .batch
            .conditions
            .iter()
            .map(|(_, key, _)| key.as_slice());
        StoreError::Conflict(self.store.inner.turns.contention(keys))
    }

    /// Announces a change to `folder` once the write set has committed.
    pub(super) fn touch(&mut self, user: &str, folder: &str) {
        let event = MailboxEvent {
            user: user.to_string(),
            folder: folder.to_string(),
        };
        if !self.touched.contains(&event) {
            self.touched.push(event);
        }
    }

    /// Reads each changed user's usage counter (counting it once if it does
    /// not exist yet), checks the quota when asked, and puts the new value.
    async fn write_usage(&mut self) -> Result<(), StoreError> {
        let changes = std::mem::take(&mut self.usage);
        for (user, (bytes, messages)) in changes {
            if bytes == 0 && messages == 0 {
                continue;
            }
            let key = usage_key(&user);
            let old = match self.read(key.clone()).await? {
                Some(v) => decode::<Usage>("usage", &v)?,
                None => self.store.count_usage(&user).await?,
            };
            if self.enforce_quota && bytes > 0 {
                self.store
                    .enforce_quota(&user, old, bytes.unsigned_abs())
                    .await?;
            }
            let new = Usage {
                bytes: old.bytes.saturating_add_signed(bytes),
                messages: old.messages.saturating_add_signed(messages),
            };
            self.batch.put(Space::Meta, key, encode(&new));
        }
        Ok(())
    }

    /// Writes back what changed and commits, all or nothing; then tells
    /// the listening sessions. A conflict is the caller's to retry.
    pub(super) async fn commit(mut self) -> Result<(), StoreError> {
        self.write_usage().await?;
        for c in &self.folders {
            if !c.dirty {
                continue;
            }
            let key = folder_key(&c.user, &c.name);
            match &c.info {
                Some(info) => self.batch.put(Space::Meta, key, encode(info)),
                None => self.batch.delete(Space::Meta, key),
            }
        }
        for (id, (record, delta)) in &self.blobs {
            if *delta == 0 {
                continue;
            }
            let refs = (i64::from(record.refs) + delta).max(0);
            if refs == 0 {
                self.batch.delete(Space::Meta, blob_key(*id));
                super::trace::mark_gone(&mut self.batch, *id);
                for n in 0..record.chunks {
                    self.batch.delete(Space::Blobs, chunk_key(*id, n).to_vec());
                }
            } else {
                let mut record = record.clone();
                record.refs = u32::try_from(refs).unwrap_or(u32::MAX);
                self.batch.put(Space::Meta, blob_key(*id), encode(&record));
            }
        }
        match self.store.inner.backend.commit_kept(&mut self.batch).await {
            Ok(()) => {}
            Err(BackendError::Conflict) => return Err(self.conflict()),
            Err(e) => return Err(e.into()),
        }
        for event in self.touched {
            self.store.notify(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sessions expunge the same message: the one that read it before
    /// the other dropped its last copy (and blob) runs again and finds it
    /// gone, instead of failing on the missing blob.
    #[tokio::test]
    async fn a_blob_dropped_by_a_racing_expunge_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let bob = "bob@example.test";
        store.add_user(bob, "pw").await.unwrap();
        let (_, uid) = store
            .append(bob, "INBOX", b"Subject: x\r\n\r\nx\r\n", Vec::new(), None)
            .await
            .unwrap();
        let mut ws = WriteSet::new(&store);
        ws.folder_mut(bob, "INBOX").await.unwrap();
        let meta = ws.message(bob, "INBOX", uid).await.unwrap().unwrap();
        assert_eq!(
            store.expunge(bob, "INBOX", &[uid]).await.unwrap(),
            vec![uid]
        );
        assert!(matches!(
            ws.adjust_refs(meta.blob, -1).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(
            store
                .expunge(bob, "INBOX", &[uid])
                .await
                .unwrap()
                .is_empty()
        );
        // Nothing raced: a missing blob is reported as such.
        let mut ws = WriteSet::new(&store);
        assert!(matches!(
            ws.adjust_refs(meta.blob, -1).await,
            Err(StoreError::MissingBlob(_))
        ));
    }
}
