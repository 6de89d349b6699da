//! The selected folder as this session sees it: the messages in sequence
//! order (sequence number = position + 1), with the flags and
//! mod-sequences last reported to the client. `sync` compares it with the
//! store and renders what changed as untagged EXPUNGE, EXISTS and FETCH
//! responses (VANISHED instead of EXPUNGE under QRESYNC); it reloads only
//! after a change event for this folder, or, on a store shared with other
//! nodes, when the folder's mod-sequence moved since the view last read it
//! (`notice_elsewhere`, before each command).

use super::wire;
use crate::store::{MessageMeta, Store, StoreError};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use std::collections::HashSet;

/// The system flags every folder allows.
const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

pub struct View {
    pub folder: String,
    pub read_only: bool,
    /// By ascending UID.
    pub messages: Vec<MessageMeta>,
    /// Something changed in the store since the last sync.
    pub dirty: bool,
    /// The folder's UIDVALIDITY and highest mod-sequence when the view
    /// last read it (None: the folder was gone).
    pub mark: Option<(u32, u64)>,
    /// UIDs that are \Recent in this session (RFC 3501 2.3.2): new to
    /// every session before this one claimed them.
    pub recent: HashSet<u32>,
    /// Keywords announced in the last untagged FLAGS.
    pub keywords: Vec<String>,
    /// Whether the client hears of \Recent (not under IMAP4rev2).
    pub show_recent: bool,
    /// Expunges are reported as VANISHED (QRESYNC enabled, RFC 7162 3.2.10).
    pub vanished: bool,
    /// Searches kept up to date (CONTEXT=SEARCH's UPDATE, `updates.rs`).
    pub live: Vec<super::updates::LiveSearch>,
}

/// A sequence set that names messages the mailbox does not have.
#[derive(Debug, thiserror::Error)]
#[error("invalid message sequence number")]
pub struct BadSequence;

impl View {
    pub async fn open(
        store: &Store,
        user: &str,
        folder: &str,
        read_only: bool,
    ) -> Result<Option<View>, StoreError> {
        let Some(info) = store.folder(user, folder).await? else {
            return Ok(None);
        };
        let messages = store.messages(user, folder).await?;
        let first_recent = match messages.last() {
            Some(last) if !read_only => store.claim_recent(user, &info.name, last.uid + 1).await?,
            _ => info.first_recent,
        };
        let recent = messages
            .iter()
            .map(|m| m.uid)
            .filter(|&u| u >= first_recent)
            .collect();
        let mut view = View {
            mark: Some((info.uidvalidity, info.highest_modseq)),
            folder: info.name,
            read_only,
            messages,
            dirty: false,
            recent,
            keywords: Vec::new(),
            show_recent: true,
            vanished: false,
            live: Vec::new(),
        };
        view.keywords = view.keywords_in(view.messages.iter().flat_map(|m| m.flags.iter()));
        Ok(Some(view))
    }

