//! A backup carried over a byte stream (the control socket): the server
//! reads its snapshot into a [`StreamSink`], and `tern backup` writes what
//! arrives into a [`DirSink`] with [`receive`]. So the files are written
//! by the command, as the user who runs it and where that user can write —
//! not by the server, which under the shipped systemd unit sees a private
//! `/tmp` and a read-only file system outside its state directory.
//!
//! Frames: a kind byte, then for a space its name, for a record its key
//! and value, for the end the manifest (JSON), for a failure its text —
//! each of those a 4-byte big-endian length and the bytes.

use super::{DirSink, DumpError, Manifest, Sink};
use crate::store::backend::Space;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

const SPACE: u8 = 1;
const RECORD: u8 = 2;
const END: u8 = 3;
const FAILED: u8 = 4;

/// The server's end: frames onto `W`.
pub struct StreamSink<W: AsyncWrite + Unpin + Send> {
    out: BufWriter<W>,
}

fn lost(e: std::io::Error) -> DumpError {
    DumpError::Refused(format!("the backup's connection: {e}"))
}

impl<W: AsyncWrite + Unpin + Send> StreamSink<W> {
    pub fn new(out: W) -> StreamSink<W> {
        StreamSink {
            out: BufWriter::with_capacity(1 << 20, out),
        }
    }

    async fn frame(&mut self, kind: u8, parts: &[&[u8]]) -> Result<(), DumpError> {
        write_frame(&mut self.out, kind, parts).await.map_err(lost)
    }

    /// Tells the other end the backup failed, and why.
    pub async fn fail(&mut self, why: &str) {
        let _ = self.frame(FAILED, &[why.as_bytes()]).await;
        let _ = self.out.flush().await;
    }
}

impl<W: AsyncWrite + Unpin + Send> Sink for StreamSink<W> {
    async fn space(&mut self, space: Space) -> Result<(), DumpError> {
        self.frame(SPACE, &[space.name().as_bytes()]).await
    }

    async fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), DumpError> {
        self.frame(RECORD, &[key, value]).await
    }

    async fn finish(&mut self, manifest: &Manifest) -> Result<(), DumpError> {
        let text = serde_json::to_vec(manifest)
            .map_err(|e| DumpError::Refused(format!("manifest: {e}")))?;
        self.frame(END, &[&text]).await?;
        self.out.flush().await.map_err(lost)
    }
}

/// Writes one frame: `kind`, then each part as a length and its bytes
/// (shared with `tern export`'s stream).
pub(crate) async fn write_frame(
    out: &mut (impl AsyncWrite + Unpin),
    kind: u8,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    out.write_u8(kind).await?;
    for part in parts {
        let len = u32::try_from(part.len()).map_err(std::io::Error::other)?;
        out.write_u32(len).await?;
        out.write_all(part).await?;
    }
    Ok(())
}

/// Reads one part of a frame (at most 64 MiB).
pub(crate) async fn read_part(input: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let len = input.read_u32().await?;
    if len > 64 << 20 {
        return Err(std::io::Error::other(format!("a frame of {len} bytes")));
    }
    let mut buf = vec![0; len as usize];
    input.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn part(input: &mut (impl AsyncRead + Unpin)) -> Result<Vec<u8>, DumpError> {
    read_part(input).await.map_err(lost)
}

/// The command's end: writes the frames from `input` into `sink` and
/// returns the manifest once the files match it.
pub async fn receive(
    mut input: impl AsyncRead + Unpin,
    sink: &mut DirSink,
) -> Result<Manifest, DumpError> {
    loop {
        match input.read_u8().await.map_err(lost)? {
            SPACE => {
                let name = part(&mut input).await?;
                let space = Space::ALL
                    .into_iter()
                    .find(|s| s.name().as_bytes() == name)
                    .ok_or_else(|| DumpError::Refused("an unknown space".into()))?;
                sink.space(space).await?;
            }
            RECORD => {
                let key = part(&mut input).await?;
                let value = part(&mut input).await?;
                sink.record(&key, &value).await?;
            }
            END => {
                let text = part(&mut input).await?;
                let manifest: Manifest = serde_json::from_slice(&text)
                    .map_err(|e| DumpError::Refused(format!("manifest: {e}")))?;
                sink.finish(&manifest).await?;
                return Ok(manifest);
            }
            FAILED => {
                let why = part(&mut input).await?;
                return Err(DumpError::Refused(format!(
                    "the server could not back up: {}",
                    String::from_utf8_lossy(&why)
                )));
            }
            other => return Err(DumpError::Refused(format!("a frame of kind {other}"))),
        }
    }
}
