//! Message bodies, kept in 64 KiB chunks so that a large message is never
//! held whole in memory: the SMTP reader streams into a `BlobWriter`, and
//! readers walk the chunks. A blob has a reference count (one per mailbox
//! copy and one while the queue holds it) and is deleted at zero. Blobs whose
//! writer never committed (a crash mid-DATA) are removed at the next start.

use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

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

fn pending_key(id: BlobId) -> Vec<u8> {
    let mut k = b"p/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn chunk_key(id: BlobId, n: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

/// Streams one message body into the store. Dropped without `commit`, it
/// removes what it wrote.
pub struct BlobWriter {
    store: Store,
    id: BlobId,
    buf: Vec<u8>,
    chunks: u32,
    size: u64,
    skip: u64,
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

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        self.size += data.len() as u64;
        while !data.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.spill()?;
            }
        }
        Ok(())
    }

    /// Everything written so far in one buffer: the chunks already in the
    /// store, then the part still buffered. One copy of the message, for
    /// checks that need it whole (DKIM verification and signing).
    pub fn contents(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(self.size as usize);
        for n in 0..self.chunks {
            match self.store.inner.blobs.get(chunk_key(self.id, n))? {
                Some(v) => out.extend_from_slice(&v),
                None => return Err(StoreError::MissingBlob(self.id)),
            }
        }
        out.extend_from_slice(&self.buf);
        Ok(out)
    }

    /// Overwrites `bytes.len()` bytes at `offset` with `bytes` (the length
    /// never changes, so chunk boundaries and sizes stay as they are).
    pub fn patch(&mut self, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        if offset + bytes.len() as u64 > self.size {
            return Ok(());
        }
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
                self.buf[pos..pos + run].copy_from_slice(part);
            } else {
                let key = chunk_key(self.id, n);
                let Some(v) = self.store.inner.blobs.get(key)? else {
                    return Err(StoreError::MissingBlob(self.id));
                };
                let mut v = v.to_vec();
                v[pos..pos + run].copy_from_slice(part);
                self.store.inner.blobs.insert(key, v)?;
            }
            done += run;
        }
        Ok(())
    }

    /// Writes the partly filled chunk, so that `Store::read_chunks` sees
    /// every byte written so far (the data hooks read a message before it
    /// is committed). Nothing may be written after it but `finish`.
    pub fn flush_pending(&mut self) -> Result<(), StoreError> {
        self.spill()
    }

    fn spill(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        self.store
            .inner
            .blobs
            .insert(chunk_key(self.id, self.chunks), chunk)?;
        self.chunks += 1;
        Ok(())
    }

    /// Writes the last chunk and returns the record to commit with `refs`
    /// references; the caller puts it in the same batch as whatever refers to it.
    pub(super) fn finish(
        mut self,
        prefix: Vec<u8>,
        refs: u32,
        batch: &mut sled::Batch,
    ) -> Result<BlobRecord, StoreError> {
        self.spill()?;
        self.committed = true;
        let record = BlobRecord {
            size: self.size - self.skip + prefix.len() as u64,
            chunks: self.chunks,
            refs,
            prefix,
            skip: self.skip,
        };
        batch.insert(blob_key(self.id), encode(&record));
        batch.remove(pending_key(self.id));
        Ok(record)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.store.remove_chunks(self.id, self.chunks);
            let _ = self.store.inner.meta.remove(pending_key(self.id));
        }
    }
}

impl Store {
    /// Starts a new blob; `id` is usually the queue id of the message.
    pub fn blob_writer(&self, id: BlobId) -> Result<BlobWriter, StoreError> {
        self.inner.meta.insert(pending_key(id), &[])?;
        Ok(BlobWriter {
            store: self.clone(),
            id,
            buf: Vec::with_capacity(CHUNK_SIZE),
            chunks: 0,
            size: 0,
            skip: 0,
            committed: false,
        })
    }

    pub fn blob(&self, id: BlobId) -> Result<BlobRecord, StoreError> {
        match self.inner.meta.get(blob_key(id))? {
            Some(v) => decode("blob", &v),
            None => Err(StoreError::MissingBlob(id)),
        }
    }

