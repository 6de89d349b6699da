//! Mailboxes: per user, folders (INBOX and the special-use folders) each with
//! a UIDVALIDITY, the next UID and the highest mod-sequence; per message its
//! UID, blob, size, flags, internal date and mod-sequence (DESIGN.md, the
//! mailbox model). POP3, IMAP and web mail all read through here.

use super::blobs::BlobWriter;
use super::queue::{QueueEntry, queue_key};
use super::subscriptions::kept_key;
use super::{BlobId, Store, StoreError, decode, encode, now};
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
    pub(super) fn create_folder_in(
        &self,
        user: &str,
        name: &str,
        batch: &mut sled::Batch,
    ) -> Result<FolderInfo, StoreError> {
        let info = new_folder(name, self.next_id()?);
        batch.insert(folder_key(user, name), encode(&info));
        Ok(info)
    }

    pub fn create_folder(&self, user: &str, name: &str) -> Result<FolderInfo, StoreError> {
        let name = canonical_folder(name);
        let _guard = self.lock();
        if self.inner.meta.contains_key(folder_key(user, &name))? {
            return Err(StoreError::FolderExists(name));
        }
        let mut batch = sled::Batch::default();
        let info = self.create_folder_in(user, &name, &mut batch)?;
        // A subscription kept from a deleted folder of this name now
        // belongs to the new folder (which starts out subscribed).
        batch.remove(kept_key(user, &name));
        self.inner.meta.apply_batch(batch)?;
        Ok(info)
    }

    pub fn folder(&self, user: &str, name: &str) -> Result<Option<FolderInfo>, StoreError> {
        match self
            .inner
            .meta
            .get(folder_key(user, &canonical_folder(name)))?
        {
            Some(v) => Ok(Some(decode("folder", &v)?)),
            None => Ok(None),
        }
    }

    pub fn folders(&self, user: &str) -> Result<Vec<FolderInfo>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.meta.scan_prefix(format!("f/{user}\0")) {
            let (_, v) = item?;
            out.push(decode("folder", &v)?);
        }
        Ok(out)
    }

    /// Every message in a folder, by ascending UID.
    pub fn messages(&self, user: &str, folder: &str) -> Result<Vec<MessageMeta>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .inner
            .meta
            .scan_prefix(messages_prefix(user, &canonical_folder(folder)))
        {
            let (_, v) = item?;
            out.push(decode("message", &v)?);
        }
        Ok(out)
    }

    pub fn message(
        &self,
        user: &str,
        folder: &str,
        uid: u32,
    ) -> Result<Option<MessageMeta>, StoreError> {
        match self
            .inner
            .meta
            .get(message_key(user, &canonical_folder(folder), uid))?
        {
            Some(v) => Ok(Some(decode("message", &v)?)),
            None => Ok(None),
        }
    }

    /// Puts one copy of `blob` into a folder inside `batch` (under the lock);
    /// `folders` caches the folder records changed in this batch.
    pub(super) fn add_to_folder(
        &self,
        user: &str,
        folder: &str,
        copy: NewCopy,
        folders: &mut Vec<(String, String, FolderInfo)>,
        batch: &mut sled::Batch,
    ) -> Result<u32, StoreError> {
        let NewCopy {
            blob,
            size,
            flags,
            internal_date,
        } = copy;
        let pos = match folders
            .iter()
            .position(|(u, f, _)| u == user && f == folder)
        {
            Some(p) => p,
            None => {
                let info = match self.folder(user, folder)? {
                    Some(i) => i,
                    None if folder == "INBOX" || folder == "Junk" => {
                        self.create_folder_in(user, folder, batch)?
                    }
                    None => return Err(StoreError::NoSuchFolder(folder.to_string())),
                };
                folders.push((user.to_string(), folder.to_string(), info));
                folders.len() - 1
            }
        };
        let info = &mut folders[pos].2;
        let uid = info.next_uid;
        info.next_uid += 1;
        info.highest_modseq += 1;
        let meta = MessageMeta {
            uid,
            blob,
            size,
            flags,
            internal_date,
            modseq: info.highest_modseq,
        };
        batch.insert(message_key(user, folder, uid), encode(&meta));
        batch.insert(folder_key(user, folder), encode(&*info));
        Ok(uid)
    }

    /// Commits a received message in one atomic batch: the body, a copy in
    /// the INBOX of each local user, and the queue entry for the rest.
    /// Returns the UIDs given, in the order of `local_users`. The caller
    /// flushes before acknowledging.
    pub fn accept_message(
        &self,
        writer: BlobWriter,
        prefix: Vec<u8>,
        local_users: &[String],
        queue: Option<&QueueEntry>,
    ) -> Result<Vec<u32>, StoreError> {
        self.accept_message_into(writer, prefix, local_users, "INBOX", queue)
    }

    /// `accept_message` with the local copies in `folder` (INBOX, or Junk
    /// for a quarantined message; a missing Junk folder is created).
    pub fn accept_message_into(
        &self,
        writer: BlobWriter,
        prefix: Vec<u8>,
        local_users: &[String],
        folder: &str,
        queue: Option<&QueueEntry>,
    ) -> Result<Vec<u32>, StoreError> {
        let blob = writer.id();
        let _guard = self.lock();
        let mut batch = sled::Batch::default();
        let refs = local_users.len() as u32 + u32::from(queue.is_some());
        let record = writer.finish(prefix, refs, &mut batch)?;
        let mut folders = Vec::new();
        let mut uids = Vec::with_capacity(local_users.len());
        let date = now();
        for user in local_users {
            uids.push(self.add_to_folder(
                user,
                folder,
                NewCopy {
                    blob,
                    size: record.size,
                    flags: Vec::new(),
                    internal_date: date,
                },
                &mut folders,
                &mut batch,
            )?);
        }
        if let Some(q) = queue {
            batch.insert(queue_key(q.id), encode(q));
        }
        self.inner.meta.apply_batch(batch)?;
        drop(_guard);
        for (user, folder, _) in folders {
            self.notify(super::MailboxEvent { user, folder });
        }
        Ok(uids)
    }

    /// Delivers an already stored blob to local users (queue-driven local
    /// delivery); adds one reference per copy.
    pub fn deliver_blob(&self, blob: BlobId, users: &[String]) -> Result<Vec<u32>, StoreError> {
        let _guard = self.lock();
        let record = self.blob(blob)?;
        let mut batch = sled::Batch::default();
        self.adjust_refs(blob, users.len() as i64, &mut batch)?;
        let mut folders = Vec::new();
        let mut uids = Vec::new();
        for user in users {
            uids.push(self.add_to_folder(
                user,
                "INBOX",
                NewCopy {
                    blob,
                    size: record.size,
                    flags: Vec::new(),
                    internal_date: now(),
                },
                &mut folders,
                &mut batch,
            )?);
        }
        self.inner.meta.apply_batch(batch)?;
        drop(_guard);
        for (user, folder, _) in folders {
            self.notify(MailboxEvent { user, folder });
        }
        Ok(uids)
    }

    /// Stores a complete message given as bytes into a folder (APPEND, Sent
    /// copies). Returns (UIDVALIDITY, UID).
    pub fn append(
        &self,
        user: &str,
        folder: &str,
        bytes: &[u8],
        flags: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<(u32, u32), StoreError> {
        let folder = canonical_folder(folder);
        if self.folder(user, &folder)?.is_none() {
            return Err(StoreError::NoSuchFolder(folder));
        }
        let mut writer = self.blob_writer(self.next_id()?)?;
        writer.write(bytes)?;
        let blob = writer.id();
        let _guard = self.lock();
        let mut batch = sled::Batch::default();
        let record = writer.finish(Vec::new(), 1, &mut batch)?;
        let mut folders = Vec::new();
        let uid = self.add_to_folder(
            user,
            &folder,
            NewCopy {
                blob,
                size: record.size,
                flags,
                internal_date: internal_date.unwrap_or_else(now),
            },
            &mut folders,
            &mut batch,
        )?;
        self.inner.meta.apply_batch(batch)?;
        let uidvalidity = folders.first().map(|(_, _, i)| i.uidvalidity).unwrap_or(0);
        drop(_guard);
        self.notify(MailboxEvent {
            user: user.to_string(),
            folder,
        });
        Ok((uidvalidity, uid))
    }

    /// Removes messages for good (IMAP EXPUNGE, POP3 DELE at QUIT).
    pub fn expunge(&self, user: &str, folder: &str, uids: &[u32]) -> Result<Vec<u32>, StoreError> {
        let folder = canonical_folder(folder);
        let guard = self.lock();
        let mut batch = sled::Batch::default();
        let mut removed = Vec::new();
        let mut dead_blobs = Vec::new();
        let mut info = self
            .folder(user, &folder)?
            .ok_or_else(|| StoreError::NoSuchFolder(folder.clone()))?;
        // Copies in one folder may share a blob: count references per blob.
        let mut refs: std::collections::BTreeMap<BlobId, i64> = std::collections::BTreeMap::new();
        for &uid in uids {
            if let Some(m) = self.message(user, &folder, uid)? {
                batch.remove(message_key(user, &folder, uid));
                *refs.entry(m.blob).or_default() -= 1;
                removed.push(uid);
            }
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        for (blob, delta) in refs {
            if self.adjust_refs(blob, delta, &mut batch)? {
                dead_blobs.push(blob);
            }
        }
        info.highest_modseq += 1;
        batch.insert(folder_key(user, &folder), encode(&info));
        self.inner.meta.apply_batch(batch)?;
        drop(guard);
        for blob in dead_blobs {
            self.remove_chunks(blob, 0)?;
        }
        self.notify(MailboxEvent {
            user: user.to_string(),
            folder,
        });
        Ok(removed)
    }

    /// Replaces a message's flags; returns its new mod-sequence.
    pub fn set_flags(
        &self,
        user: &str,
        folder: &str,
        uid: u32,
        flags: Vec<String>,
    ) -> Result<Option<u64>, StoreError> {
        let folder = canonical_folder(folder);
        let guard = self.lock();
        let Some(mut meta) = self.message(user, &folder, uid)? else {
            return Ok(None);
        };
        let mut info = self
            .folder(user, &folder)?
            .ok_or_else(|| StoreError::NoSuchFolder(folder.clone()))?;
        info.highest_modseq += 1;
        meta.flags = flags;
        meta.modseq = info.highest_modseq;
        let mut batch = sled::Batch::default();
        batch.insert(message_key(user, &folder, uid), encode(&meta));
        batch.insert(folder_key(user, &folder), encode(&info));
        self.inner.meta.apply_batch(batch)?;
        drop(guard);
        self.notify(MailboxEvent {
            user: user.to_string(),
            folder,
        });
        Ok(Some(meta.modseq))
    }

    pub(super) fn delete_folder_contents(
        &self,
        user: &str,
        folder: &str,
    ) -> Result<(), StoreError> {
        let uids: Vec<u32> = self.messages(user, folder)?.iter().map(|m| m.uid).collect();
        self.expunge(user, folder, &uids)?;
        Ok(())
    }

    /// Deletes a folder and its messages (never INBOX).
    pub fn delete_folder(&self, user: &str, folder: &str) -> Result<(), StoreError> {
        let folder = canonical_folder(folder);
        if self.folder(user, &folder)?.is_none() {
            return Err(StoreError::NoSuchFolder(folder));
        }
        self.delete_folder_contents(user, &folder)?;
        let _guard = self.lock();
        let mut batch = sled::Batch::default();
        if self.folder(user, &folder)?.is_some_and(|f| f.subscribed) {
            batch.insert(kept_key(user, &folder), b"".as_slice());
        }
        batch.remove(folder_key(user, &folder));
        self.inner.meta.apply_batch(batch)?;
        Ok(())
    }

    /// Drops the queue's reference to a blob (delivery finished).
    pub fn release_queue_entry(&self, entry: &QueueEntry) -> Result<(), StoreError> {
        let guard = self.lock();
        if !self.inner.meta.contains_key(queue_key(entry.id))? {
            return Ok(()); // already released: the reference is gone too
        }
        let mut batch = sled::Batch::default();
        batch.remove(queue_key(entry.id));
        let dead = self.adjust_refs(entry.blob, -1, &mut batch)?;
        self.inner.meta.apply_batch(batch)?;
        drop(guard);
        if dead {
            self.remove_chunks(entry.blob, 0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        crate::store::block_on(store.add_user("bob@example.test", "pw")).unwrap();
        crate::store::block_on(store.add_user("carol@example.test", "pw")).unwrap();
        (dir, store)
    }

    #[test]
    fn accept_delivers_one_blob_to_many_and_refcounts() {
        let (_d, store) = store();
        let mut w = store.blob_writer(store.next_id().unwrap()).unwrap();
        let body = vec![b'x'; 200_000];
        w.write(b"Subject: hi\r\n\r\n").unwrap();
        w.write(&body).unwrap();
        let blob = w.id();
        let users = vec![
            "bob@example.test".to_string(),
            "carol@example.test".to_string(),
        ];
        let uids = store
            .accept_message(w, b"Received: x\r\n".to_vec(), &users, None)
            .unwrap();
        assert_eq!(uids, vec![1, 1]);
        let bytes = store.read_blob(blob).unwrap();
        assert!(bytes.starts_with(b"Received: x\r\nSubject: hi\r\n\r\nxxx"));
        assert_eq!(
            bytes.len() as u64,
            store.messages("bob@example.test", "inbox").unwrap()[0].size
        );
        store.expunge("bob@example.test", "INBOX", &[1]).unwrap();
        assert!(store.read_blob(blob).is_ok(), "carol still holds it");
        store.expunge("carol@example.test", "INBOX", &[1]).unwrap();
        assert!(store.read_blob(blob).is_err());
    }

    #[test]
    fn uids_increase_and_are_never_reused() {
        let (_d, store) = store();
        let (_, a) = store
            .append("bob@example.test", "INBOX", b"a\r\n", vec![], None)
            .unwrap();
        let (_, b) = store
            .append("bob@example.test", "INBOX", b"b\r\n", vec![], None)
            .unwrap();
        store.expunge("bob@example.test", "INBOX", &[b]).unwrap();
        let (_, c) = store
            .append("bob@example.test", "INBOX", b"c\r\n", vec![], None)
            .unwrap();
        assert!(a < b && b < c);
        let modseq = store
            .set_flags("bob@example.test", "INBOX", a, vec![Flag::SEEN.into()])
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .folder("bob@example.test", "INBOX")
                .unwrap()
                .unwrap()
                .highest_modseq,
            modseq
        );
    }

    #[test]
    fn an_uncommitted_blob_leaves_nothing() {
        let (dir, store) = store();
        let id = store.next_id().unwrap();
        {
            let mut w = store.blob_writer(id).unwrap();
            w.write(&vec![b'y'; 300_000]).unwrap();
        }
        assert_eq!(store.inner.blobs.len(), 0);
        // A writer lost in a crash is swept at the next open.
        let id2 = store.next_id().unwrap();
        let mut w = store.blob_writer(id2).unwrap();
        w.write(&vec![b'z'; 100_000]).unwrap();
        w.committed = true; // as if the process died here
        drop(w);
        drop(store);
        let store = crate::store::reopen_for_test(dir.path());
        assert_eq!(store.inner.blobs.len(), 0);
    }
}
