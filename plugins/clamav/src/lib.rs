//! Virus scanning with ClamAV's clamd: at the end of data, the whole
//! message (as Tern stores it, `Received:` first) goes to clamd over TCP
//! with the INSTREAM command, in chunks. `stream: OK` lets it through;
//! `stream: NAME FOUND` refuses it with `554 5.7.1` naming the virus, or
//! (`action = "quarantine"`) files the local copies in the recipients'
//! `folder` (Junk by default; `verdicts::local_folder`) and relays nothing.
//! clamd unreachable, or answering with an error, makes the plugin fail,
//! so the `[[plugin]]` entry's `on_error` decides (tempfail by default).
//! Needs `connect = ["host:port"]` granting clamd's address.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use tern_sdk::{
    Envelope, Filter, FilterAction, FilterVerdict, Message, Reply, Session, config, log, verdicts,
};

/// Bytes read from the message and sent per INSTREAM chunk.
const CHUNK: u32 = 64 * 1024;
/// Longest reply read from clamd.
const MAX_REPLY: usize = 4096;

enum Action {
    Reject,
    /// Into this folder.
    Quarantine(String),
}

struct Settings {
    host: String,
    port: u16,
    action: Action,
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let address = config::get("address").unwrap_or_else(|| "127.0.0.1:3310".into());
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("address {address:?}: want host:port"))?;
        let port = port
            .parse()
            .map_err(|_| format!("address {address:?}: bad port"))?;
        let action = match config::get("action").as_deref() {
            None | Some("reject") => Action::Reject,
            Some("quarantine") => {
                Action::Quarantine(config::get("folder").unwrap_or_else(|| "Junk".into()))
            }
            Some(other) => return Err(format!("action {other:?}: want reject or quarantine")),
        };
        Ok(Settings {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            action,
        })
    })
}

/// Sends the message to clamd; its answer without the `stream: ` prefix.
fn scan(s: &Settings, message: &Message) -> Result<String, String> {
    let mut conn = tern_sdk::net::connect(&s.host, s.port)
        .map_err(|e| format!("cannot connect to clamd at {}:{}: {e}", s.host, s.port))?;
    let io = |e: std::io::Error| format!("clamd: {e}");
    conn.write_all(b"zINSTREAM\0").map_err(io)?;
    let size = message.size();
    let mut offset = 0u64;
    while offset < size {
        let chunk = message.read(offset, CHUNK);
        if chunk.is_empty() {
            break;
        }
        conn.write_all(&(chunk.len() as u32).to_be_bytes())
            .map_err(io)?;
        conn.write_all(&chunk).map_err(io)?;
        offset += chunk.len() as u64;
    }
    conn.write_all(&0u32.to_be_bytes()).map_err(io)?;
    read_reply(&mut conn)
}

fn read_reply(conn: &mut TcpStream) -> Result<String, String> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 512];
    loop {
        let n = conn.read(&mut byte).map_err(|e| format!("clamd: {e}"))?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&byte[..n]);
        if reply.contains(&0) || reply.len() > MAX_REPLY {
            break;
        }
    }
    let end = reply.iter().position(|b| *b == 0).unwrap_or(reply.len());
    let text = String::from_utf8_lossy(&reply[..end]).trim().to_string();
    Ok(text.strip_prefix("stream: ").unwrap_or(&text).to_string())
}

/// What clamd's answer means: None for clean, the virus name when found.
fn verdict_of(answer: &str) -> Result<Option<String>, String> {
    if answer == "OK" {
        return Ok(None);
    }
    if let Some(name) = answer.strip_suffix(" FOUND") {
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(200)
            .collect();
        return Ok(Some(name));
    }
    Err(format!("clamd answered {answer:?}"))
}

struct ClamAv;

#[tern_sdk::hooks]
impl Filter for ClamAv {
    fn on_data(_session: Session, envelope: Envelope, message: &Message) -> FilterVerdict {
        let s = match settings() {
            Ok(s) => s,
            // A bad config fails every call: on_error decides, the log says why.
            Err(e) => panic!("clamav: bad config: {e}"),
        };
        let found = match scan(s, message).and_then(|a| verdict_of(&a)) {
            Ok(found) => found,
            Err(e) => panic!("clamav: {e}"),
        };
        let Some(virus) = found else {
            return FilterVerdict::pass();
        };
        log::warn(&format!(
            "virus {virus} in a message from <{}>",
            envelope.sender
        ));
        let action = match &s.action {
            Action::Reject => FilterAction::Reject(Reply::new(
                554,
                "5.7.1",
                &format!("message refused: virus {virus} found"),
            )),
            Action::Quarantine(folder) => {
                verdicts::local_folder(folder);
                FilterAction::Quarantine(format!("virus {virus}"))
            }
        };
        FilterVerdict {
            action,
            edits: Vec::new(),
        }
        .add_header("X-Virus-Scanned", &format!("clamav: {virus} FOUND"))
    }
}

tern_sdk::export!(ClamAv: Filter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(verdict_of("OK"), Ok(None));
        assert_eq!(
            verdict_of("Eicar-Signature FOUND"),
            Ok(Some("Eicar-Signature".into()))
        );
        assert!(verdict_of("INSTREAM size limit exceeded. ERROR").is_err());
    }
}
