//! Message bodies, kept in 64 KiB chunks in `Space::Blobs` (`<blob id,
//! 8 bytes BE><chunk, 4 bytes BE>`) so that a large message is never held
//! whole in memory: the SMTP reader streams into a `BlobWriter`, and
//! readers walk the chunks. Each full chunk is committed as it fills, the
//! first one with a `p/<id>` mark (a writer under way); the last, partial
//! chunk and the blob record `b/<id>` go in the write set of the delivery
//! that commits the message, so a small message costs one commit in all.
//! A blob has a reference count (one per mailbox copy and one while the
//! queue holds it), changed only in conditional write sets
//! (`writeset.rs`); at zero the record and the chunks go in the same write
//! set. Blobs whose writer never committed (a crash mid-DATA) are removed
//! at the next start.

use super::backend::{Batch, KeyRange, ScanOrder, Space};
use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BlobId = u64;

pub const CHUNK_SIZE: usize = 64 * 1024;

/// What the store knows about a committed blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlobRecord {
    /// Bytes of `prefix` plus the chunks.
    pub size: u64,
    pub chunks: u32,
    pub refs: u32,
    /// Header lines added in front of the body (Received, and so on).
    #[serde(with = "bytes_as_string")]
    pub prefix: Vec<u8>,
    /// Leading bytes of the chunks that are not part of the message: the
    /// header section as received, when a filter removed fields from it
    /// and the rest of it was rewritten into `prefix`.
    #[serde(default)]
    pub skip: u64,
}

mod bytes_as_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

pub(super) fn blob_key(id: BlobId) -> Vec<u8> {
    let mut k = b"b/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(super) fn pending_key(id: BlobId) -> Vec<u8> {
    let mut k = b"p/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(super) fn chunk_key(id: BlobId, n: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

/// The end of a blob still in its writer (`BlobWriter::tail`): `bytes`,
/// from offset `at` of the blob on. Shared, not copied, by a plugin's view
/// of the message (the writer copies it only if it writes while a view
/// holds it, which the data path does not).
#[derive(Debug, Clone, Copy)]
pub struct Tail<'a> {
    pub at: u64,
    pub bytes: &'a Arc<Vec<u8>>,
}

/// Streams one message body into the store. Dropped without `commit`, it
/// removes what it wrote.
pub struct BlobWriter {
    store: Store,
    id: BlobId,
    buf: Arc<Vec<u8>>,
    chunks: u32,
    size: u64,
    skip: u64,
    /// `p/<id>` is written (with the first chunk): a crash leaves a trace.
    marked: bool,
    pub(super) committed: bool,
}

impl BlobWriter {
    /// Leaves the first `n` bytes written out of the message (see
    /// `BlobRecord::skip`); the caller puts their replacement in the prefix.
    pub fn skip_leading(&mut self, n: u64) {
        self.skip = n.min(self.size);
    }

    /// Bytes at the start that are not part of the message.
    pub fn skipped(&self) -> u64 {
        self.skip
    }

