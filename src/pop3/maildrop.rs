//! The maildrop a POP3 session works on: a snapshot of INBOX taken at login
//! (message numbers stay fixed for the session), deletion marks, and the
//! transfer of a message dot-stuffed from its stored chunks. Deletions reach
//! the store only at QUIT, as one expunge that IMAP sessions see. A mailbox
//! that a storage plugin claims is listed, read and deleted through that
//! plugin instead (`open_for`).

use crate::store::{MessageMeta, Store, StoreError};

pub struct Maildrop {
    store: Store,
    user: String,
    uidvalidity: u32,
    messages: Vec<MessageMeta>,
    deleted: Vec<bool>,
    /// Set when a storage plugin owns this mailbox.
    plugin: Option<PluginMailbox>,
}

/// A mailbox kept by a storage plugin: its index in the session's set and
/// the plugin's ids, in the order of `messages` (uid n is `ids[n - 1]`).
struct PluginMailbox {
    session: std::sync::Arc<crate::hooks::PluginSession>,
    index: usize,
    ids: Vec<String>,
}

/// Why a maildrop could not be opened or changed.
#[derive(Debug, thiserror::Error)]
pub enum MaildropError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Plugin(String),
}

/// The pieces of a message, from the store or from a storage plugin.
pub enum Parts {
    Store(crate::store::BlobParts),
    Plugin(std::vec::IntoIter<Vec<u8>>),
}

impl Parts {
    /// The next piece, None after the last.
    pub async fn next_part(&mut self) -> Option<Result<Vec<u8>, StoreError>> {
        match self {
            Parts::Store(p) => p.next_part().await,
            Parts::Plugin(p) => p.next().map(Ok),
        }
    }
}

impl Maildrop {
    pub async fn open(store: &Store, user: &str) -> Result<Maildrop, StoreError> {
        let uidvalidity = store
            .folder(user, "INBOX")
            .await?
            .map(|f| f.uidvalidity)
            .unwrap_or(0);
        let messages = store.messages(user, "INBOX").await?;
        Ok(Maildrop {
            store: store.clone(),
            user: user.to_string(),
            uidvalidity,
            deleted: vec![false; messages.len()],
            messages,
            plugin: None,
        })
    }

    /// The user's maildrop: from the storage plugin that claims the
    /// mailbox, if one does, else from the store.
    pub async fn open_for(
        ctx: &crate::context::ServerContext,
        user: &str,
    ) -> Result<Maildrop, MaildropError> {
        let session = ctx.hooks.session();
        let claimed = if session.has_storage() {
            session.storage_claim(user).await
        } else {
            None
        };
        let Some(index) = claimed else {
            return Ok(Maildrop::open(&ctx.store, user).await?);
        };
        let list = session
            .storage_list(index, user)
            .await
            .map_err(MaildropError::Plugin)?;
        let messages: Vec<MessageMeta> = list
            .iter()
            .enumerate()
            .map(|(i, m)| MessageMeta {
                uid: u32::try_from(i + 1).unwrap_or(u32::MAX),
                blob: 0,
                size: m.size,
                flags: Vec::new(),
                internal_date: 0,
                modseq: 0,
            })
            .collect();
        Ok(Maildrop {
            store: ctx.store.clone(),
            user: user.to_string(),
            uidvalidity: 0,
            deleted: vec![false; messages.len()],
            messages,
            plugin: Some(PluginMailbox {
                session,
                index,
                ids: list.into_iter().map(|m| m.id).collect(),
            }),
        })
    }

    /// The message with this number, unless deleted.
    pub fn get(&self, n: usize) -> Option<&MessageMeta> {
        let i = n.checked_sub(1)?;
        if *self.deleted.get(i)? {
            return None;
        }
        self.messages.get(i)
    }

