//! Mailboxes: per user, folders (INBOX and the special-use folders) each with
//! a UIDVALIDITY, the next UID and the highest mod-sequence; per message its
//! UID, blob, size, flags, internal date and mod-sequence (DESIGN.md, the
//! mailbox model). POP3, IMAP and web mail all read through here. Every
//! change is one conditional write set (`writeset.rs`), retried when it
//! races another writer.

use super::backend::{KeyRange, ScanOrder, Space};
use super::blobs::BlobWriter;
use super::queue::QueueEntry;
use super::subscriptions::kept_key;
use super::writeset::WriteSet;
use super::{BlobId, Store, StoreError, decode, now};
use serde::{Deserialize, Serialize};

/// The folders every user has, with their special-use attribute (RFC 6154).
pub const SPECIAL_FOLDERS: [(&str, Option<&str>); 6] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

/// System flags; keywords are kept as plain strings beside them.
pub struct Flag;

impl Flag {
    pub const SEEN: &'static str = "\\Seen";
    pub const ANSWERED: &'static str = "\\Answered";
    pub const FLAGGED: &'static str = "\\Flagged";
    pub const DELETED: &'static str = "\\Deleted";
    pub const DRAFT: &'static str = "\\Draft";
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    pub uidvalidity: u32,
    pub next_uid: u32,
    pub highest_modseq: u64,
    pub special_use: Option<String>,
    pub subscribed: bool,
    /// The lowest UID no IMAP session has seen yet (\Recent); folders
    /// from before this field read 0, so their mail is recent once.
    #[serde(default)]
    pub first_recent: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub blob: BlobId,
    pub size: u64,
    pub flags: Vec<String>,
    pub internal_date: i64,
    pub modseq: u64,
}

/// One message copy to add to a folder.
pub(super) struct NewCopy {
    pub(super) blob: BlobId,
    pub(super) size: u64,
    pub(super) flags: Vec<String>,
    pub(super) internal_date: i64,
}

/// Something changed in a folder; IMAP IDLE and open sessions listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEvent {
    pub user: String,
    pub folder: String,
}

/// One local copy of a message being accepted: whose, in which folder,
/// with which flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCopy {
    pub user: String,
    pub folder: String,
    pub flags: Vec<String>,
}

/// INBOX is case-insensitive (RFC 3501 5.1); other names are kept as given.
pub fn canonical_folder(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else {
        name.to_string()
    }
}

pub(super) fn folder_key(user: &str, folder: &str) -> Vec<u8> {
    format!("f/{user}\0{folder}").into_bytes()
}

pub(super) fn messages_prefix(user: &str, folder: &str) -> Vec<u8> {
    format!("m/{user}\0{folder}\0").into_bytes()
}

pub(super) fn message_key(user: &str, folder: &str, uid: u32) -> Vec<u8> {
    let mut k = messages_prefix(user, folder);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

/// The record of a new, empty folder. UIDVALIDITY must change if a folder
/// is ever re-created: it comes from the clock and a fresh store id (`id`),
/// so two creations never share one.
pub(super) fn new_folder(name: &str, id: u64) -> FolderInfo {
    let special = SPECIAL_FOLDERS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, s)| s.map(str::to_string));
    let uidvalidity = ((now() as u64 & 0x7fff_ffff) as u32)
        .wrapping_add((id & 0xffff) as u32)
        .max(1);
    FolderInfo {
        name: name.to_string(),
        uidvalidity,
        next_uid: 1,
        highest_modseq: 1,
        special_use: special,
        subscribed: true,
        first_recent: 1,
    }
}