    /// The pieces of a message in order: its prefix, then each chunk.
    pub fn blob_parts(&self, id: BlobId) -> Result<BlobParts, StoreError> {
        let record = self.blob(id)?;
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
    pub fn read_blob(&self, id: BlobId) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        for part in self.blob_parts(id)? {
            out.extend_from_slice(&part?);
        }
        Ok(out)
    }

    /// Up to `len` bytes of blob `id`'s chunks from `offset` (the prefix not
    /// included), committed or still being written; fewer at the end.
    pub fn read_chunks(&self, id: BlobId, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(len.min(CHUNK_SIZE));
        let Ok(mut n) = u32::try_from(offset / CHUNK_SIZE as u64) else {
            return Ok(out);
        };
        let mut skip = (offset % CHUNK_SIZE as u64) as usize;
        while out.len() < len {
            let Some(chunk) = self.inner.blobs.get(chunk_key(id, n))? else {
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

    /// Adds `delta` references in `batch` (called under the write lock).
    pub(super) fn adjust_refs(
        &self,
        id: BlobId,
        delta: i64,
        batch: &mut sled::Batch,
    ) -> Result<bool, StoreError> {
        let mut record = self.blob(id)?;
        let refs = (i64::from(record.refs) + delta).max(0);
        if refs == 0 {
            batch.remove(blob_key(id));
            return Ok(true);
        }
        record.refs = refs as u32;
        batch.insert(blob_key(id), encode(&record));
        Ok(false)
    }

    pub(super) fn remove_chunks(&self, id: BlobId, chunks: u32) -> Result<(), StoreError> {
        for n in 0..chunks.max(1) {
            self.inner.blobs.remove(chunk_key(id, n))?;
        }
        // Chunks written past what the caller knew of (a crash): sweep the id's range.
        for key in self
            .inner
            .blobs
            .range(chunk_key(id, 0)..=chunk_key(id, u32::MAX))
            .keys()
        {
            self.inner.blobs.remove(key?)?;
        }
        Ok(())
    }

    /// Removes blobs left by writers that never committed.
    pub(super) fn discard_unfinished_blobs(&self) -> Result<(), StoreError> {
        for key in self.inner.meta.scan_prefix(b"p/").keys() {
            let key = key?;
            if key.len() == 10 {
                let mut id = [0u8; 8];
                id.copy_from_slice(&key[2..]);
                let id = u64::from_be_bytes(id);
                if self.inner.meta.get(blob_key(id))?.is_none() {
                    self.remove_chunks(id, 0)?;
                }
            }
            self.inner.meta.remove(key)?;
        }
        Ok(())
    }
}

/// Iterator over a message's bytes: prefix, then chunks.
pub struct BlobParts {
    store: Store,
    id: BlobId,
    next: u32,
    chunks: u32,
    prefix: Option<Vec<u8>>,
    /// Bytes of the chunks still to leave out (`BlobRecord::skip`).
    skip: u64,
}

impl Iterator for BlobParts {
    type Item = Result<Vec<u8>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
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
            let chunk = match self.store.inner.blobs.get(key) {
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

/// A message as an async byte stream (for the SMTP client), one chunk in
/// memory at a time.
pub struct BlobReader {
    parts: BlobParts,
    current: Vec<u8>,
    pos: usize,
}

impl BlobReader {
    pub fn new(parts: BlobParts) -> BlobReader {
        BlobReader {
            parts,
            current: Vec::new(),
            pos: 0,
        }
    }
}

impl tokio::io::AsyncRead for BlobReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while this.pos >= this.current.len() {
            match this.parts.next() {
                None => return std::task::Poll::Ready(Ok(())),
                Some(Ok(chunk)) => {
                    this.current = chunk;
                    this.pos = 0;
                }
                Some(Err(e)) => return std::task::Poll::Ready(Err(std::io::Error::other(e))),
            }
        }
        let n = buf.remaining().min(this.current.len() - this.pos);
        buf.put_slice(&this.current[this.pos..this.pos + n]);
        this.pos += n;
        std::task::Poll::Ready(Ok(()))
    }
}