    /// (number, message) for every message not marked deleted.
    pub fn live(&self) -> impl Iterator<Item = (usize, &MessageMeta)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
            .map(|(i, m)| (i + 1, m))
    }

    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.size))
    }

    /// Marks a message deleted; false if there is no such live message.
    pub fn delete(&mut self, n: usize) -> bool {
        if self.get(n).is_none() {
            return false;
        }
        self.deleted[n - 1] = true;
        true
    }

    pub fn reset(&mut self) {
        self.deleted.iter_mut().for_each(|d| *d = false);
    }

    /// The unique id: stable for the message's life, across sessions.
    pub fn uid_of(&self, m: &MessageMeta) -> String {
        match &self.plugin {
            Some(p) => p.ids.get(m.uid as usize - 1).cloned().unwrap_or_default(),
            None => format!("{}.{}", self.uidvalidity, m.uid),
        }
    }

    /// Applies the deletions (the UPDATE state).
    pub async fn commit(&self) -> Result<usize, MaildropError> {
        let uids: Vec<u32> = self
            .messages
            .iter()
            .zip(&self.deleted)
            .filter(|(_, d)| **d)
            .map(|(m, _)| m.uid)
            .collect();
        if uids.is_empty() {
            return Ok(0);
        }
        if let Some(p) = &self.plugin {
            for uid in &uids {
                let id = p
                    .ids
                    .get(*uid as usize - 1)
                    .map(String::as_str)
                    .unwrap_or("");
                p.session
                    .storage_delete(p.index, &self.user, id)
                    .await
                    .map_err(MaildropError::Plugin)?;
            }
            return Ok(uids.len());
        }
        Ok(self.store.expunge(&self.user, "INBOX", &uids).await?.len())
    }

    /// The message's stored pieces, in order.
    pub async fn parts(&self, m: &MessageMeta) -> Result<Parts, MaildropError> {
        if let Some(p) = &self.plugin {
            let id = p
                .ids
                .get(m.uid as usize - 1)
                .map(String::as_str)
                .unwrap_or("");
            let pieces = p
                .session
                .storage_fetch(p.index, &self.user, id, m.size)
                .await
                .map_err(MaildropError::Plugin)?;
            return Ok(Parts::Plugin(pieces.into_iter()));
        }
        Ok(Parts::Store(self.store.blob_parts(m.blob).await?))
    }
}

/// Dot-stuffs a message for transfer, chunk by chunk; `body_lines` limits
/// the body to that many lines (TOP).
pub struct Stuffer {
    line_start: bool,
    in_body: bool,
    /// Previous byte was LF (to find the blank line ending the headers).
    blank_candidate: bool,
    body_lines_left: Option<usize>,
    done: bool,
    last: u8,
}

impl Stuffer {
    pub fn new(body_lines: Option<usize>) -> Stuffer {
        Stuffer {
            line_start: true,
            in_body: false,
            blank_candidate: false,
            body_lines_left: body_lines,
            done: false,
            last: b'\n',
        }
    }

    /// Stuffs `input` into `out`; returns false once TOP's line count is met.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.done {
                return false;
            }
            if self.line_start {
                if self.in_body && self.body_lines_left == Some(0) {
                    self.done = true;
                    return false;
                }
                if b == b'.' {
                    out.push(b'.');
                }
                self.line_start = false;
            }
            out.push(b);
            self.last = b;
            if b == b'\n' {
                self.line_start = true;
                if self.in_body {
                    if let Some(n) = self.body_lines_left.as_mut() {
                        *n = n.saturating_sub(1);
                    }
                } else if self.blank_candidate {
                    self.in_body = true;
                }
                self.blank_candidate = true;
            } else if b != b'\r' {
                self.blank_candidate = false;
            }
        }
        !self.done
    }

    /// The terminating line, preceded by CRLF if the content did not end with one.
    pub fn finish(&self, out: &mut Vec<u8>) {
        if self.last != b'\n' {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(input: &[u8], lines: Option<usize>) -> Vec<u8> {
        let mut s = Stuffer::new(lines);
        let mut out = Vec::new();
        for b in input {
            s.feed(std::slice::from_ref(b), &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn stuffs_dots_at_line_starts() {
        assert_eq!(
            stuff(b"A: b\r\n\r\n.x\r\n..\r\nend\r\n", None),
            b"A: b\r\n\r\n..x\r\n...\r\nend\r\n.\r\n"
        );
    }

    #[test]
    fn top_stops_after_n_body_lines() {
        let m = b"A: b\r\nC: d\r\n\r\n1\r\n2\r\n3\r\n";
        assert_eq!(stuff(m, Some(0)), b"A: b\r\nC: d\r\n\r\n.\r\n");
        assert_eq!(stuff(m, Some(2)), b"A: b\r\nC: d\r\n\r\n1\r\n2\r\n.\r\n");
    }
}
