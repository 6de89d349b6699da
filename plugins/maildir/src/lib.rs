//! Maildir storage: each mailbox it claims (`mailboxes` patterns) is a
//! Maildir (`tmp/`, `new/`, `cur/`) at `<domain>/<local>/` under the
//! directory the plugin's `[[plugin]] directory` grants. A delivery is
//! written to `tmp/` under a unique name (`<secs>.M<usec>Q<n>.<host>,S=<size>,W=<crlf-size>`:
//! `n` is a counter in the key-value store that never repeats), flushed to
//! disk, then renamed into `new/`, as the Maildir specification asks.
//! Files hold LF line ends like other Maildir writers' (the message Tern
//! hands over has CRLF only, so nothing is lost); POP3 sees CRLF again.
//!
//! POP3 (`list`, `fetch`, `delete`) serves `new/` and `cur/`; a message's
//! id (its UIDL) is the unique part of its file name, which stays the same
//! when a mail reader moves it to `cur/` and adds `:2,` flags.

mod files;

use std::io::Write;
use std::sync::OnceLock;
use tern_plugin_support::{self as support, Pattern};
use tern_sdk::{Message, Storage, Stored, clock, config, kv, log};

struct Settings {
    mailboxes: Vec<Pattern>,
    hostname: String,
    fsync: bool,
}

impl Settings {
    fn load() -> Result<Settings, String> {
        let mailboxes = support::patterns(&config::get("mailboxes").unwrap_or_default());
        let hostname: String = config::get("hostname")
            .unwrap_or_else(|| "tern".into())
            .chars()
            // The Maildir spec's escapes for the two characters a name cannot hold.
            .flat_map(|c| match c {
                '/' => "\\057".chars().collect::<Vec<_>>(),
                ':' => "\\072".chars().collect(),
                ',' => "\\054".chars().collect(),
                c if c.is_ascii_graphic() => vec![c],
                _ => vec![],
            })
            .collect();
        let fsync = support::parse_bool(&config::get("fsync").unwrap_or_else(|| "yes".into()))
            .map_err(|e| format!("config fsync: {e}"))?;
        Ok(Settings {
            mailboxes,
            hostname,
            fsync,
        })
    }
}

fn settings() -> Result<&'static Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(Settings::load)
        .as_ref()
        .map_err(Clone::clone)
}

/// Reads the message in pieces and writes it with LF line ends; returns
/// the bytes written and the message's size with CRLF line ends.
fn write_lf(message: &Message, out: &mut impl Write) -> Result<(u64, u64), String> {
    const PIECE: u32 = 64 * 1024;
    let (mut offset, mut written) = (0u64, 0u64);
    let mut pending_cr = false;
    loop {
        let piece = message.read(offset, PIECE);
        if piece.is_empty() {
            break;
        }
        offset += piece.len() as u64;
        let mut lf = Vec::with_capacity(piece.len() + 1);
        for &b in &piece {
            if pending_cr && b != b'\n' {
                lf.push(b'\r');
            }
            pending_cr = b == b'\r';
            if !pending_cr {
                lf.push(b);
            }
        }
        written += lf.len() as u64;
        out.write_all(&lf).map_err(|e| format!("write: {e}"))?;
    }
    if pending_cr {
        out.write_all(b"\r").map_err(|e| format!("write: {e}"))?;
        written += 1;
    }
    Ok((written, offset))
}

struct Maildir;

#[tern_sdk::hooks]
impl Storage for Maildir {
    fn claims(mailbox: String) -> bool {
        match settings() {
            Ok(s) => s.mailboxes.iter().any(|p| p.matches_address(&mailbox)),
            Err(e) => {
                log::error(&format!("maildir storage is off: {e}"));
                false
            }
        }
    }

    fn deliver(mailbox: String, message: &Message) -> Result<String, String> {
        let s = settings()?;
        let dir = files::maildir(&mailbox)?;
        files::create(&dir)?;
        let n = kv::increment("deliveries", 1, None)?;
        let now = clock::now_ms();
        let base = format!("{}.M{}Q{n}.{}", now / 1000, (now % 1000) * 1000, s.hostname);
        let tmp = format!("{dir}/tmp/{base}");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| format!("create {tmp}: {e}"))?;
        let written = write_lf(message, &mut file).and_then(|sizes| {
            if s.fsync {
                file.sync_all().map_err(|e| format!("fsync {tmp}: {e}"))?;
            }
            Ok(sizes)
        });
        let (size, crlf_size) = match written {
            Ok(sizes) => sizes,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let id = format!("{base},S={size},W={crlf_size}");
        let new = format!("{dir}/new/{id}");
        if let Err(e) = std::fs::rename(&tmp, &new) {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("rename {tmp} to {new}: {e}"));
        }
        if s.fsync {
            files::sync_dir(&format!("{dir}/new"));
        }
        Ok(id)
    }

    fn list_messages(mailbox: String) -> Result<Vec<Stored>, String> {
        let dir = files::maildir(&mailbox)?;
        let mut out = Vec::new();
        for (id, path) in files::messages(&dir)? {
            let size = files::crlf_size(&id, &path)?;
            out.push(Stored { id, size });
        }
        Ok(out)
    }

    fn fetch(mailbox: String, id: String, offset: u64, len: u32) -> Result<Vec<u8>, String> {
        let dir = files::maildir(&mailbox)?;
        let path = files::find(&dir, &id)?;
        files::read_crlf(&path, offset, len)
    }

    fn delete(mailbox: String, id: String) -> Result<(), String> {
        let dir = files::maildir(&mailbox)?;
        let path = files::find(&dir, &id)?;
        std::fs::remove_file(&path).map_err(|e| format!("remove {path}: {e}"))
    }
}

tern_sdk::export!(Maildir: Storage);
