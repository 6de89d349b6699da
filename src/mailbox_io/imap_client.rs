//! The few IMAP client commands `tern migrate` needs, over implicit TLS:
//! AUTHENTICATE PLAIN, LIST, EXAMINE, UID SEARCH and UID FETCH. Commands
//! are short fixed forms written here; every response is decoded by
//! imap-codec (`ResponseCodec`), literals included, so nothing of the
//! server's syntax is parsed by hand. Only what the migration uses is kept
//! of each response ([`Event`]).

use super::MailboxIoError;
use imap_codec::ResponseCodec;
use imap_codec::decode::{Decoder, ResponseDecodeError};
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{FlagFetch, FlagNameAttribute};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A response, as far as the migration cares.
#[derive(Debug)]
enum Event {
    Tagged {
        tag: String,
        ok: bool,
        text: String,
    },
    Continue,
    List {
        name: Vec<u8>,
        delimiter: Option<char>,
        noselect: bool,
    },
    UidValidity(u32),
    Search(Vec<u32>),
    Fetch(Fetched),
    Other,
}

/// One message of a UID FETCH.
#[derive(Debug, Default)]
pub(super) struct Fetched {
    pub uid: u32,
    pub flags: Vec<String>,
    pub date: Option<i64>,
    pub body: Option<Vec<u8>>,
}

/// A folder of the source: its name as sent (modified UTF-7 or UTF-8),
/// its hierarchy delimiter, and whether it can hold messages.
pub(super) struct Listed {
    pub name: Vec<u8>,
    pub delimiter: Option<char>,
    pub noselect: bool,
}

pub(super) struct Client {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
    tag: u32,
}

fn failed(what: String) -> MailboxIoError {
    MailboxIoError::Refused(format!("IMAP source: {what}"))
}