    /// Keywords among `flags` that have not been announced yet.
    fn keywords_in<'a>(&self, flags: impl Iterator<Item = &'a String>) -> Vec<String> {
        let mut new: Vec<String> = Vec::new();
        for f in flags {
            if !f.starts_with('\\')
                && !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(f))
                && !new.iter().any(|k| k.eq_ignore_ascii_case(f))
            {
                new.push(f.clone());
            }
        }
        new
    }

    /// The untagged FLAGS and PERMANENTFLAGS responses for this folder.
    pub fn flag_lines(&self, out: &mut Vec<u8>) {
        let mut all = SYSTEM_FLAGS.to_string();
        for k in &self.keywords {
            all.push(' ');
            all.push_str(k);
        }
        out.extend_from_slice(format!("* FLAGS ({all})\r\n").as_bytes());
        if self.read_only {
            out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] read-only\r\n");
        } else {
            out.extend_from_slice(
                format!("* OK [PERMANENTFLAGS ({all} \\*)] flags permitted\r\n").as_bytes(),
            );
        }
    }

    /// Announces (untagged FLAGS) keywords in `flags` the client has not
    /// been told about, before a FETCH response shows them.
    pub fn announce_keywords<'a>(
        &mut self,
        flags: impl Iterator<Item = &'a String>,
        out: &mut Vec<u8>,
    ) {
        let new = self.keywords_in(flags);
        if !new.is_empty() {
            self.keywords.extend(new);
            self.flag_lines(out);
        }
    }

    /// Renders `FLAGS (...)` for message `m` as this session sees it
    /// (with \Recent, unless IMAP4rev2).
    pub fn flags(&self, out: &mut Vec<u8>, m: &MessageMeta) {
        out.extend_from_slice(b"FLAGS (");
        let mut first = true;
        if self.show_recent && self.recent.contains(&m.uid) {
            out.extend_from_slice(b"\\Recent");
            first = false;
        }
        for f in &m.flags {
            if !first {
                out.push(b' ');
            }
            first = false;
            out.extend_from_slice(f.as_bytes());
        }
        out.push(b')');
    }

    pub fn recent_count(&self) -> usize {
        self.recent.len()
    }

    pub fn position(&self, uid: u32) -> Option<usize> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// The positions a sequence set names, ascending. By UID, numbers
    /// without a message are ignored; by sequence number they are an error.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, BadSequence> {
        let count = self.messages.len();
        let mut out = Vec::new();
        if uid {
            let largest = self.messages.last().map(|m| m.uid).unwrap_or(0);
            let value = |v: &SeqOrUid| match v {
                SeqOrUid::Value(n) => n.get(),
                SeqOrUid::Asterisk => largest,
            };
            for seq in set.0.as_ref() {
                let (a, b) = match seq {
                    Sequence::Single(v) => (value(v), value(v)),
                    Sequence::Range(a, b) => (value(a), value(b)),
                };
                let (lo, hi) = (a.min(b), a.max(b));
                let start = self.messages.partition_point(|m| m.uid < lo);
                let end = self.messages.partition_point(|m| m.uid <= hi);
                out.extend(start..end);
            }
        } else {
            let value = |v: &SeqOrUid| match v {
                SeqOrUid::Value(n) => n.get() as usize,
                SeqOrUid::Asterisk => count,
            };
            for seq in set.0.as_ref() {
                let (a, b) = match seq {
                    Sequence::Single(v) => (value(v), value(v)),
                    Sequence::Range(a, b) => (value(a), value(b)),
                };
                let (lo, hi) = (a.min(b), a.max(b));
                if lo == 0 || hi > count {
                    return Err(BadSequence);
                }
                out.extend(lo - 1..hi);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Removes positions (descending order keeps the numbers right) and
    /// renders their EXPUNGE responses.
    pub fn remove(&mut self, mut positions: Vec<usize>, out: &mut Vec<u8>) {
        positions.sort_unstable();
        positions.dedup();
        // Live searches lose expunged messages before the client hears of
        // the expunge, while their numbers still mean them.
        let gone: HashSet<u32> = positions
            .iter()
            .filter_map(|&p| self.messages.get(p).map(|m| m.uid))
            .collect();
        let messages = &self.messages;
        for search in &mut self.live {
            let now: Vec<u32> = search
                .uids
                .iter()
                .copied()
                .filter(|u| !gone.contains(u))
                .collect();
            let uid = search.uid;
            let line = search.advance(now, |u| {
                if uid {
                    Some(u)
                } else {
                    messages
                        .binary_search_by_key(&u, |m| m.uid)
                        .ok()
                        .map(|p| p as u32 + 1)
                }
            });
            out.extend_from_slice(line.as_bytes());
        }
        if self.vanished {
            let mut uids = Vec::new();
            for &p in positions.iter().rev() {
                if p < self.messages.len() {
                    let gone = self.messages.remove(p);
                    self.recent.remove(&gone.uid);
                    uids.push(gone.uid);
                }
            }
            if !uids.is_empty() {
                uids.sort_unstable();
                out.extend_from_slice(format!("* VANISHED {}\r\n", uid_set(&uids)).as_bytes());
            }
            return;
        }
        for &p in positions.iter().rev() {
            if p < self.messages.len() {
                let gone = self.messages.remove(p);
                self.recent.remove(&gone.uid);
                out.extend_from_slice(format!("* {} EXPUNGE\r\n", p + 1).as_bytes());
            }
        }
    }

    /// On a store shared with other nodes, whose changes raise no event
    /// here until the next poll (`Store::watch`), marks the view dirty if
    /// the folder changed since it was read: one read of the folder record.
    pub async fn notice_elsewhere(&mut self, store: &Store, user: &str) -> Result<(), StoreError> {
        if self.dirty || !store.is_shared() {
            return Ok(());
        }
        let now = store
            .folder(user, &self.folder)
            .await?
            .map(|i| (i.uidvalidity, i.highest_modseq));
        self.dirty = now != self.mark;
        Ok(())
    }

    /// Brings the view up to date with the store, rendering the changes.
    /// Without `expunge_ok`, vanished messages stay until a later sync.
    pub async fn sync(
        &mut self,
        store: &Store,
        user: &str,
        expunge_ok: bool,
        condstore: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        if store.is_shared() {
            self.mark = store
                .folder(user, &self.folder)
                .await?
                .map(|i| (i.uidvalidity, i.highest_modseq));
        }
        let fresh = store.messages(user, &self.folder).await?;
        let mut gone = Vec::new();
        let mut changed = Vec::new();
        for (pos, m) in self.messages.iter_mut().enumerate() {
            match fresh.binary_search_by_key(&m.uid, |f| f.uid) {
                Err(_) => gone.push(pos),
                Ok(i) => {
                    let f = &fresh[i];
                    if f.modseq != m.modseq {
                        if f.flags != m.flags {
                            changed.push(pos);
                        }
                        m.flags = f.flags.clone();
                        m.modseq = f.modseq;
                    }
                }
            }
        }
        let last = self.messages.last().map(|m| m.uid).unwrap_or(0);
        let new: Vec<MessageMeta> = fresh.into_iter().filter(|m| m.uid > last).collect();
        let keywords: Vec<String> = changed
            .iter()
            .flat_map(|&p| self.messages[p].flags.iter())
            .chain(new.iter().flat_map(|m| m.flags.iter()))
            .cloned()
            .collect();
        self.announce_keywords(keywords.iter(), out);
        for &pos in &changed {
            let m = &self.messages[pos];
            out.extend_from_slice(format!("* {} FETCH (", pos + 1).as_bytes());
            self.flags(out, m);
            out.extend_from_slice(format!(" UID {}", m.uid).as_bytes());
            if condstore {
                out.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
            }
            out.extend_from_slice(b")\r\n");
        }
        let held_back = !gone.is_empty() && !expunge_ok;
        if !held_back {
            self.remove(gone, out);
        }
        if let Some(newest) = new.last() {
            let first_recent = if self.read_only {
                store
                    .folder(user, &self.folder)
                    .await?
                    .map(|i| i.first_recent)
                    .unwrap_or(u32::MAX)
            } else {
                store
                    .claim_recent(user, &self.folder, newest.uid + 1)
                    .await?
            };
            self.recent
                .extend(new.iter().map(|m| m.uid).filter(|&u| u >= first_recent));
            self.messages.extend(new);
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.messages.len()).as_bytes());
            if self.show_recent {
                out.extend_from_slice(format!("* {} RECENT\r\n", self.recent.len()).as_bytes());
            }
        }
        self.dirty = held_back;
        Ok(())
    }
}

/// Whether `uid` is in `set`, `*` standing for `largest`.
pub fn uid_in(set: &SequenceSet, uid: u32, largest: u32) -> bool {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => value(v) == uid,
        Sequence::Range(a, b) => (value(a).min(value(b))..=value(a).max(value(b))).contains(&uid),
    })
}

/// A UID set in compact form, for response codes.
pub fn uid_set(uids: &[u32]) -> String {
    wire::sequence_set(uids)
}
