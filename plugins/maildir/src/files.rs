//! The Maildir on disk: where a mailbox's folder is (and that a mailbox
//! name can never leave the granted directory), its messages in `new/`
//! and `cur/` by id, their sizes with CRLF line ends, and reading a file
//! as CRLF from any offset.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};

/// A mailbox's Maildir: `<domain>/<local>` (lower case), relative to the
/// granted directory. Names that could climb out or hide are refused.
pub fn maildir(mailbox: &str) -> Result<String, String> {
    let m = mailbox.to_ascii_lowercase();
    let (local, domain) = m
        .rsplit_once('@')
        .ok_or_else(|| format!("mailbox {mailbox:?} is not an address"))?;
    for part in [local, domain] {
        if part.is_empty()
            || part.starts_with('.')
            || part.contains(['/', '\\', '\0'])
            || part.chars().any(char::is_control)
        {
            return Err(format!("unusable mailbox name {mailbox:?}"));
        }
    }
    Ok(format!("{domain}/{local}"))
}

/// Makes the Maildir's three folders.
pub fn create(dir: &str) -> Result<(), String> {
    for sub in ["tmp", "new", "cur"] {
        let path = format!("{dir}/{sub}");
        std::fs::create_dir_all(&path).map_err(|e| format!("mkdir {path}: {e}"))?;
    }
    Ok(())
}

/// Flushes a folder's entries (a rename) to disk, where the platform can.
pub fn sync_dir(path: &str) {
    if let Ok(dir) = std::fs::File::open(path) {
        let _ = dir.sync_all();
    }
}

/// An id as it may appear in a file name.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.starts_with('.') || id.contains(['/', '\\', ':', '\0']) {
        return Err(format!("unusable message id {id:?}"));
    }
    Ok(())
}

/// The id of a file name: the part before the `:2,` flags.
fn id_of(name: &str) -> &str {
    name.split_once(':').map(|(id, _)| id).unwrap_or(name)
}

/// Sort key: seconds, microseconds and delivery counter of our names;
/// other writers' names sort by their seconds and then by name.
fn order(id: &str) -> (u64, u64, u64, String) {
    let mut parts = id.splitn(3, '.');
    let secs = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let unique = parts.next().unwrap_or("");
    let mut usec = 0;
    let mut n = 0;
    if let Some(rest) = unique.strip_prefix('M') {
        let (u, q) = rest.split_once('Q').unwrap_or((rest, "0"));
        usec = u.parse().unwrap_or(0);
        n = q.parse().unwrap_or(0);
    }
    (secs, usec, n, id.to_string())
}

/// The messages of a Maildir (`new/` and `cur/`), oldest first: `(id, path)`.
pub fn messages(dir: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let folder = format!("{dir}/{sub}");
        let entries = match std::fs::read_dir(&folder) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("read {folder}: {e}")),
        };
        for entry in entries {
            let entry = entry.map_err(|e| format!("read {folder}: {e}"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            out.push((id_of(&name).to_string(), format!("{folder}/{name}")));
        }
    }
    out.sort_by_cached_key(|(id, _)| order(id));
    Ok(out)
}

/// The file holding message `id`: `new/<id>`, or `cur/<id>` with any flags.
pub fn find(dir: &str, id: &str) -> Result<String, String> {
    check_id(id)?;
    let new = format!("{dir}/new/{id}");
    if std::fs::metadata(&new).is_ok() {
        return Ok(new);
    }
    let cur = format!("{dir}/cur");
    let entries = std::fs::read_dir(&cur).map_err(|e| format!("no message {id}: {e}"))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if id_of(&name) == id {
            return Ok(format!("{cur}/{name}"));
        }
    }
    Err(format!("no message {id}"))
}

/// The message's size with CRLF line ends: the `W=` of the name when
/// there is one, else counted from the file.
pub fn crlf_size(id: &str, path: &str) -> Result<u64, String> {
    if let Some(w) = id
        .split(',')
        .find_map(|f| f.strip_prefix("W="))
        .and_then(|w| w.parse().ok())
    {
        return Ok(w);
    }
    let mut file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    let mut buf = vec![0; 64 * 1024];
    let (mut size, mut prev) = (0u64, 0u8);
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("read {path}: {e}"))?;
        if n == 0 {
            return Ok(size);
        }
        for &b in &buf[..n] {
            size += if b == b'\n' && prev != b'\r' { 2 } else { 1 };
            prev = b;
        }
    }
}

/// Where a CRLF view of a file stands: the CRLF offset, the file offset,
/// and whether the LF of a CRLF split across two reads is still owed.
#[derive(Clone, PartialEq, Eq)]
struct Cursor {
    path: String,
    crlf: u64,
    file: u64,
    owe_lf: bool,
    /// The last byte produced (a CR before an LF in the file means CRLF already).
    prev: u8,
}

thread_local! {
    /// Where the last read ended: POP3 reads a message in consecutive
    /// pieces, and each piece then starts there instead of at the top.
    static LAST: RefCell<Option<Cursor>> = const { RefCell::new(None) };
}

/// Up to `len` bytes of the file as CRLF text, from CRLF offset `offset`
/// (exactly `len` unless the end comes first).
pub fn read_crlf(path: &str, offset: u64, len: u32) -> Result<Vec<u8>, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    let start = LAST
        .with(|l| l.borrow().clone())
        .filter(|c| c.path == path && c.crlf == offset)
        .unwrap_or(Cursor {
            path: path.to_string(),
            crlf: 0,
            file: 0,
            owe_lf: false,
            prev: 0,
        });
    file.seek(SeekFrom::Start(start.file))
        .map_err(|e| format!("seek {path}: {e}"))?;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut cur = start;
    let mut out = Vec::with_capacity(len as usize);
    let mut byte = [0u8; 1];
    let want = u64::from(len);
    loop {
        if cur.owe_lf {
            if cur.crlf >= offset {
                if out.len() as u64 == want {
                    break;
                }
                out.push(b'\n');
            }
            cur.crlf += 1;
            cur.owe_lf = false;
            cur.prev = b'\n';
            continue;
        }
        if out.len() as u64 == want {
            break;
        }
        if reader
            .read(&mut byte)
            .map_err(|e| format!("read {path}: {e}"))?
            == 0
        {
            break;
        }
        cur.file += 1;
        let b = byte[0];
        if b == b'\n' && cur.prev != b'\r' {
            // A bare LF: CR now, the LF next.
            if cur.crlf >= offset {
                out.push(b'\r');
            }
            cur.crlf += 1;
            cur.owe_lf = true;
            cur.prev = b'\r';
            continue;
        }
        if cur.crlf >= offset {
            out.push(b);
        }
        cur.crlf += 1;
        cur.prev = b;
    }
    LAST.with(|l| *l.borrow_mut() = Some(cur));
    Ok(out)
}
