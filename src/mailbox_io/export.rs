//! `tern export`: a user's folders walked in order into a [`MailSink`].
//! Run on the store directly, the sink is a [`FileSink`] writing Maildir++
//! or mbox. While the server runs it owns the store, so the server walks
//! the folders into a stream on the control socket ([`stream_export`]) and
//! the command writes what arrives into its own [`FileSink`]
//! ([`receive_export`]): the files are made by the user who ran the
//! command, where that user can write, not inside the server's sandbox.
//!
//! Frames (as `tern backup`'s): a folder's name; a message's flags (one per
//! line), internal date, UID and bytes (LF line ends); the end with the
//! counts; or the failure's text.

use super::{Format, MailboxIoError, Tally, io, maildir, mbox, to_lf};
use crate::store::Store;
use crate::store::backend::dump::stream::{read_part, write_frame};
use std::future::Future;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const FOLDER: u8 = 1;
const MESSAGE: u8 = 2;
const END: u8 = 3;
const FAILED: u8 = 4;

/// Where an export's folders and messages go.
pub trait MailSink {
    fn folder(&mut self, name: &str) -> impl Future<Output = Result<(), MailboxIoError>> + Send;
    fn message(
        &mut self,
        bytes: &[u8],
        flags: &[String],
        date: i64,
        uid: u32,
    ) -> impl Future<Output = Result<(), MailboxIoError>> + Send;
    fn finish(&mut self, tally: &Tally) -> impl Future<Output = Result<(), MailboxIoError>> + Send;
}

/// Walks every folder of `user` into `sink`.
pub async fn export_into(
    store: &Store,
    user: &str,
    sink: &mut impl MailSink,
) -> Result<Tally, MailboxIoError> {
    if store.user(user).await?.is_none() {
        return Err(MailboxIoError::Refused(format!("no such user: {user}")));
    }
    let mut tally = Tally::default();
    for folder in store.folders(user).await? {
        sink.folder(&folder.name).await?;
        let messages = store.messages(user, &folder.name).await?;
        for m in &messages {
            let bytes = to_lf(&store.read_blob(m.blob).await?);
            sink.message(&bytes, &m.flags, m.internal_date, m.uid)
                .await?;
        }
        tally.folders += 1;
        tally.messages += messages.len();
    }
    sink.finish(&tally).await?;
    Ok(tally)
}

/// Writes every folder of `user` into `dir` (absent or empty).
pub async fn export(
    store: &Store,
    user: &str,
    format: Format,
    dir: &Path,
) -> Result<Tally, MailboxIoError> {
    export_into(store, user, &mut FileSink::create(format, dir)?).await
}

/// Files in `dir`: one Maildir++ folder or mbox file per folder.
pub struct FileSink {
    format: Format,
    dir: PathBuf,
    current: Option<Writer>,
}

enum Writer {
    Maildir(maildir::Writer),
    Mbox(mbox::Writer),
}