    pub fn id(&self) -> BlobId {
        self.id
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let take = room.min(data.len());
            Arc::make_mut(&mut self.buf).extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.spill().await?;
            }
        }
        Ok(())
    }

    /// Everything written so far in one buffer: the chunks already in the
    /// store, then the part still buffered. One copy of the message, for
    /// checks that need it whole (DKIM verification and signing).
    pub async fn contents(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(self.size as usize);
        let backend = &self.store.inner.backend;
        for n in 0..self.chunks {
            match backend.get(Space::Blobs, &chunk_key(self.id, n)).await? {
                Some(v) => out.extend_from_slice(&v),
                None => return Err(StoreError::MissingBlob(self.id)),
            }
        }
        out.extend_from_slice(&self.buf);
        Ok(out)
    }

    /// Overwrites `bytes.len()` bytes at `offset` with `bytes` (the length
    /// never changes, so chunk boundaries and sizes stay as they are).
    pub async fn patch(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        if offset + bytes.len() as u64 > self.size {
            return Ok(());
        }
        let backend = &self.store.inner.backend;
        let mut done = 0usize;
        while done < bytes.len() {
            let at = offset + done as u64;
            let (n, pos) = (
                (at / CHUNK_SIZE as u64) as u32,
                (at % CHUNK_SIZE as u64) as usize,
            );
            let run = (CHUNK_SIZE - pos).min(bytes.len() - done);
            let part = &bytes[done..done + run];
            if n >= self.chunks {
                Arc::make_mut(&mut self.buf)[pos..pos + run].copy_from_slice(part);
            } else {
                let key = chunk_key(self.id, n);
                let Some(mut v) = backend.get(Space::Blobs, &key).await? else {
                    return Err(StoreError::MissingBlob(self.id));
                };
                v[pos..pos + run].copy_from_slice(part);
                let mut batch = Batch::new();
                batch.put(Space::Blobs, key.to_vec(), v);
                backend.commit(batch).await?;
            }
            done += run;
        }
        Ok(())
    }

    /// The bytes written but not yet in the store (the chunk being
    /// filled): the data hooks read a message before it is committed, the
    /// store's chunks up to `Tail::at` and these after it. Keeping them
    /// here rather than writing them early saves each filtered message a
    /// write set of its own: the last chunk goes in with the message's
    /// commit, as it does without filters.
    pub fn tail(&self) -> Tail<'_> {
        Tail {
            at: self.size - self.buf.len() as u64,
            bytes: &self.buf,
        }
    }

    async fn spill(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::new();
        if !self.marked {
            batch.put(Space::Meta, pending_key(self.id), Vec::new());
        }
        batch.put(
            Space::Blobs,
            chunk_key(self.id, self.chunks).to_vec(),
            self.buf.as_slice(),
        );
        self.store.inner.backend.commit(batch).await?;
        Arc::make_mut(&mut self.buf).clear();
        self.marked = true;
        self.chunks += 1;
        Ok(())
    }

    /// Adds to `batch` the last chunk and the record of the blob with
    /// `refs` references, in the write set of whatever refers to it. The
    /// caller sets `committed` once that write set has committed.
    pub(super) fn finish(&self, prefix: &[u8], refs: u32, batch: &mut Batch) -> BlobRecord {
        let mut chunks = self.chunks;
        if !self.buf.is_empty() {
            batch.put(
                Space::Blobs,
                chunk_key(self.id, chunks).to_vec(),
                self.buf.as_slice(),
            );
            chunks += 1;
        }
        let record = BlobRecord {
            size: self.size - self.skip + prefix.len() as u64,
            chunks,
            refs,
            prefix: prefix.to_vec(),
            skip: self.skip,
        };
        batch.put(Space::Meta, blob_key(self.id), encode(&record));
        if self.marked {
            batch.delete(Space::Meta, pending_key(self.id));
        }
        record
    }
}

impl Drop for BlobWriter {
    /// A writer given up removes the chunks it committed (in the
    /// background; without a runtime the next start sweeps them).
    fn drop(&mut self) {
        if self.committed || !self.marked {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, id, chunks) = (self.store.clone(), self.id, self.chunks);
            runtime.spawn(async move {
                if let Err(e) = store.remove_unfinished(id, Some(chunks)).await {
                    tracing::warn!(blob = id, "removing an unfinished message body: {e}");
                }
            });
        }
    }
}

impl Store {
    /// Starts a new blob; `id` is usually the queue id of the message.
    /// Nothing is written before the first chunk fills.
    pub fn blob_writer(&self, id: BlobId) -> BlobWriter {
        BlobWriter {
            store: self.clone(),
            id,
            buf: Arc::new(Vec::with_capacity(CHUNK_SIZE)),
            chunks: 0,
            size: 0,
            skip: 0,
            marked: false,
            committed: false,
        }
    }

    pub async fn blob(&self, id: BlobId) -> Result<BlobRecord, StoreError> {
        match self.inner.backend.get(Space::Meta, &blob_key(id)).await? {
            Some(v) => decode("blob", &v),
            None => Err(StoreError::MissingBlob(id)),
        }
    }

    /// The pieces of a message in order: its prefix, then each chunk.
    pub async fn blob_parts(&self, id: BlobId) -> Result<BlobParts, StoreError> {
        let record = self.blob(id).await?;
        Ok(BlobParts {
            store: self.clone(),
            id,
            next: 0,
            chunks: record.chunks,
            prefix: Some(record.prefix),
            skip: record.skip,
        })
    }

