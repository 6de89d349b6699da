//! mbox files, one per folder (`INBOX.mbox`, `A/B.mbox` for folder `A/B`),
//! in the mboxrd dialect: each message starts with a `From ` line (sender
//! and the internal date in asctime form), a body line that starts with
//! any number of `>` and then `From ` gets one more `>`, and a blank line
//! ends each message. Flags go in the header as Dovecot and mutt write
//! them: `Status:` (`R` \Seen, `O` not new), `X-Status:` (`A` \Answered,
//! `F` \Flagged, `T` \Draft, `D` \Deleted) and `X-Keywords:`; on import
//! they are read and taken out again. Splitting and unescaping an mbox is
//! mail-parser's (`mailbox::mbox`).

use super::{Incoming, MailboxIoError, io, is_system};
use crate::store::Flag;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The header fields that carry flags.
const FLAG_FIELDS: [&str; 3] = ["status", "x-status", "x-keywords"];
const X_STATUS: [(char, &str); 4] = [
    ('A', Flag::ANSWERED),
    ('F', Flag::FLAGGED),
    ('T', Flag::DRAFT),
    ('D', Flag::DELETED),
];

/// One folder's file being written.
pub(super) struct Writer {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl Writer {
    pub(super) fn create(root: &Path, folder: &str) -> Result<Writer, MailboxIoError> {
        let path = root.join(format!("{folder}.mbox"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        Ok(Writer {
            out: BufWriter::new(file),
            path,
        })
    }

    /// Appends one message (LF line ends).
    pub(super) fn write(
        &mut self,
        bytes: &[u8],
        flags: &[String],
        date: i64,
    ) -> Result<(), MailboxIoError> {
        let has = |f: &str| flags.iter().any(|g| g.eq_ignore_ascii_case(f));
        let when = chrono::DateTime::from_timestamp(date, 0).unwrap_or_default();
        let mut text = format!(
            "From MAILER-DAEMON {}\n",
            when.format("%a %b %e %H:%M:%S %Y")
        )
        .into_bytes();
        let (header, body) = split_header(bytes);
        text.extend_from_slice(&strip_fields(header));
        text.extend_from_slice(if has(Flag::SEEN) {
            b"Status: RO\n"
        } else {
            b"Status: O\n"
        });
        let x: String = X_STATUS
            .iter()
            .filter(|(_, f)| has(f))
            .map(|(c, _)| *c)
            .collect();
        if !x.is_empty() {
            text.extend_from_slice(format!("X-Status: {x}\n").as_bytes());
        }
        let keywords: Vec<&str> = flags
            .iter()
            .filter(|f| !is_system(f))
            .map(String::as_str)
            .collect();
        if !keywords.is_empty() {
            text.extend_from_slice(format!("X-Keywords: {}\n", keywords.join(" ")).as_bytes());
        }
        text.push(b'\n');
        for line in body.split_inclusive(|b| *b == b'\n') {
            let quoted = line.iter().position(|b| *b != b'>').unwrap_or(line.len());
            if line[quoted..].starts_with(b"From ") {
                text.push(b'>');
            }
            text.extend_from_slice(line);
        }
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.push(b'\n');
        self.out.write_all(&text).map_err(io(&self.path))
    }

    pub(super) fn finish(self) -> Result<(), MailboxIoError> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io(&path)(e.into_error()))?;
        file.sync_all().map_err(io(&path))
    }
}

/// The header block (through its last line end) and the body after the
/// blank line; a message without a blank line is all header.
fn split_header(bytes: &[u8]) -> (&[u8], &[u8]) {
    if bytes.starts_with(b"\n") {
        return (&[], &bytes[1..]);
    }
    match memchr::memmem::find(bytes, b"\n\n") {
        Some(i) => (&bytes[..i + 1], &bytes[i + 2..]),
        None => (bytes, &[]),
    }
}

/// The header block without the flag fields (and their continuations).
fn strip_fields(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut dropping = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if !dropping {
                out.extend_from_slice(line);
            }
            continue;
        }
        let name = line.split(|b| *b == b':').next().unwrap_or_default();
        dropping = FLAG_FIELDS
            .iter()
            .any(|f| f.as_bytes().eq_ignore_ascii_case(name.trim_ascii()));
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The flags a message's `Status:`, `X-Status:` and `X-Keywords:` carry.
fn flags_of(header: &[u8]) -> Vec<String> {
    let mut flags = Vec::new();
    let text = String::from_utf8_lossy(header);
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "status" if value.contains('R') => flags.push(Flag::SEEN.to_string()),
            "x-status" => {
                for (c, f) in X_STATUS {
                    if value.contains(c) {
                        flags.push(f.to_string());
                    }
                }
            }
            "x-keywords" => {
                for k in value.split([' ', ',']).filter(|k| !k.is_empty()) {
                    if !is_system(k) {
                        flags.push(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    flags.dedup();
    flags
}

/// The `.mbox` files under `root`: (folder name, file), sorted.
pub(super) fn read_tree(root: &Path) -> Result<Vec<(String, PathBuf)>, MailboxIoError> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "mbox")
                && let Ok(relative) = path.with_extension("").strip_prefix(root)
            {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((parts.join("/"), path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The messages of one mbox file, in order.
pub(super) fn messages(
    path: &Path,
) -> Result<impl Iterator<Item = Result<Incoming, MailboxIoError>>, MailboxIoError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let path = path.to_path_buf();
    let reader = BufReader::with_capacity(1 << 20, file);
    Ok(
        mail_parser::mailbox::mbox::MessageIterator::new(reader).map(move |m| {
            let m = m.map_err(io(&path))?;
            let date = Some(m.internal_date() as i64).filter(|d| *d > 0);
            let mut contents = m.unwrap_contents();
            // The blank line that ends each message is the format's, not the message's.
            if contents.ends_with(b"\n\n") {
                contents.pop();
            }
            let (header, body) = split_header(&contents);
            let flags = flags_of(header);
            let mut bytes = strip_fields(header);
            bytes.push(b'\n');
            bytes.extend_from_slice(body);
            Ok(Incoming { bytes, flags, date })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_written_reads_back_with_flags_date_and_from_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(dir.path(), "A/B").unwrap();
        let body = b"Subject: hi\nStatus: stale\n\nFrom here\n>From there\ntext\n";
        let flags = vec!["\\Seen".to_string(), "\\Flagged".into(), "$Label1".into()];
        w.write(body, &flags, 1_700_000_000).unwrap();
        w.write(b"Subject: two\n\nx", &[], 1_700_000_100).unwrap();
        w.finish().unwrap();
        let tree = read_tree(dir.path()).unwrap();
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].0, "A/B");
        let got: Vec<Incoming> = messages(&tree[0].1).unwrap().map(|m| m.unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].bytes,
            b"Subject: hi\n\nFrom here\n>From there\ntext\n"
        );
        assert_eq!(got[0].flags, ["\\Seen", "\\Flagged", "$Label1"]);
        assert_eq!(got[0].date, Some(1_700_000_000));
        assert_eq!(got[1].bytes, b"Subject: two\n\nx\n");
        assert!(got[1].flags.is_empty());
    }
}
