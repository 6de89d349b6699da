//! A user's mail to and from files other programs read and write:
//! `tern export USER --format maildir|mbox DIR` and `tern import USER PATH`.
//! Everything goes through the store's own operations (folders, `append`
//! with flags and internal date), so what an import adds is indexed, UIDed
//! and announced to open IMAP sessions like any APPEND.
//!
//! - `maildir.rs`: Maildir++ (Dovecot's and Courier's layout: INBOX in the
//!   root, folder `A/B` in `.A.B`, names in modified UTF-7, flags in the
//!   file name's `:2,` info, keywords through `dovecot-keywords`, the
//!   internal date as the file's modification time);
//! - `mbox.rs`: mboxrd files, one per folder, flags in `Status:` /
//!   `X-Status:` and keywords in `X-Keywords:` as Dovecot and mutt write
//!   them; reading (and the `>From ` unescaping) is mail-parser's.
//!
//! This file holds what both share: the flag vocabulary and line endings.

mod export;
mod imap_client;
mod maildir;
mod mbox;
mod pull;

pub use export::{FileSink, export, export_into, receive_export, stream_export};
pub use pull::{PullReport, PullSource, parse_url, pull};

use crate::store::{Flag, Store, StoreError};
use std::path::{Path, PathBuf};

/// The file formats of `tern export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Maildir,
    Mbox,
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxIoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MailboxIoError + '_ {
    move |source| MailboxIoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an export or an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub folders: usize,
    pub messages: usize,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} message(s) in {} folder(s)",
            self.messages, self.folders
        )
    }
}

/// One message on its way in: bytes as found, IMAP flags (keywords
/// included), internal date in Unix seconds.
pub(crate) struct Incoming {
    pub bytes: Vec<u8>,
    pub flags: Vec<String>,
    pub date: Option<i64>,
}

/// Adds the mail at `path` to `user`'s folders (made when missing): a
/// Maildir (with Maildir++ folders), a folder of `.mbox` files, or one mbox
/// file (into INBOX).
pub async fn import(store: &Store, user: &str, path: &Path) -> Result<Tally, MailboxIoError> {
    if store.user(user).await?.is_none() {
        return Err(MailboxIoError::Refused(format!("no such user: {user}")));
    }
    let folders = if path.join("cur").is_dir() {
        maildir::read(path)?
    } else if path.is_dir() {
        mbox::read_tree(path)?
    } else if path.is_file() {
        vec![("INBOX".to_string(), path.to_path_buf())]
    } else {
        return Err(MailboxIoError::Refused(format!(
            "{}: neither a Maildir, a folder of .mbox files, nor an mbox file",
            path.display()
        )));
    };
    let mut tally = Tally::default();
    for (name, source) in folders {
        let name = crate::store::check_folder_name(&name).map_err(|e| {
            MailboxIoError::Refused(format!("{}: folder {name:?}: {e}", source.display()))
        })?;
        if store.folder(user, &name).await?.is_none() {
            store.create_folder(user, &name).await?;
        }
        let messages: Box<dyn Iterator<Item = Result<Incoming, MailboxIoError>> + Send> =
            if path.join("cur").is_dir() {
                Box::new(maildir::messages(&source)?)
            } else {
                Box::new(mbox::messages(&source)?)
            };
        for m in messages {
            let m = m?;
            store
                .append(user, &name, &to_crlf(&m.bytes), m.flags, m.date)
                .await?;
            tally.messages += 1;
        }
        tally.folders += 1;
    }
    store.flush().await?;
    Ok(tally)
}

/// The Maildir info letters (ASCII order) and the IMAP flag of each.
pub(crate) const MAILDIR_FLAGS: [(char, &str); 5] = [
    ('D', Flag::DRAFT),
    ('F', Flag::FLAGGED),
    ('R', Flag::ANSWERED),
    ('S', Flag::SEEN),
    ('T', Flag::DELETED),
];

/// Is `flag` one of IMAP's system flags (not a keyword)?
pub(crate) fn is_system(flag: &str) -> bool {
    flag.starts_with('\\')
}

/// CRLF line ends as LF (files on disk, as other programs write them).
pub(crate) fn to_lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Every line end as CRLF (how Tern stores and serves a message).
pub(crate) fn to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