    /// The whole message in memory (for small messages and tests).
    pub async fn read_blob(&self, id: BlobId) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        let mut parts = self.blob_parts(id).await?;
        while let Some(part) = parts.next_part().await {
            out.extend_from_slice(&part?);
        }
        Ok(out)
    }

    /// Up to `len` bytes of blob `id`'s chunks from `offset` (the prefix not
    /// included), committed or still being written; fewer at the end.
    pub async fn read_chunks(
        &self,
        id: BlobId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(len.min(CHUNK_SIZE));
        let Ok(mut n) = u32::try_from(offset / CHUNK_SIZE as u64) else {
            return Ok(out);
        };
        let mut skip = (offset % CHUNK_SIZE as u64) as usize;
        while out.len() < len {
            let key = chunk_key(id, n);
            let Some(chunk) = self.inner.backend.get(Space::Blobs, &key).await? else {
                break;
            };
            if skip >= chunk.len() {
                break;
            }
            let take = (chunk.len() - skip).min(len - out.len());
            out.extend_from_slice(&chunk[skip..skip + take]);
            skip = 0;
            n += 1;
        }
        Ok(out)
    }

    /// Removes an uncommitted blob's chunks (the first `chunks`, or every
    /// chunk of its id when unknown) and its `p/` mark, unless a record
    /// shows it committed after all (then only the mark goes).
    pub(super) async fn remove_unfinished(
        &self,
        id: BlobId,
        chunks: Option<u32>,
    ) -> Result<(), StoreError> {
        let backend = &self.inner.backend;
        let mut batch = Batch::new();
        batch.require(Space::Meta, blob_key(id), None);
        batch.delete(Space::Meta, pending_key(id));
        match chunks {
            Some(chunks) => {
                for n in 0..chunks {
                    batch.delete(Space::Blobs, chunk_key(id, n).to_vec());
                }
            }
            None => {
                let range =
                    KeyRange::between(&chunk_key(id, 0), &chunk_key(id.saturating_add(1), 0));
                for (key, _) in backend.scan(Space::Blobs, &range, ScanOrder::ALL).await? {
                    batch.delete(Space::Blobs, key);
                }
            }
        }
        match backend.commit(batch).await {
            // The record is there (only a condition conflicts): committed
            // after all, so only the mark can be left.
            Err(super::backend::BackendError::Conflict) => {
                let mut batch = Batch::new();
                batch.delete(Space::Meta, pending_key(id));
                Ok(backend.commit(batch).await?)
            }
            other => Ok(other?),
        }
    }

    /// Removes blobs left by writers that never committed.
    pub(super) async fn discard_unfinished_blobs(&self) -> Result<(), StoreError> {
        let marks = self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(b"p/"), ScanOrder::ALL)
            .await?;
        for (key, _) in marks {
            match <[u8; 8]>::try_from(&key[2..]) {
                Ok(id) => self.remove_unfinished(u64::from_be_bytes(id), None).await?,
                Err(_) => {
                    let mut batch = Batch::new();
                    batch.delete(Space::Meta, key);
                    self.inner.backend.commit(batch).await?;
                }
            }
        }
        Ok(())
    }
}

/// A message's bytes in pieces: the prefix, then the chunks
/// (`next_part`), one chunk in memory at a time.
pub struct BlobParts {
    store: Store,
    id: BlobId,
    next: u32,
    chunks: u32,
    prefix: Option<Vec<u8>>,
    /// Bytes of the chunks still to leave out (`BlobRecord::skip`).
    skip: u64,
}

impl BlobParts {
    /// The next piece, None after the last.
    pub async fn next_part(&mut self) -> Option<Result<Vec<u8>, StoreError>> {
        if let Some(p) = self.prefix.take()
            && !p.is_empty()
        {
            return Some(Ok(p));
        }
        loop {
            if self.next >= self.chunks {
                return None;
            }
            let key = chunk_key(self.id, self.next);
            self.next += 1;
            let chunk = match self.store.inner.backend.get(Space::Blobs, &key).await {
                Ok(Some(v)) => v,
                Ok(None) => return Some(Err(StoreError::MissingBlob(self.id))),
                Err(e) => return Some(Err(e.into())),
            };
            let left_out = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            self.skip -= left_out as u64;
            if left_out < chunk.len() {
                return Some(Ok(chunk[left_out..].to_vec()));
            }
        }
    }
}

type NextPart =
    Pin<Box<dyn Future<Output = (BlobParts, Option<Result<Vec<u8>, StoreError>>)> + Send>>;

/// A message as an async byte stream (for the SMTP client), one chunk in
/// memory at a time.
pub struct BlobReader {
    parts: Option<BlobParts>,
    reading: Option<NextPart>,
    current: Vec<u8>,
    pos: usize,
}

impl BlobReader {
    pub fn new(parts: BlobParts) -> BlobReader {
        BlobReader {
            parts: Some(parts),
            reading: None,
            current: Vec::new(),
            pos: 0,
        }
    }
}

impl tokio::io::AsyncRead for BlobReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = self.get_mut();
        while this.pos >= this.current.len() {
            if this.reading.is_none() {
                let Some(mut parts) = this.parts.take() else {
                    return Poll::Ready(Ok(()));
                };
                this.reading = Some(Box::pin(async move {
                    let part = parts.next_part().await;
                    (parts, part)
                }));
            }
            let Some(reading) = this.reading.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let (parts, part) = match reading.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(done) => done,
            };
            this.reading = None;
            match part {
                None => return Poll::Ready(Ok(())),
                Some(Ok(chunk)) => {
                    this.parts = Some(parts);
                    this.current = chunk;
                    this.pos = 0;
                }
                Some(Err(e)) => return Poll::Ready(Err(std::io::Error::other(e))),
            }
        }
        let n = buf.remaining().min(this.current.len() - this.pos);
        buf.put_slice(&this.current[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}
