//! Folder operations IMAP needs beyond delivery: renaming (with the folders
//! below), subscriptions, copying and moving messages between folders
//! without duplicating their bodies (a copy is one more reference on the
//! same blob), and flag changes on many messages in one write set. Every
//! change is one conditional write set over the storage seam
//! (`writeset.rs`: the folders it reads must be unchanged when it commits,
//! else it runs again on what is there now), and is announced to the
//! sessions listening on `Store::subscribe`.

use super::backend::{KeyRange, ScanOrder, Space};
use super::mailbox::{NewCopy, canonical_folder, message_key, messages_prefix};
use super::subscriptions::kept_key;
use super::writeset::WriteSet;
use super::{BlobId, MessageMeta, Store, StoreError, decode};
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
    pub async fn rename_folder(&self, user: &str, from: &str, to: &str) -> Result<(), StoreError> {
        let from = canonical_folder(from);
        let to = canonical_folder(to);
        if self.folder(user, &from).await?.is_none() {
            return Err(StoreError::NoSuchFolder(from));
        }
        if self.folder(user, &to).await?.is_some() || to == "INBOX" {
            return Err(StoreError::FolderExists(to));
        }
        if from == "INBOX" {
            self.create_folder(user, &to).await?;
            let uids: Vec<u32> = self
                .messages(user, "INBOX")
                .await?
                .iter()
                .map(|m| m.uid)
                .collect();
            self.copy_messages(user, "INBOX", &uids, &to, true).await?;
            return Ok(());
        }
        let below = format!("{from}{SEPARATOR}");
        let backend = &self.inner.backend;
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            for info in self.folders(user).await? {
                let new_name = if info.name == from {
                    to.clone()
                } else if let Some(rest) = info.name.strip_prefix(&below) {
                    format!("{to}{SEPARATOR}{rest}")
                } else {
                    continue;
                };
                if ws.folder(user, &new_name).await?.is_some() {
                    return Err(StoreError::FolderExists(new_name));
                }
                let Some(mut moved) = ws.folder(user, &info.name).await?.cloned() else {
                    continue;
                };
                let prefix = messages_prefix(user, &info.name);
                for (key, value) in backend
                    .scan(Space::Meta, &KeyRange::prefix(&prefix), ScanOrder::ALL)
                    .await?
                {
                    let meta: MessageMeta = decode("message", &value)?;
                    ws.batch.delete(Space::Meta, key);
                    ws.batch
                        .put(Space::Meta, message_key(user, &new_name, meta.uid), value);
                }
                self.rename_vanished(user, &info.name, &new_name, &mut ws.batch)
                    .await?;
                ws.remove_folder(user, &info.name).await?;
                moved.name = new_name.clone();
                ws.set_folder(user, &new_name, moved).await?;
                ws.touch(user, &info.name);
            }
            ws.commit().await
        })
        .await
    }

    /// Sets a folder's subscription flag. A name without a folder can
    /// only be unsubscribed (when its subscription was kept).
    pub async fn set_subscribed(
        &self,
        user: &str,
        folder: &str,
        subscribed: bool,
    ) -> Result<(), StoreError> {
        let folder = canonical_folder(folder);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            if ws.folder(user, &folder).await?.is_none() {
                let kept = kept_key(user, &folder);
                if !subscribed && ws.read(kept.clone()).await?.is_some() {
                    ws.batch.delete(Space::Meta, kept);
                    return ws.commit().await;
                }
                return Err(StoreError::NoSuchFolder(folder.clone()));
            }
            ws.folder_mut(user, &folder).await?.subscribed = subscribed;
            ws.commit().await
        })
        .await
    }

    /// Copies messages to another folder of the same user, sharing their
    /// bodies; with `remove_source` the originals go (MOVE), in the same
    /// atomic write set. UIDs that no longer exist are skipped. The caller
    /// flushes before acknowledging.
    pub async fn copy_messages(
        &self,
        user: &str,
        from: &str,
        uids: &[u32],
        to: &str,
        remove_source: bool,
    ) -> Result<CopyResult, StoreError> {
        let from = canonical_folder(from);
        let to = canonical_folder(to);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            ws.enforce_quota();
            ws.folder_mut(user, &from).await?;
            let uidvalidity = ws
                .folder(user, &to)
                .await?
                .ok_or_else(|| StoreError::NoSuchFolder(to.clone()))?
                .uidvalidity;
            let mut refs: HashMap<BlobId, i64> = HashMap::new();
            let mut pairs = Vec::with_capacity(uids.len());
            for &uid in uids {
                let Some(m) = ws.message(user, &from, uid).await? else {
                    continue;
                };
                let copy = NewCopy {
                    blob: m.blob,
                    size: m.size,
                    flags: m.flags.clone(),
                    internal_date: m.internal_date,
                };
                if remove_source {
                    ws.remove_message(user, &from, &m);
                } else {
                    *refs.entry(m.blob).or_default() += 1;
                }
                let new_uid = ws.add_copy(user, &to, copy, false).await?;
                pairs.push((uid, new_uid));
            }
            if pairs.is_empty() {
                return Ok(CopyResult { uidvalidity, pairs });
            }
            for (blob, delta) in refs {
                ws.adjust_refs(blob, delta).await?;
            }
            if remove_source && from != to {
                let source = ws.folder_mut(user, &from).await?;
                source.highest_modseq += 1;
                let modseq = source.highest_modseq;
                let moved: Vec<u32> = pairs.iter().map(|&(uid, _)| uid).collect();
                self.record_vanished(user, &from, modseq, &moved, &mut ws.batch)
                    .await?;
                ws.touch(user, &from);
            }
            ws.commit().await?;
            Ok(CopyResult { uidvalidity, pairs })
        })
        .await
    }

    /// Changes the flags of many messages at once: each listed UID gets
    /// `op` applied to its *current* flags in one conditional write set, so
    /// two sessions adding and removing different flags never undo each
    /// other (the later one runs again on the earlier one's result).
    /// Returns (UID, new mod-sequence, new flags) for the messages that
    /// changed. With `unchanged_since`, messages whose mod-sequence is
    /// higher are left alone and returned in the second list (CONDSTORE).
    pub async fn store_flags(
        &self,
        user: &str,
        folder: &str,
        uids: &[u32],
        op: &FlagOp,
        unchanged_since: Option<u64>,
    ) -> Result<FlagChanges, StoreError> {
        let folder = canonical_folder(folder);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            ws.folder_mut(user, &folder).await?;
            let mut done = Vec::new();
            let mut failed = Vec::new();
            for uid in uids {
                let Some(mut meta) = ws.message(user, &folder, *uid).await? else {
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
                let info = ws.folder_mut(user, &folder).await?;
                info.highest_modseq += 1;
                meta.flags = flags;
                meta.modseq = info.highest_modseq;
                ws.put_message(user, &folder, &meta);
                done.push((*uid, meta.modseq, meta.flags));
            }
            if done.is_empty() {
                return Ok((done, failed));
            }
            ws.touch(user, &folder);
            ws.commit().await?;
            Ok((done, failed))
        })
        .await
    }

    /// Claims the messages that are new to every session (IMAP's \Recent):
    /// the UIDs from the folder's recent mark up to `below` (exclusive)
    /// become this caller's, and the mark moves to `below`. Returns the old
    /// mark; UIDs at or above it and below `below` are the caller's recent
    /// messages.
    pub async fn claim_recent(
        &self,
        user: &str,
        folder: &str,
        below: u32,
    ) -> Result<u32, StoreError> {
        let folder = canonical_folder(folder);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            let info = ws.folder_mut(user, &folder).await?;
            let old = info.first_recent;
            if below > old {
                info.first_recent = below;
                ws.commit().await?;
            }
            Ok(old)
        })
        .await
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