impl Client {
    /// Connects with TLS (verified by `tls` as configured by the caller)
    /// and reads the greeting.
    pub(super) async fn connect(
        host: &str,
        port: u16,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Client, MailboxIoError> {
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| failed(format!("{host}: {e}")))?;
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| failed(format!("connecting to {host}:{port}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| failed(format!("TLS with {host}:{port}: {e}")))?;
        let mut client = Client {
            stream,
            buf: Vec::new(),
            tag: 0,
        };
        // The greeting: an untagged OK (or PREAUTH / BYE).
        client.next().await?;
        Ok(client)
    }

    pub(super) async fn login(&mut self, user: &str, password: &str) -> Result<(), MailboxIoError> {
        use base64::Engine;
        let tag = self.send("AUTHENTICATE PLAIN").await?;
        loop {
            match self.next().await? {
                Event::Continue => break,
                Event::Tagged { text, .. } => return Err(failed(format!("AUTHENTICATE: {text}"))),
                _ => {}
            }
        }
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.write(format!("{token}\r\n").as_bytes()).await?;
        self.finish(&tag, "login").await.map(|_| ())
    }

    pub(super) async fn list(&mut self) -> Result<Vec<Listed>, MailboxIoError> {
        let tag = self.send("LIST \"\" \"*\"").await?;
        let mut out = Vec::new();
        for event in self.finish(&tag, "LIST").await? {
            if let Event::List {
                name,
                delimiter,
                noselect,
            } = event
            {
                out.push(Listed {
                    name,
                    delimiter,
                    noselect,
                });
            }
        }
        Ok(out)
    }

    /// EXAMINEs a folder; returns its UIDVALIDITY.
    pub(super) async fn examine(&mut self, name: &[u8]) -> Result<u32, MailboxIoError> {
        let quoted = quote(name);
        let tag = self.send(&format!("EXAMINE {quoted}")).await?;
        let events = self.finish(&tag, "EXAMINE").await?;
        events
            .iter()
            .find_map(|e| match e {
                Event::UidValidity(v) => Some(*v),
                _ => None,
            })
            .ok_or_else(|| failed(format!("EXAMINE {quoted}: no UIDVALIDITY")))
    }

    /// The UIDs of the selected folder above `after`, ascending.
    pub(super) async fn uids_after(&mut self, after: u32) -> Result<Vec<u32>, MailboxIoError> {
        let tag = self
            .send(&format!("UID SEARCH UID {}:*", after.saturating_add(1)))
            .await?;
        let mut uids: Vec<u32> = Vec::new();
        for event in self.finish(&tag, "UID SEARCH").await? {
            if let Event::Search(found) = event {
                uids.extend(found);
            }
        }
        // n:* always matches the last message, even below n.
        uids.retain(|u| *u > after);
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// Flags, internal date and whole message of each UID, in UID order.
    pub(super) async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<Fetched>, MailboxIoError> {
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let tag = self
            .send(&format!(
                "UID FETCH {} (UID FLAGS INTERNALDATE BODY.PEEK[])",
                set.join(",")
            ))
            .await?;
        let mut out: Vec<Fetched> = Vec::new();
        for event in self.finish(&tag, "UID FETCH").await? {
            if let Event::Fetch(f) = event
                && f.uid != 0
                && f.body.is_some()
            {
                out.push(f);
            }
        }
        out.sort_by_key(|f| f.uid);
        Ok(out)
    }

    pub(super) async fn logout(mut self) {
        if let Ok(tag) = self.send("LOGOUT").await {
            let _ = self.finish(&tag, "LOGOUT").await;
        }
    }

    async fn send(&mut self, command: &str) -> Result<String, MailboxIoError> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.write(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        Ok(tag)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), MailboxIoError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| failed(format!("writing: {e}")))?;
        self.stream
            .flush()
            .await
            .map_err(|e| failed(format!("writing: {e}")))
    }

    /// Every response up to the tagged one for `tag`, which must be OK.
    async fn finish(&mut self, tag: &str, what: &str) -> Result<Vec<Event>, MailboxIoError> {
        let mut events = Vec::new();
        loop {
            match self.next().await? {
                Event::Tagged { tag: t, ok, text } if t == tag => {
                    if !ok {
                        return Err(failed(format!("{what}: {text}")));
                    }
                    return Ok(events);
                }
                event => events.push(event),
            }
        }
    }

    /// The next response, read whole (literals included).
    async fn next(&mut self) -> Result<Event, MailboxIoError> {
        loop {
            match ResponseCodec::default().decode(&self.buf) {
                Ok((rest, response)) => {
                    let event = event_of(response);
                    let used = self.buf.len() - rest.len();
                    self.buf.drain(..used);
                    return Ok(event);
                }
                Err(ResponseDecodeError::Incomplete)
                | Err(ResponseDecodeError::LiteralFound { .. }) => {
                    let mut chunk = vec![0; 64 * 1024];
                    let n = self
                        .stream
                        .read(&mut chunk)
                        .await
                        .map_err(|e| failed(format!("reading: {e}")))?;
                    if n == 0 {
                        return Err(failed("the server closed the connection".into()));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(ResponseDecodeError::Failed) => {
                    let line = self.buf.split(|b| *b == b'\n').next().unwrap_or_default();
                    return Err(failed(format!(
                        "cannot decode the response {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(200)])
                    )));
                }
            }
        }
    }
}

fn event_of(response: Response<'_>) -> Event {
    match response {
        Response::CommandContinuationRequest(_) => Event::Continue,
        Response::Status(status) => {
            use imap_codec::imap_types::response::Status;
            match status {
                Status::Tagged(t) => Event::Tagged {
                    tag: t.tag.inner().to_string(),
                    ok: t.body.kind == StatusKind::Ok,
                    text: t.body.text.inner().to_string(),
                },
                Status::Untagged(body) => match body.code {
                    Some(Code::UidValidity(v)) => Event::UidValidity(v.get()),
                    _ => Event::Other,
                },
                Status::Bye(_) => Event::Other,
            }
        }
        Response::Data(Data::List {
            items,
            delimiter,
            mailbox,
        }) => Event::List {
            name: match mailbox {
                Mailbox::Inbox => b"INBOX".to_vec(),
                Mailbox::Other(other) => other.as_ref().to_vec(),
            },
            delimiter: delimiter.map(|d| d.inner()),
            noselect: items.contains(&FlagNameAttribute::Noselect),
        },
        Response::Data(Data::Search(uids, ..)) => {
            Event::Search(uids.iter().map(|u| u.get()).collect())
        }
        Response::Data(Data::Fetch { items, .. }) => Event::Fetch(fetched(items)),
        _ => Event::Other,
    }
}

fn fetched(items: Vec1<MessageDataItem<'_>>) -> Fetched {
    let mut f = Fetched::default();
    for item in items.into_iter() {
        match item {
            MessageDataItem::Uid(u) => f.uid = u.get(),
            MessageDataItem::Flags(flags) => {
                f.flags = flags
                    .iter()
                    .filter_map(|flag| match flag {
                        FlagFetch::Flag(flag) => Some(flag.to_string()),
                        FlagFetch::Recent => None,
                    })
                    .collect();
            }
            MessageDataItem::InternalDate(d) => f.date = Some(d.as_ref().timestamp()),
            MessageDataItem::BodyExt {
                section: None,
                data,
                ..
            } => f.body = data.0.map(|s| s.as_ref().to_vec()),
            _ => {}
        }
    }
    f
}

/// A folder name as an IMAP quoted string.
fn quote(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}
