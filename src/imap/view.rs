//! The selected folder as this session sees it: the messages in sequence
//! order (sequence number = position + 1), with the flags and
//! mod-sequences last reported to the client. `sync` compares it with the
//! store and renders what changed as untagged EXPUNGE, EXISTS and FETCH
//! responses; it reloads only after a change event for this folder.

use super::wire;
use crate::store::{MessageMeta, Store, StoreError};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

pub struct View {
    pub folder: String,
    pub read_only: bool,
    /// By ascending UID.
    pub messages: Vec<MessageMeta>,
    /// Something changed in the store since the last sync.
    pub dirty: bool,
}

/// A sequence set that names messages the mailbox does not have.
#[derive(Debug, thiserror::Error)]
#[error("invalid message sequence number")]
pub struct BadSequence;

impl View {
    pub fn open(
        store: &Store,
        user: &str,
        folder: &str,
        read_only: bool,
    ) -> Result<Option<View>, StoreError> {
        let Some(info) = store.folder(user, folder)? else {
            return Ok(None);
        };
        Ok(Some(View {
            folder: info.name,
            read_only,
            messages: store.messages(user, folder)?,
            dirty: false,
        }))
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
        for &p in positions.iter().rev() {
            if p < self.messages.len() {
                self.messages.remove(p);
                out.extend_from_slice(format!("* {} EXPUNGE\r\n", p + 1).as_bytes());
            }
        }
    }

    /// Brings the view up to date with the store, rendering the changes.
    /// Without `expunge_ok`, vanished messages stay until a later sync.
    pub fn sync(
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
        let fresh = store.messages(user, &self.folder)?;
        let mut gone = Vec::new();
        for (pos, m) in self.messages.iter_mut().enumerate() {
            match fresh.binary_search_by_key(&m.uid, |f| f.uid) {
                Err(_) => gone.push(pos),
                Ok(i) => {
                    let f = &fresh[i];
                    if f.modseq != m.modseq {
                        let changed = f.flags != m.flags;
                        m.flags = f.flags.clone();
                        m.modseq = f.modseq;
                        if changed {
                            out.extend_from_slice(format!("* {} FETCH (", pos + 1).as_bytes());
                            flags(out, &m.flags);
                            out.extend_from_slice(format!(" UID {}", m.uid).as_bytes());
                            if condstore {
                                out.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
                            }
                            out.extend_from_slice(b")\r\n");
                        }
                    }
                }
            }
        }
        let held_back = !gone.is_empty() && !expunge_ok;
        if !held_back {
            self.remove(gone, out);
        }
        let last = self.messages.last().map(|m| m.uid).unwrap_or(0);
        let before = self.messages.len();
        self.messages
            .extend(fresh.into_iter().filter(|m| m.uid > last));
        if self.messages.len() != before {
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.messages.len()).as_bytes());
        }
        self.dirty = held_back;
        Ok(())
    }
}

/// Renders `FLAGS (...)`.
pub fn flags(out: &mut Vec<u8>, flags: &[String]) {
    out.extend_from_slice(b"FLAGS (");
    out.extend_from_slice(flags.join(" ").as_bytes());
    out.push(b')');
}

/// A UID set in compact form, for response codes.
pub fn uid_set(uids: &[u32]) -> String {
    wire::sequence_set(uids)
}