impl Store {
    pub async fn create_folder(&self, user: &str, name: &str) -> Result<FolderInfo, StoreError> {
        let name = canonical_folder(name);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            let info = ws.create_folder(user, &name).await?;
            // A subscription kept from a deleted folder of this name now
            // belongs to the new folder (which starts out subscribed).
            ws.batch.delete(Space::Meta, kept_key(user, &name));
            ws.commit().await?;
            Ok(info)
        })
        .await
    }

    pub async fn folder(&self, user: &str, name: &str) -> Result<Option<FolderInfo>, StoreError> {
        let key = folder_key(user, &canonical_folder(name));
        match self.inner.backend.get(Space::Meta, &key).await? {
            Some(v) => Ok(Some(decode("folder", &v)?)),
            None => Ok(None),
        }
    }

    pub async fn folders(&self, user: &str) -> Result<Vec<FolderInfo>, StoreError> {
        let prefix = format!("f/{user}\0").into_bytes();
        self.inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
            .await?
            .iter()
            .map(|(_, v)| decode("folder", v))
            .collect()
    }

    /// Every message in a folder, by ascending UID.
    pub async fn messages(&self, user: &str, folder: &str) -> Result<Vec<MessageMeta>, StoreError> {
        let prefix = messages_prefix(user, &canonical_folder(folder));
        self.inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
            .await?
            .iter()
            .map(|(_, v)| decode("message", v))
            .collect()
    }

    /// The folder's messages from UID `first` on (ascending): a range read.
    pub async fn messages_from(
        &self,
        user: &str,
        folder: &str,
        first: u32,
    ) -> Result<Vec<MessageMeta>, StoreError> {
        let folder = canonical_folder(folder);
        let range = KeyRange {
            start: message_key(user, &folder, first),
            end: KeyRange::prefix(&messages_prefix(user, &folder)).end,
        };
        self.inner
            .backend
            .scan(Space::Meta, &range, ScanOrder::ALL)
            .await?
            .iter()
            .map(|(_, v)| decode("message", v))
            .collect()
    }

    pub async fn message(
        &self,
        user: &str,
        folder: &str,
        uid: u32,
    ) -> Result<Option<MessageMeta>, StoreError> {
        let key = message_key(user, &canonical_folder(folder), uid);
        match self.inner.backend.get(Space::Meta, &key).await? {
            Some(v) => Ok(Some(decode("message", &v)?)),
            None => Ok(None),
        }
    }

    /// Commits a received message in one atomic write set: the body's
    /// last chunk and record, a copy in the INBOX of each local user (with
    /// the folders' new counters), and the queue entry for the rest.
    /// Returns the UIDs given, in the order of `local_users`. The caller
    /// flushes before acknowledging.
    pub async fn accept_message(
        &self,
        writer: BlobWriter,
        prefix: Vec<u8>,
        local_users: &[String],
        queue: Option<&QueueEntry>,
    ) -> Result<Vec<u32>, StoreError> {
        self.accept_message_into(writer, prefix, local_users, "INBOX", queue, None)
            .await
    }

    /// `accept_message` with the local copies in `folder` (INBOX, or Junk
    /// for a quarantined message; a missing Junk folder is created), and
    /// the message's decision trace in the same batch.
    pub async fn accept_message_into(
        &self,
        writer: BlobWriter,
        prefix: Vec<u8>,
        local_users: &[String],
        folder: &str,
        queue: Option<&QueueEntry>,
        trace: Option<&crate::trace::Trace>,
    ) -> Result<Vec<u32>, StoreError> {
        let copies: Vec<LocalCopy> = local_users
            .iter()
            .map(|u| LocalCopy {
                user: u.clone(),
                folder: folder.to_string(),
                flags: Vec::new(),
            })
            .collect();
        self.accept_message_copies(writer, prefix, copies, queue.cloned(), trace.cloned())
            .await
    }

    /// `accept_message` with each local copy's folder and flags given
    /// (the delivery hook's filing; a user may get several copies), and
    /// the message's decision trace in the same batch. Every copy counts
    /// in its user's usage (`add_copy`). The folders must exist, but INBOX
    /// and Junk are created when missing. Takes what it stores: the
    /// message waits for its write set with them (`combine.rs`).
    pub async fn accept_message_copies(
        &self,
        mut writer: BlobWriter,
        prefix: Vec<u8>,
        copies: Vec<LocalCopy>,
        queue: Option<QueueEntry>,
        trace: Option<crate::trace::Trace>,
    ) -> Result<Vec<u32>, StoreError> {
        let refs = copies.len() as u32 + u32::from(queue.is_some());
        let mut body = super::backend::Batch::new();
        let record = writer.finish(&prefix, refs, &mut body);
        let accepted = super::combine::Accepted {
            body,
            blob: writer.id(),
            size: record.size,
            date: now(),
            copies,
            queue,
            trace,
        };
        let uids = self.write_accepted(accepted).await?;
        writer.committed = true;
        Ok(uids)
    }

    /// Delivers an already stored blob to local users (queue-driven local
    /// delivery); adds one reference per copy. Over a user's quota nothing
    /// is delivered (`OverQuota`: the queue tries again later).
    pub async fn deliver_blob(
        &self,
        blob: BlobId,
        users: &[String],
    ) -> Result<Vec<u32>, StoreError> {
        let inboxes: Vec<Vec<u8>> = users.iter().map(|u| folder_key(u, "INBOX")).collect();
        self.attempt_in_turns(&inboxes, || async {
            let mut ws = WriteSet::new(self);
            ws.enforce_quota();
            let size = ws.blob(blob).await?.size;
            ws.adjust_refs(blob, users.len() as i64).await?;
            let mut uids = Vec::with_capacity(users.len());
            for user in users {
                let copy = NewCopy {
                    blob,
                    size,
                    flags: Vec::new(),
                    internal_date: now(),
                };
                uids.push(ws.add_copy(user, "INBOX", copy, true).await?);
            }
            ws.commit().await?;
            Ok(uids)
        })
        .await
    }

    /// Stores a complete message given as bytes into a folder (APPEND, Sent
    /// copies). Returns (UIDVALIDITY, UID).
    pub async fn append(
        &self,
        user: &str,
        folder: &str,
        bytes: &[u8],
        flags: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<(u32, u32), StoreError> {
        self.append_with(user, folder, bytes, flags, internal_date, None)
            .await
    }

    /// `append`, writing `extra` (a Meta key and value) in the same write
    /// set (a migration's progress mark: the message and the mark are
    /// stored together or not at all).
    pub(super) async fn append_with(
        &self,
        user: &str,
        folder: &str,
        bytes: &[u8],
        flags: Vec<String>,
        internal_date: Option<i64>,
        extra: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(u32, u32), StoreError> {
        let folder = canonical_folder(folder);
        if self.folder(user, &folder).await?.is_none() {
            return Err(StoreError::NoSuchFolder(folder));
        }
        let mut writer = self.blob_writer(self.next_id().await?);
        writer.write(bytes).await?;
        let writer_ref = &writer;
        let date = internal_date.unwrap_or_else(now);
        let done = self
            .attempt(|| async {
                let mut ws = WriteSet::new(self);
                ws.enforce_quota();
                let record = writer_ref.finish(&[], 1, &mut ws.batch);
                let copy = NewCopy {
                    blob: writer_ref.id(),
                    size: record.size,
                    flags: flags.clone(),
                    internal_date: date,
                };
                let uid = ws.add_copy(user, &folder, copy, false).await?;
                let uidvalidity = ws.folder(user, &folder).await?.map_or(0, |f| f.uidvalidity);
                if let Some((key, value)) = &extra {
                    ws.batch.put(Space::Meta, key.clone(), value.clone());
                }
                ws.commit().await?;
                Ok((uidvalidity, uid))
            })
            .await?;
        writer.committed = true;
        Ok(done)
    }

    /// Adds to `ws` the removal of `uids` from `folder` (with their
    /// references, the folder's new mod-sequence and, with `remember`,
    /// the QRESYNC record); returns the UIDs that existed.
    pub(super) async fn expunge_in(
        &self,
        ws: &mut WriteSet<'_>,
        user: &str,
        folder: &str,
        uids: &[u32],
        remember: bool,
    ) -> Result<Vec<u32>, StoreError> {
        ws.folder_mut(user, folder).await?;
        let mut removed = Vec::new();
        // Copies in one folder may share a blob: count references per blob.
        let mut refs: std::collections::BTreeMap<BlobId, i64> = std::collections::BTreeMap::new();
        for &uid in uids {
            if let Some(m) = ws.message(user, folder, uid).await? {
                ws.remove_message(user, folder, &m);
                *refs.entry(m.blob).or_default() -= 1;
                removed.push(uid);
            }
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        for (blob, delta) in refs {
            ws.adjust_refs(blob, delta).await?;
        }
        let info = ws.folder_mut(user, folder).await?;
        info.highest_modseq += 1;
        let modseq = info.highest_modseq;
        if remember {
            self.record_vanished(user, folder, modseq, &removed, &mut ws.batch)
                .await?;
        }
        ws.touch(user, folder);
        Ok(removed)
    }

    /// Removes messages for good (IMAP EXPUNGE, POP3 DELE at QUIT).
    pub async fn expunge(
        &self,
        user: &str,
        folder: &str,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        let folder = canonical_folder(folder);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            let removed = self.expunge_in(&mut ws, user, &folder, uids, true).await?;
            if !removed.is_empty() {
                ws.commit().await?;
            }
            Ok(removed)
        })
        .await
    }

    /// Replaces a message's flags; returns its new mod-sequence.
    pub async fn set_flags(
        &self,
        user: &str,
        folder: &str,
        uid: u32,
        flags: Vec<String>,
    ) -> Result<Option<u64>, StoreError> {
        let folder = canonical_folder(folder);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            ws.folder_mut(user, &folder).await?;
            let Some(mut meta) = ws.message(user, &folder, uid).await? else {
                return Ok(None);
            };
            let info = ws.folder_mut(user, &folder).await?;
            info.highest_modseq += 1;
            meta.flags = flags.clone();
            meta.modseq = info.highest_modseq;
            ws.put_message(user, &folder, &meta);
            ws.touch(user, &folder);
            ws.commit().await?;
            Ok(Some(meta.modseq))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user("bob@example.test", "pw").await.unwrap();
        store.add_user("carol@example.test", "pw").await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn accept_delivers_one_blob_to_many_and_refcounts() {
        let (_d, store) = store().await;
        let mut w = store.blob_writer(store.next_id().await.unwrap());
        let body = vec![b'x'; 200_000];
        w.write(b"Subject: hi\r\n\r\n").await.unwrap();
        w.write(&body).await.unwrap();
        let blob = w.id();
        let users = vec![
            "bob@example.test".to_string(),
            "carol@example.test".to_string(),
        ];
        let uids = store
            .accept_message(w, b"Received: x\r\n".to_vec(), &users, None)
            .await
            .unwrap();
        assert_eq!(uids, vec![1, 1]);
        let bytes = store.read_blob(blob).await.unwrap();
        assert!(bytes.starts_with(b"Received: x\r\nSubject: hi\r\n\r\nxxx"));
        assert_eq!(
            bytes.len() as u64,
            store.messages("bob@example.test", "inbox").await.unwrap()[0].size
        );
        store
            .expunge("bob@example.test", "INBOX", &[1])
            .await
            .unwrap();
        assert!(store.read_blob(blob).await.is_ok(), "carol still holds it");
        store
            .expunge("carol@example.test", "INBOX", &[1])
            .await
            .unwrap();
        assert!(store.read_blob(blob).await.is_err());
    }

    #[tokio::test]
    async fn uids_increase_and_are_never_reused() {
        let (_d, store) = store().await;
        let (_, a) = store
            .append("bob@example.test", "INBOX", b"a\r\n", vec![], None)
            .await
            .unwrap();
        let (_, b) = store
            .append("bob@example.test", "INBOX", b"b\r\n", vec![], None)
            .await
            .unwrap();
        store
            .expunge("bob@example.test", "INBOX", &[b])
            .await
            .unwrap();
        let (_, c) = store
            .append("bob@example.test", "INBOX", b"c\r\n", vec![], None)
            .await
            .unwrap();
        assert!(a < b && b < c);
        let modseq = store
            .set_flags("bob@example.test", "INBOX", a, vec![Flag::SEEN.into()])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .folder("bob@example.test", "INBOX")
                .await
                .unwrap()
                .unwrap()
                .highest_modseq,
            modseq
        );
    }

    #[tokio::test]
    async fn an_uncommitted_blob_leaves_nothing() {
        let (dir, store) = store().await;
        let id = store.next_id().await.unwrap();
        {
            let mut w = store.blob_writer(id);
            w.write(&vec![b'y'; 300_000]).await.unwrap();
            assert_eq!(store.count_for_test(Space::Blobs).await, 4);
        }
        // The dropped writer removes its chunks in the background.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while store.count_for_test(Space::Blobs).await > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(store.count_for_test(Space::Blobs).await, 0);
        // A writer lost in a crash is swept at the next open.
        let id2 = store.next_id().await.unwrap();
        let mut w = store.blob_writer(id2);
        w.write(&vec![b'z'; 100_000]).await.unwrap();
        w.committed = true; // as if the process died here
        drop(w);
        drop(store);
        let store = crate::store::reopen_for_test(dir.path()).await;
        assert_eq!(store.count_for_test(Space::Blobs).await, 0);
        assert_eq!(
            store.count_for_test(Space::Meta).await,
            2 + 2 * 6,
            "users and folders only"
        );
    }
}
