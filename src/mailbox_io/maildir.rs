//! Maildir++ as Dovecot and Courier lay it out. INBOX is the root
//! (`cur/`, `new/`, `tmp/`); folder `A/B` is the sibling `.A.B`, each name
//! part in modified UTF-7 (a `.` inside a part, which the layout cannot
//! hold, is written `&AC4-`). A message is one file, written in `tmp/` and
//! renamed into `cur/` as `<date>.M<uid>P<pid>.tern,S=<size>:2,<info>`,
//! with LF line ends and the internal date as its modification time; the
//! info letters are `D F R S T` for \Draft \Flagged \Answered \Seen
//! \Deleted and `a`–`z` for keywords, numbered in the folder's
//! `dovecot-keywords` file. Reading takes `cur/` and `new/`, in file-name
//! order (delivery order for every common writer).

use super::{Incoming, MAILDIR_FLAGS, MailboxIoError, io, is_system};
use crate::imap::names::{decode_mutf7, encode_mutf7};
use std::io::Write;
use std::path::{Path, PathBuf};

const KEYWORDS_FILE: &str = "dovecot-keywords";
const DOT: &str = "&AC4-";

/// One folder being written.
pub(super) struct Writer {
    dir: PathBuf,
    keywords: Vec<String>,
}

impl Writer {
    pub(super) fn create(root: &Path, folder: &str) -> Result<Writer, MailboxIoError> {
        let dir = if folder == "INBOX" {
            root.to_path_buf()
        } else {
            let parts: Vec<String> = folder
                .split(crate::store::SEPARATOR)
                .map(|p| encode_mutf7(p).replace('.', DOT))
                .collect();
            root.join(format!(".{}", parts.join(".")))
        };
        for sub in ["cur", "new", "tmp"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(io(&path))?;
        }
        Ok(Writer {
            dir,
            keywords: Vec::new(),
        })
    }

    pub(super) fn write(
        &mut self,
        bytes: &[u8],
        flags: &[String],
        date: i64,
        uid: u32,
    ) -> Result<(), MailboxIoError> {
        let mut info: Vec<char> = MAILDIR_FLAGS
            .iter()
            .filter(|(_, f)| flags.iter().any(|g| g.eq_ignore_ascii_case(f)))
            .map(|(c, _)| *c)
            .collect();
        for keyword in flags.iter().filter(|f| !is_system(f)) {
            let index = match self.keywords.iter().position(|k| k == keyword) {
                Some(i) => i,
                None if self.keywords.len() < 26 => {
                    self.keywords.push(keyword.clone());
                    self.keywords.len() - 1
                }
                None => {
                    tracing::warn!("maildir export: more than 26 keywords; {keyword} left out");
                    continue;
                }
            };
            info.push((b'a' + index as u8) as char);
        }
        info.sort_unstable();
        let info: String = info.into_iter().collect();
        let base = format!(
            "{date}.M{uid}P{}.tern,S={}",
            std::process::id(),
            bytes.len()
        );
        let tmp = self.dir.join("tmp").join(&base);
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(date.max(0) as u64);
        file.set_modified(when).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        let done = self.dir.join("cur").join(format!("{base}:2,{info}"));
        std::fs::rename(&tmp, &done).map_err(io(&done))?;
        Ok(())
    }

    /// Writes the folder's keyword list, if it has keywords.
    pub(super) fn finish(self) -> Result<(), MailboxIoError> {
        if self.keywords.is_empty() {
            return Ok(());
        }
        let text: String = self
            .keywords
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{i} {k}\n"))
            .collect();
        let path = self.dir.join(KEYWORDS_FILE);
        std::fs::write(&path, text).map_err(io(&path))
    }
}

/// The folders of the Maildir++ at `root`: (name, folder directory).
pub(super) fn read(root: &Path) -> Result<Vec<(String, PathBuf)>, MailboxIoError> {
    let mut out = vec![("INBOX".to_string(), root.to_path_buf())];
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io(root))? {
        let entry = entry.map_err(io(root))?;
        let file = entry.file_name();
        let Some(name) = file.to_str() else { continue };
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        if rest.is_empty() || rest == "." || !entry.path().join("cur").is_dir() {
            continue;
        }
        let parts = rest
            .split('.')
            .map(|p| decode_mutf7(&p.replace(DOT, ".")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MailboxIoError::Refused(format!("{}: {e}", entry.path().display())))?;
        names.push((parts.join("/"), entry.path()));
    }
    names.sort();
    out.extend(names);
    Ok(out)
}

/// The messages of one Maildir folder, in file-name order.
pub(super) fn messages(
    dir: &Path,
) -> Result<impl Iterator<Item = Result<Incoming, MailboxIoError>>, MailboxIoError> {
    let keywords = read_keywords(dir);
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let path = dir.join(sub);
        for entry in std::fs::read_dir(&path).map_err(io(&path))? {
            let entry = entry.map_err(io(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.file_type().map_err(io(&path))?.is_file() {
                files.push((name, entry.path()));
            }
        }
    }
    files.sort();
    Ok(files.into_iter().map(move |(name, path)| {
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let date = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        Ok(Incoming {
            bytes,
            flags: flags_of(&name, &keywords),
            date,
        })
    }))
}

/// The IMAP flags a file name's `:2,` info carries.
fn flags_of(name: &str, keywords: &[(char, String)]) -> Vec<String> {
    let Some((_, info)) = name.rsplit_once(":2,") else {
        return Vec::new();
    };
    let mut flags = Vec::new();
    for c in info.chars() {
        if let Some((_, f)) = MAILDIR_FLAGS.iter().find(|(l, _)| *l == c) {
            flags.push(f.to_string());
        } else if let Some((_, k)) = keywords.iter().find(|(l, _)| *l == c) {
            flags.push(k.clone());
        }
    }
    flags
}

/// `dovecot-keywords`: "N keyword" lines, letter `a`+N (absent: none).
fn read_keywords(dir: &Path) -> Vec<(char, String)> {
    let text = std::fs::read_to_string(dir.join(KEYWORDS_FILE)).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (n, k) = l.split_once(' ')?;
            let n: u8 = n.parse().ok().filter(|n| *n < 26)?;
            let k = k.trim();
            (!k.is_empty() && !is_system(k)).then(|| ((b'a' + n) as char, k.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_letters_and_keywords_map_to_flags() {
        let kw = vec![('a', "$Label1".to_string()), ('c', "Work".to_string())];
        assert_eq!(
            flags_of("1.M1P2.host,S=10:2,FRSac", &kw),
            ["\\Flagged", "\\Answered", "\\Seen", "$Label1", "Work"]
        );
        assert_eq!(flags_of("1.M1P2.host:2,DT", &[]), ["\\Draft", "\\Deleted"]);
        assert!(flags_of("1.M1P2.host", &[]).is_empty());
    }
}