impl FileSink {
    /// Refuses a `dir` that exists and is not empty.
    pub fn create(format: Format, dir: &Path) -> Result<FileSink, MailboxIoError> {
        if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
            return Err(MailboxIoError::Refused(format!(
                "{} is not empty: export into a new folder",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(FileSink {
            format,
            dir: dir.to_path_buf(),
            current: None,
        })
    }

    fn close(&mut self) -> Result<(), MailboxIoError> {
        match self.current.take() {
            Some(Writer::Maildir(w)) => w.finish(),
            Some(Writer::Mbox(w)) => w.finish(),
            None => Ok(()),
        }
    }
}

impl MailSink for FileSink {
    async fn folder(&mut self, name: &str) -> Result<(), MailboxIoError> {
        self.close()?;
        let name = crate::store::check_folder_name(name)
            .map_err(|e| MailboxIoError::Refused(format!("folder {name:?}: {e}")))?;
        self.current = Some(match self.format {
            Format::Maildir => Writer::Maildir(maildir::Writer::create(&self.dir, &name)?),
            Format::Mbox => Writer::Mbox(mbox::Writer::create(&self.dir, &name)?),
        });
        Ok(())
    }

    async fn message(
        &mut self,
        bytes: &[u8],
        flags: &[String],
        date: i64,
        uid: u32,
    ) -> Result<(), MailboxIoError> {
        match &mut self.current {
            Some(Writer::Maildir(w)) => w.write(bytes, flags, date, uid),
            Some(Writer::Mbox(w)) => w.write(bytes, flags, date),
            None => Err(MailboxIoError::Refused(
                "a message before its folder".into(),
            )),
        }
    }

    async fn finish(&mut self, _: &Tally) -> Result<(), MailboxIoError> {
        self.close()
    }
}

fn lost(e: std::io::Error) -> MailboxIoError {
    MailboxIoError::Refused(format!("the export's connection: {e}"))
}

/// The server's end: frames onto `W`.
pub struct StreamSink<W: AsyncWrite + Unpin + Send> {
    out: tokio::io::BufWriter<W>,
}

impl<W: AsyncWrite + Unpin + Send> MailSink for StreamSink<W> {
    async fn folder(&mut self, name: &str) -> Result<(), MailboxIoError> {
        write_frame(&mut self.out, FOLDER, &[name.as_bytes()])
            .await
            .map_err(lost)
    }

    async fn message(
        &mut self,
        bytes: &[u8],
        flags: &[String],
        date: i64,
        uid: u32,
    ) -> Result<(), MailboxIoError> {
        let flags = flags.join("\n");
        let (date, uid) = (date.to_string(), uid.to_string());
        let parts: [&[u8]; 4] = [flags.as_bytes(), date.as_bytes(), uid.as_bytes(), bytes];
        write_frame(&mut self.out, MESSAGE, &parts)
            .await
            .map_err(lost)
    }

    async fn finish(&mut self, tally: &Tally) -> Result<(), MailboxIoError> {
        let counts = format!("{} {}", tally.folders, tally.messages);
        write_frame(&mut self.out, END, &[counts.as_bytes()])
            .await
            .map_err(lost)?;
        self.out.flush().await.map_err(lost)
    }
}

/// Exports `user` onto `out` (the control socket); a failure is sent as such.
pub async fn stream_export<W: AsyncWrite + Unpin + Send>(
    store: &Store,
    user: &str,
    out: W,
) -> Result<Tally, MailboxIoError> {
    let mut sink = StreamSink {
        out: tokio::io::BufWriter::new(out),
    };
    let result = export_into(store, user, &mut sink).await;
    if let Err(e) = &result {
        let _ = write_frame(&mut sink.out, FAILED, &[e.to_string().as_bytes()]).await;
        let _ = sink.out.flush().await;
    }
    result
}

/// The command's end: writes the frames from `input` into `sink`.
pub async fn receive_export(
    mut input: impl AsyncRead + Unpin,
    sink: &mut FileSink,
) -> Result<Tally, MailboxIoError> {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    loop {
        match input.read_u8().await.map_err(lost)? {
            FOLDER => {
                sink.folder(&text(read_part(&mut input).await.map_err(lost)?))
                    .await?
            }
            MESSAGE => {
                let flags = text(read_part(&mut input).await.map_err(lost)?);
                let date = text(read_part(&mut input).await.map_err(lost)?);
                let uid = text(read_part(&mut input).await.map_err(lost)?);
                let bytes = read_part(&mut input).await.map_err(lost)?;
                let flags: Vec<String> = flags.lines().map(str::to_string).collect();
                let date = date.parse().unwrap_or(0);
                let uid = uid.parse().unwrap_or(0);
                sink.message(&bytes, &flags, date, uid).await?;
            }
            END => {
                let counts = text(read_part(&mut input).await.map_err(lost)?);
                let mut n = counts.split(' ').map(|n| n.parse().unwrap_or(0));
                let tally = Tally {
                    folders: n.next().unwrap_or(0),
                    messages: n.next().unwrap_or(0),
                };
                sink.finish(&tally).await?;
                return Ok(tally);
            }
            FAILED => {
                let why = text(read_part(&mut input).await.map_err(lost)?);
                return Err(MailboxIoError::Refused(format!(
                    "the server could not export: {why}"
                )));
            }
            other => {
                return Err(lost(std::io::Error::other(format!(
                    "a frame of kind {other}"
                ))));
            }
        }
    }
}
