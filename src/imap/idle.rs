//! IDLE (RFC 2177): after the continuation, the session waits on two
//! things at once — the client's DONE and change events from the store —
//! and reports new mail, expunges and flag changes as they happen. Other
//! nodes' changes arrive as events too, from the poll of the session's
//! `Store::watch` (within a second or so).

use super::session::{Flow, Session};
use super::wire::Framed;
use imap_codec::IdleDoneCodec;
use std::io;
use std::time::Duration;

/// How long an IDLE may last without a word from the client (RFC 9051: at least 30 minutes).
const IDLE_LIMIT: Duration = Duration::from_secs(31 * 60);

impl Session {
    pub async fn idle(&mut self, tag: &str) -> io::Result<Flow> {
        self.notice_elsewhere().await;
        self.report_changes(true).await?;
        self.conn.write_all(b"+ idling\r\n").await?;
        loop {
            let framed = tokio::select! {
                r = self.reader.read(&mut self.conn, IDLE_LIMIT) => r?,
                e = self.events.recv() => {
                    let ours = match (&e, self.user.as_deref(), self.view.as_mut()) {
                        (Ok(ev), Some(user), Some(view)) if ev.user == user && ev.folder == view.folder => {
                            view.dirty = true;
                            true
                        }
                        (Err(_), _, Some(view)) => {
                            view.dirty = true;
                            true
                        }
                        _ => false,
                    };
                    if ours {
                        self.report_changes(true).await?;
                        self.conn.flush().await?;
                    }
                    continue;
                }
            };
            return match framed {
                Framed::Eof => Ok(Flow::Close),
                Framed::TimedOut => {
                    self.conn.write_all(b"* BYE IDLE for too long\r\n").await?;
                    Ok(Flow::Close)
                }
                Framed::Complete => {
                    let done = self
                        .reader
                        .frag
                        .decode_message(&IdleDoneCodec::default())
                        .is_ok();
                    let line = if done {
                        format!("{tag} OK IDLE terminated\r\n")
                    } else {
                        format!("{tag} BAD expected DONE\r\n")
                    };
                    self.report_changes(true).await?;
                    self.conn.write_buffered(line.as_bytes()).await?;
                    Ok(Flow::Continue)
                }
            };
        }
    }
}
