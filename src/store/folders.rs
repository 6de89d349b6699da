//! Folder operations IMAP needs beyond delivery: renaming (with the folders
//! below), subscriptions, copying and moving messages between folders
//! without duplicating their bodies (a copy is one more reference on the
//! same blob), and flag changes on many messages in one batch. Every change
//! is one sled batch under the write lock, and is announced to the
//! sessions listening on `Store::subscribe`.

use super::mailbox::{NewCopy, canonical_folder, folder_key, message_key, messages_prefix};
use super::subscriptions::kept_key;
use super::{BlobId, FolderInfo, MailboxEvent, MessageMeta, Store, StoreError, decode, encode};
use std::collections::HashMap;

/// The hierarchy separator of folder names.
pub const SEPARATOR: char = '/';

/// Longest folder name accepted.
const MAX_NAME: usize = 512;

/// A folder name from a client (IMAP, web mail), checked and in canonical
/// form. A user has one personal namespace, "/" separates levels, and
/// names that try to leave it (`..`, other namespaces, wildcards, control
/// characters) are refused; INBOX is case-insensitive.
pub fn check_folder_name(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("invalid folder name length".into());
    }
    if name.starts_with(['#', '~']) {
        return Err("other namespaces are not available".into());
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '*' || c == '%' || c == '\\' || c == '"')
    {
        return Err(
            "folder names may not contain wildcards, quotes, backslashes or control characters"
                .into(),
        );
    }
    let parts: Vec<&str> = name.split(SEPARATOR).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err("folder names may not have empty, \".\" or \"..\" levels".into());
    }
    // INBOX is case-insensitive, also as the first level of a longer name.
    let mut out = String::with_capacity(name.len());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        out.push_str(if i == 0 && p.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            p
        });
    }
    Ok(out)
}

/// What a flag change did: (UID, new mod-sequence) for the messages
/// changed, and the UIDs left alone because they changed since
/// UNCHANGEDSINCE.
pub type FlagChanges = (Vec<(u32, u64, Vec<String>)>, Vec<u32>);

/// What a COPY or MOVE did: the target's UIDVALIDITY and (source UID,
/// new UID) pairs, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    pub uidvalidity: u32,
    pub pairs: Vec<(u32, u32)>,
}

impl Store {
    /// Renames a folder and every folder below it (`a` → `b` moves `a/x`
    /// to `b/x`). Renaming INBOX moves its messages into a new folder and
    /// leaves INBOX empty (RFC 3501 6.3.5).
    pub fn rename_folder(&self, user: &str, from: &str, to: &str) -> Result<(), StoreError> {
        let from = canonical_folder(from);
        let to = canonical_folder(to);
        if self.folder(user, &from)?.is_none() {
            return Err(StoreError::NoSuchFolder(from));
        }
        if self.folder(user, &to)?.is_some() || to == "INBOX" {
            return Err(StoreError::FolderExists(to));
        }
        if from == "INBOX" {
            self.create_folder(user, &to)?;
            let uids: Vec<u32> = self
                .messages(user, "INBOX")?
                .iter()
                .map(|m| m.uid)
                .collect();
            self.copy_messages(user, "INBOX", &uids, &to, true)?;
            return Ok(());
        }
        let below = format!("{from}{SEPARATOR}");
        let guard = self.lock();
        let mut batch = sled::Batch::default();
        let mut renamed = Vec::new();
        for info in self.folders(user)? {
            let new_name = if info.name == from {
                to.clone()
            } else if let Some(rest) = info.name.strip_prefix(&below) {
                format!("{to}{SEPARATOR}{rest}")
            } else {
                continue;
            };
            if new_name != to && self.folder(user, &new_name)?.is_some() {
                return Err(StoreError::FolderExists(new_name));
            }
            for item in self
                .inner
                .meta
                .scan_prefix(messages_prefix(user, &info.name))
            {
                let (key, value) = item?;
                let meta: MessageMeta = decode("message", &value)?;
                batch.remove(key);
                batch.insert(message_key(user, &new_name, meta.uid), value);
            }
            batch.remove(folder_key(user, &info.name));
            let mut moved = info.clone();
            moved.name = new_name.clone();
            batch.insert(folder_key(user, &new_name), encode(&moved));
            renamed.push(info.name);
        }
        self.inner.meta.apply_batch(batch)?;
        drop(guard);
        for folder in renamed {
            self.notify(MailboxEvent {
                user: user.to_string(),
                folder,
            });
        }
        Ok(())
    }

