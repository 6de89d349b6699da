//! A storage plugin keeping Maildir-style folders in the directory its
//! config grants: `<mailbox>/new/<time>.<n>` per message. It claims the
//! mailboxes listed in its `mailboxes` config value (comma-separated).

use std::io::{Read, Seek, SeekFrom};
use tern_sdk::{Message, Storage, Stored, clock, config, kv};

struct MaildirStore;

fn folder(mailbox: &str) -> Result<String, String> {
    if mailbox.is_empty() || mailbox.contains(['/', '\\']) || mailbox.starts_with('.') {
        return Err(format!("unusable mailbox name {mailbox:?}"));
    }
    Ok(format!("{mailbox}/new"))
}

fn file(mailbox: &str, id: &str) -> Result<String, String> {
    if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
        return Err(format!("unusable id {id:?}"));
    }
    Ok(format!("{}/{id}", folder(mailbox)?))
}

impl Storage for MaildirStore {
    fn claims(mailbox: String) -> bool {
        let list = config::get("mailboxes").unwrap_or_default();
        list.split(',')
            .any(|m| m.trim().eq_ignore_ascii_case(&mailbox))
    }

    fn deliver(mailbox: String, message: &Message) -> Result<String, String> {
        let dir = folder(&mailbox)?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {dir}: {e}"))?;
        let mut bytes = Vec::with_capacity(message.size() as usize);
        loop {
            let piece = message.read(bytes.len() as u64, 64 * 1024);
            if piece.is_empty() {
                break;
            }
            bytes.extend_from_slice(&piece);
        }
        let n = kv::increment("seq", 1, None)?;
        let id = format!("{}.{n}", clock::now_ms());
        let tmp = format!("{dir}/.{id}.tmp");
        std::fs::write(&tmp, &bytes).map_err(|e| format!("write {tmp}: {e}"))?;
        std::fs::rename(&tmp, file(&mailbox, &id)?).map_err(|e| format!("rename: {e}"))?;
        Ok(id)
    }

    fn list(mailbox: String) -> Result<Vec<Stored>, String> {
        let dir = folder(&mailbox)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("read {dir}: {e}")),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| e.to_string())?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') {
                continue;
            }
            let size = entry.metadata().map_err(|e| e.to_string())?.len();
            out.push(Stored { id, size });
        }
        out.sort_by_key(|s| {
            let (ms, n) = s.id.split_once('.').unwrap_or((&s.id, "0"));
            (
                ms.parse::<u64>().unwrap_or(0),
                n.parse::<u64>().unwrap_or(0),
            )
        });
        Ok(out)
    }

    fn fetch(mailbox: String, id: String, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        let path = file(&mailbox, &id)?;
        let mut f = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        f.take(u64::from(len))
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    }

    fn delete(mailbox: String, id: String) -> Result<(), String> {
        let path = file(&mailbox, &id)?;
        std::fs::remove_file(&path).map_err(|e| format!("remove {path}: {e}"))
    }
}

tern_sdk::export!(MaildirStore: Storage);