impl Store {
    /// Empties a folder (its messages, their references), keeping it.
    pub(super) async fn delete_folder_contents(
        &self,
        user: &str,
        folder: &str,
    ) -> Result<(), StoreError> {
        let uids: Vec<u32> = self
            .messages(user, folder)
            .await?
            .iter()
            .map(|m| m.uid)
            .collect();
        self.expunge(user, folder, &uids).await?;
        Ok(())
    }

    /// Deletes a folder and its messages (never INBOX), in one write set.
    pub async fn delete_folder(&self, user: &str, folder: &str) -> Result<(), StoreError> {
        let folder = canonical_folder(folder);
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            let subscribed = match ws.folder(user, &folder).await? {
                Some(info) => info.subscribed,
                None => return Err(StoreError::NoSuchFolder(folder.clone())),
            };
            if subscribed {
                ws.batch
                    .put(Space::Meta, kept_key(user, &folder), Vec::new());
            }
            let uids: Vec<u32> = self
                .messages(user, &folder)
                .await?
                .iter()
                .map(|m| m.uid)
                .collect();
            self.expunge_in(&mut ws, user, &folder, &uids, false)
                .await?;
            ws.remove_folder(user, &folder).await?;
            self.drop_vanished(user, &folder, &mut ws.batch).await?;
            ws.commit().await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::store_with_bob as store;

    const BOB: &str = "bob@example.test";

    #[tokio::test]
    async fn copy_shares_the_blob_and_move_removes_the_source() {
        let (_d, store) = store().await;
        let (_, a) = store
            .append(
                BOB,
                "INBOX",
                b"Subject: a\r\n\r\nx\r\n",
                vec!["\\Seen".into()],
                None,
            )
            .await
            .unwrap();
        let copied = store
            .copy_messages(BOB, "INBOX", &[a, 99], "Archive", false)
            .await
            .unwrap();
        assert_eq!(copied.pairs, vec![(a, 1)]);
        let blob = store.message(BOB, "INBOX", a).await.unwrap().unwrap().blob;
        assert_eq!(
            store
                .message(BOB, "Archive", 1)
                .await
                .unwrap()
                .unwrap()
                .blob,
            blob
        );
        assert_eq!(
            store
                .message(BOB, "Archive", 1)
                .await
                .unwrap()
                .unwrap()
                .flags,
            vec!["\\Seen".to_string()]
        );
        store.expunge(BOB, "INBOX", &[a]).await.unwrap();
        assert!(
            store.read_blob(blob).await.is_ok(),
            "the copy still holds it"
        );
        let moved = store
            .copy_messages(BOB, "Archive", &[1], "Trash", true)
            .await
            .unwrap();
        assert_eq!(moved.pairs, vec![(1, 1)]);
        assert!(store.messages(BOB, "Archive").await.unwrap().is_empty());
        store.expunge(BOB, "Trash", &[1]).await.unwrap();
        assert!(store.read_blob(blob).await.is_err(), "last reference gone");
    }

    #[tokio::test]
    async fn rename_moves_children_and_inbox_rename_empties_inbox() {
        let (_d, store) = store().await;
        store.create_folder(BOB, "a").await.unwrap();
        store.create_folder(BOB, "a/b").await.unwrap();
        store
            .append(BOB, "a/b", b"x\r\n\r\ny\r\n", vec![], None)
            .await
            .unwrap();
        store.rename_folder(BOB, "a", "c").await.unwrap();
        assert!(store.folder(BOB, "a").await.unwrap().is_none());
        assert_eq!(store.messages(BOB, "c/b").await.unwrap().len(), 1);
        store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .await
            .unwrap();
        store.rename_folder(BOB, "INBOX", "old").await.unwrap();
        assert!(store.messages(BOB, "INBOX").await.unwrap().is_empty());
        assert_eq!(store.messages(BOB, "old").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn store_flags_honours_unchanged_since() {
        let (_d, store) = store().await;
        let (_, a) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .await
            .unwrap();
        let (_, b) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .await
            .unwrap();
        let before = store
            .message(BOB, "INBOX", a)
            .await
            .unwrap()
            .unwrap()
            .modseq;
        store
            .set_flags(BOB, "INBOX", b, vec!["x".into()])
            .await
            .unwrap();
        let (done, failed) = store
            .store_flags(
                BOB,
                "INBOX",
                &[a, b],
                &FlagOp::Add(vec!["\\Seen".into()]),
                Some(before),
            )
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(failed, vec![b]);
    }

    #[tokio::test]
    async fn flag_changes_apply_to_current_flags() {
        let (_d, store) = store().await;
        let (_, a) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec!["\\Seen".into()], None)
            .await
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
            .await
            .unwrap();
        store
            .store_flags(
                BOB,
                "INBOX",
                &[a],
                &FlagOp::Remove(vec!["\\seen".into()]),
                None,
            )
            .await
            .unwrap();
        let flags = store.message(BOB, "INBOX", a).await.unwrap().unwrap().flags;
        assert_eq!(flags, vec!["\\Answered".to_string()]);
    }

    #[tokio::test]
    async fn recent_is_claimed_once() {
        let (_d, store) = store().await;
        let (_, a) = store
            .append(BOB, "INBOX", b"x\r\n\r\ny\r\n", vec![], None)
            .await
            .unwrap();
        assert_eq!(store.claim_recent(BOB, "INBOX", a + 1).await.unwrap(), 1);
        assert_eq!(
            store.claim_recent(BOB, "INBOX", a + 1).await.unwrap(),
            a + 1
        );
        assert_eq!(
            store
                .folder(BOB, "INBOX")
                .await
                .unwrap()
                .unwrap()
                .first_recent,
            a + 1
        );
    }
}