    /// Sets a folder's subscription flag. A name without a folder can
    /// only be unsubscribed (when its subscription was kept).
    pub fn set_subscribed(
        &self,
        user: &str,
        folder: &str,
        subscribed: bool,
    ) -> Result<(), StoreError> {
        let folder = canonical_folder(folder);
        let _guard = self.lock();
        let Some(mut info) = self.folder(user, &folder)? else {
            let kept = kept_key(user, &folder);
            if !subscribed && self.inner.meta.remove(kept)?.is_some() {
                return Ok(());
            }
            return Err(StoreError::NoSuchFolder(folder));
        };
        info.subscribed = subscribed;
        self.inner
            .meta
            .insert(folder_key(user, &folder), encode(&info))?;
        Ok(())
    }

    /// Copies messages to another folder of the same user, sharing their
    /// bodies; with `remove_source` the originals go (MOVE), in the same
    /// atomic batch. UIDs that no longer exist are skipped. The caller
    /// flushes before acknowledging.
    pub fn copy_messages(
        &self,
        user: &str,
        from: &str,
        uids: &[u32],
        to: &str,
        remove_source: bool,
    ) -> Result<CopyResult, StoreError> {
        let from = canonical_folder(from);
        let to = canonical_folder(to);
        let guard = self.lock();
        let mut source = self
            .folder(user, &from)?
            .ok_or_else(|| StoreError::NoSuchFolder(from.clone()))?;
        let target = self
            .folder(user, &to)?
            .ok_or_else(|| StoreError::NoSuchFolder(to.clone()))?;
        let mut batch = sled::Batch::default();
        let mut folders: Vec<(String, String, FolderInfo)> =
            vec![(user.to_string(), to.clone(), target.clone())];
        let mut refs: HashMap<BlobId, i64> = HashMap::new();
        let mut pairs = Vec::with_capacity(uids.len());
        for &uid in uids {
            let Some(m) = self.message(user, &from, uid)? else {
                continue;
            };
            let copy = NewCopy {
                blob: m.blob,
                size: m.size,
                flags: m.flags.clone(),
                internal_date: m.internal_date,
            };
            let new_uid = self.add_to_folder(user, &to, copy, &mut folders, &mut batch)?;
            if remove_source {
                batch.remove(message_key(user, &from, uid));
            } else {
                *refs.entry(m.blob).or_default() += 1;
            }
            pairs.push((uid, new_uid));
        }
        if pairs.is_empty() {
            return Ok(CopyResult {
                uidvalidity: target.uidvalidity,
                pairs,
            });
        }
        for (blob, delta) in refs {
            self.adjust_refs(blob, delta, &mut batch)?;
        }
        if remove_source && from != to {
            source.highest_modseq += 1;
            batch.insert(folder_key(user, &from), encode(&source));
        }
        self.inner.meta.apply_batch(batch)?;
        drop(guard);
        self.notify(MailboxEvent {
            user: user.to_string(),
            folder: to,
        });
        if remove_source {
            self.notify(MailboxEvent {
                user: user.to_string(),
                folder: from,
            });
        }
        Ok(CopyResult {
            uidvalidity: target.uidvalidity,
            pairs,
        })
    }

    /// Changes the flags of many messages at once: each listed UID gets
    /// `op` applied to its *current* flags under the write lock, so two
    /// sessions adding and removing different flags never undo each
    /// other. Returns (UID, new mod-sequence, new flags) for the messages
    /// that changed. With `unchanged_since`, messages whose mod-sequence is
    /// higher are left alone and returned in the second list (CONDSTORE).
    pub fn store_flags(
        &self,
        user: &str,
        folder: &str,
        uids: &[u32],
        op: &FlagOp,
        unchanged_since: Option<u64>,
    ) -> Result<FlagChanges, StoreError> {
        let folder = canonical_folder(folder);
        let guard = self.lock();
        let mut info = self
            .folder(user, &folder)?
            .ok_or_else(|| StoreError::NoSuchFolder(folder.clone()))?;
        let mut batch = sled::Batch::default();
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for uid in uids {
            let Some(mut meta) = self.message(user, &folder, *uid)? else {
                continue;
            };
            if unchanged_since.is_some_and(|since| meta.modseq > since) {
                failed.push(*uid);
                continue;
            }
            let flags = op.apply(&meta.flags);
            if meta.flags == flags {
                continue;
            }
            info.highest_modseq += 1;
            meta.flags = flags;
            meta.modseq = info.highest_modseq;
            batch.insert(message_key(user, &folder, *uid), encode(&meta));
            done.push((*uid, meta.modseq, meta.flags));
        }
        if done.is_empty() {
            return Ok((done, failed));
        }
        batch.insert(folder_key(user, &folder), encode(&info));
        self.inner.meta.apply_batch(batch)?;
        drop(guard);
        self.notify(MailboxEvent {
            user: user.to_string(),
            folder,
        });
        Ok((done, failed))
    }

    /// Claims the messages that are new to every session (IMAP's \Recent):
    /// the UIDs from the folder's recent mark up to `below` (exclusive)
    /// become this caller's, and the mark moves to `below`. Returns the old
    /// mark; UIDs at or above it and below `below` are the caller's recent
    /// messages.
    pub fn claim_recent(&self, user: &str, folder: &str, below: u32) -> Result<u32, StoreError> {
        let folder = canonical_folder(folder);
        let _guard = self.lock();
        let mut info = self
            .folder(user, &folder)?
            .ok_or_else(|| StoreError::NoSuchFolder(folder.clone()))?;
        let old = info.first_recent;
        if below > old {
            info.first_recent = below;
            self.inner
                .meta
                .insert(folder_key(user, &folder), encode(&info))?;
        }
        Ok(old)
    }
}

/// How STORE changes a message's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagOp {
    Replace(Vec<String>),
    Add(Vec<String>),
    Remove(Vec<String>),
}

impl FlagOp {
    /// The flags after the change (no duplicates; system flags compare
    /// case-insensitively, as do keywords).
    pub fn apply(&self, current: &[String]) -> Vec<String> {
        let same = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
        let mut out: Vec<String> = Vec::with_capacity(current.len() + 2);
        let push = |f: &String, out: &mut Vec<String>| {
            if !out.iter().any(|o| same(o, f)) {
                out.push(f.clone());
            }
        };
        match self {
            FlagOp::Replace(new) => new.iter().for_each(|f| push(f, &mut out)),
            FlagOp::Add(new) => current
                .iter()
                .chain(new.iter())
                .for_each(|f| push(f, &mut out)),
            FlagOp::Remove(gone) => current
                .iter()
                .filter(|f| !gone.iter().any(|g| same(g, f)))
                .for_each(|f| push(f, &mut out)),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        crate::store::block_on(store.add_user("bob@example.test", "pw")).unwrap();
        (dir, store)
    }

    const BOB: &str = "bob@example.test";

    #[test]
    fn copy_shares_the_blob_and_move_removes_the_source() {
        let (_d, store) = store();
        let (_, a) = store
            .append(
                BOB,
                "INBOX",
                b"Subject: a\r\n\r\nx\r\n",
                vec!["\\Seen".into()],
                None,
            )
            .unwrap();
        let copied = store
            .copy_messages(BOB, "INBOX", &[a, 99], "Archive", false)
            .unwrap();
        assert_eq!(copied.pairs, vec![(a, 1)]);
        let blob = store.message(BOB, "INBOX", a).unwrap().unwrap().blob;
        assert_eq!(
            store.message(BOB, "Archive", 1).unwrap().unwrap().blob,
            blob
        );
        assert_eq!(
            store.message(BOB, "Archive", 1).unwrap().unwrap().flags,
            vec!["\\Seen".to_string()]
        );
        store.expunge(BOB, "INBOX", &[a]).unwrap();
        assert!(store.read_blob(blob).is_ok(), "the copy still holds it");
        let moved = store
            .copy_messages(BOB, "Archive", &[1], "Trash", true)
            .unwrap();
        assert_eq!(moved.pairs, vec![(1, 1)]);
        assert!(store.messages(BOB, "Archive").unwrap().is_empty());
        store.expunge(BOB, "Trash", &[1]).unwrap();
        assert!(store.read_blob(blob).is_err(), "last reference gone");
    }

    #[test]
    fn rename_moves_children_and_inbox_rename_empties_inbox() {
        let (_d, store) = store();
        store.create_folder(BOB, "a").unwrap();
        store.create_folder(BOB, "a/b").unwrap();
        store
            .append(BOB, "a/b", b"x\r\n\r\ny\r\n", vec![], None)
            .unwrap();
        store.rename_folder(BOB, "a", "c").unwrap();
        assert!(store.folder(BOB, "a").unwrap().is_none());
        assert_eq!(store.messages(BOB, "c/b").unwrap().len(), 1);
        store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .unwrap();
        store.rename_folder(BOB, "INBOX", "old").unwrap();
        assert!(store.messages(BOB, "INBOX").unwrap().is_empty());
        assert_eq!(store.messages(BOB, "old").unwrap().len(), 1);
    }

    #[test]
    fn store_flags_honours_unchanged_since() {
        let (_d, store) = store();
        let (_, a) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .unwrap();
        let (_, b) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .unwrap();
        let before = store.message(BOB, "INBOX", a).unwrap().unwrap().modseq;
        store.set_flags(BOB, "INBOX", b, vec!["x".into()]).unwrap();
        let (done, failed) = store
            .store_flags(
                BOB,
                "INBOX",
                &[a, b],
                &FlagOp::Add(vec!["\\Seen".into()]),
                Some(before),
            )
            .unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(failed, vec![b]);
    }

    #[test]
    fn flag_changes_apply_to_current_flags() {
        let (_d, store) = store();
        let (_, a) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec!["\\Seen".into()], None)
            .unwrap();
        // Two sessions with the same stale view: one adds, one removes.
        store
            .store_flags(
                BOB,
                "INBOX",
                &[a],
                &FlagOp::Add(vec!["\\Answered".into()]),
                None,
            )
            .unwrap();
        store
            .store_flags(
                BOB,
                "INBOX",
                &[a],
                &FlagOp::Remove(vec!["\\seen".into()]),
                None,
            )
            .unwrap();
        let flags = store.message(BOB, "INBOX", a).unwrap().unwrap().flags;
        assert_eq!(flags, vec!["\\Answered".to_string()]);
    }

    #[test]
    fn recent_is_claimed_once() {
        let (_d, store) = store();
        let (_, a) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .unwrap();
        assert_eq!(store.claim_recent(BOB, "INBOX", a + 1).unwrap(), 1);
        assert_eq!(store.claim_recent(BOB, "INBOX", a + 1).unwrap(), a + 1);
        assert_eq!(
            store.folder(BOB, "INBOX").unwrap().unwrap().first_recent,
            a + 1
        );
    }
}
