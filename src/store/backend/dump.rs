//! `tern backup` and `tern restore`: a whole store written to a folder and
//! read back into an empty one, on either engine.
//!
//! A backup reads a [`Snapshot`](super::Snapshot), so it is the store at
//! one moment even while mail keeps flowing: every write set committed
//! before it began (every message a client got its 250 for) is in it whole,
//! none committed after is in it at all. The folder holds one file per
//! space (`meta.kv`, `blobs.kv`: records of a 4-byte big-endian key length,
//! the key, a 4-byte value length, the value, in key order) and
//! `manifest.json`, written last: the format, when, from which engine, an
//! id above every id the store had handed out, and per space the count of
//! keys and bytes and the BLAKE2b checksum `tern store migrate` computes.
//! The files are engine-neutral (a sled backup restores into PostgreSQL and
//! back) and need no engine to be read, so a backup on read-only media
//! restores as it is.
//!
//! A restore checks the files against the manifest before it writes
//! anything, refuses a destination holding any key, loads the keys in
//! bounded write sets, moves the id generator past the manifest's id, makes
//! it durable, and checks the destination against the manifest again.

use super::migrate::{self, MAX_BATCH_BYTES, MigrateError, SpaceSummary, Tally};
use super::{Backend, BackendError, Batch, KeyRange, Space};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub mod stream;

const FORMAT: &str = "tern-backup";
const VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";

/// What `manifest.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// When the snapshot was taken (Unix seconds).
    pub created: i64,
    /// The engine it was read from ("sled", "postgres").
    pub engine: String,
    /// Larger than every id the source had handed out.
    pub next_id: u64,
    pub spaces: Vec<SpaceEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceEntry {
    /// The space's name (`meta`, `blobs`).
    pub space: String,
    pub file: String,
    pub keys: u64,
    pub bytes: u64,
    pub checksum: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
    #[error("{0}: not a Tern backup, or damaged: {1}")]
    Damaged(PathBuf, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DumpError + '_ {
    move |source| DumpError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl SpaceEntry {
    fn from_summary(s: SpaceSummary) -> SpaceEntry {
        SpaceEntry {
            space: s.space.name().to_string(),
            file: format!("{}.kv", s.space.name()),
            keys: s.keys,
            bytes: s.bytes,
            checksum: s.checksum,
        }
    }
}

/// Writes a snapshot of `backend` into `dir` (absent or empty; made
/// owner-only) and returns its manifest.
pub async fn backup(backend: &Backend, dir: &Path) -> Result<Manifest, DumpError> {
    let mut sink = DirSink::create(dir)?;
    snapshot_into(backend, &mut sink).await
}

/// Where the records of a backup go, space by space, in key order.
pub trait Sink {
    fn space(&mut self, space: Space) -> impl Future<Output = Result<(), DumpError>> + Send;
    fn record(
        &mut self,
        key: &[u8],
        value: &[u8],
    ) -> impl Future<Output = Result<(), DumpError>> + Send;
    /// The snapshot is read whole; `manifest` describes it.
    fn finish(&mut self, manifest: &Manifest)
    -> impl Future<Output = Result<(), DumpError>> + Send;
}

/// Reads a snapshot of `backend` into `sink`; returns its manifest.
pub async fn snapshot_into(backend: &Backend, sink: &mut impl Sink) -> Result<Manifest, DumpError> {
    let created = crate::store::now();
    let snapshot = backend.snapshot().await?;
    let mut spaces = Vec::new();
    for space in Space::ALL {
        sink.space(space).await?;
        let mut tally = Tally::default();
        let mut range = KeyRange::prefix(b"");
        loop {
            let (page, next) = snapshot.page(space, &range, migrate::PAGE).await?;
            for (key, value) in &page {
                sink.record(key, value).await?;
                tally.add(key, value);
            }
            match next {
                Some(start) => range.start = start,
                None => break,
            }
        }
        spaces.push(SpaceEntry::from_summary(tally.finish(space)));
    }
    snapshot.end().await?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created,
        engine: backend.engine_name().into(),
        next_id: backend.next_id().await?,
        spaces,
    };
    sink.finish(&manifest).await?;
    Ok(manifest)
}

/// A backup folder being written: one file per space, the manifest last,
/// after every file was read back and matched what the source summed up.
pub struct DirSink {
    dir: PathBuf,
    current: Option<(Space, PathBuf, BufWriter<std::fs::File>, Tally)>,
    written: Vec<SpaceEntry>,
}

impl DirSink {
    /// Refuses a `dir` that exists and is not empty; makes it owner-only.
    pub fn create(dir: &Path) -> Result<DirSink, DumpError> {
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
            if entries.next().is_some() {
                return Err(DumpError::Refused(format!(
                    "{} is not empty: back up into a new folder",
                    dir.display()
                )));
            }
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        Ok(DirSink {
            dir: dir.to_path_buf(),
            current: None,
            written: Vec::new(),
        })
    }

    fn close_space(&mut self) -> Result<(), DumpError> {
        if let Some((space, path, out, tally)) = self.current.take() {
            let file = out.into_inner().map_err(|e| io(&path)(e.into_error()))?;
            file.sync_all().map_err(io(&path))?;
            self.written
                .push(SpaceEntry::from_summary(tally.finish(space)));
        }
        Ok(())
    }
}

impl Sink for DirSink {
    async fn space(&mut self, space: Space) -> Result<(), DumpError> {
        self.close_space()?;
        let path = self.dir.join(format!("{}.kv", space.name()));
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        self.current = Some((space, path, out, Tally::default()));
        Ok(())
    }

    async fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), DumpError> {
        let Some((_, path, out, tally)) = &mut self.current else {
            return Err(DumpError::Refused("a record before its space".into()));
        };
        write_record(out, key, value).map_err(io(path))?;
        tally.add(key, value);
        Ok(())
    }

    async fn finish(&mut self, manifest: &Manifest) -> Result<(), DumpError> {
        self.close_space()?;
        if self.written != manifest.spaces {
            return Err(DumpError::Damaged(
                self.dir.clone(),
                "what arrived differs from what the store sent".into(),
            ));
        }
        // Read back what was written before calling it a backup.
        for entry in &manifest.spaces {
            check_file(&self.dir, entry)?;
        }
        let dir = &self.dir;
        let text = serde_json::to_vec_pretty(manifest)
            .map_err(|e| DumpError::Refused(format!("manifest: {e}")))?;
        let tmp = dir.join("manifest.json.part");
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&text).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        let path = dir.join(MANIFEST);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    }
}

/// Reads and checks the backup in `dir` (manifest and every file).
pub fn verify(dir: &Path) -> Result<Manifest, DumpError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| DumpError::Damaged(path.clone(), e.to_string()))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(DumpError::Damaged(
            path,
            format!(
                "format {} version {} (this tern reads {FORMAT} version {VERSION})",
                manifest.format, manifest.version
            ),
        ));
    }
    for space in Space::ALL {
        let Some(entry) = manifest.spaces.iter().find(|e| e.space == space.name()) else {
            return Err(DumpError::Damaged(
                path,
                format!("no {} space", space.name()),
            ));
        };
        check_file(dir, entry)?;
    }
    Ok(manifest)
}

/// A checked backup with its files open (so that a restore run as root
/// can open them before it becomes the server's account).
pub struct Opened {
    pub manifest: Manifest,
    dir: PathBuf,
    files: Vec<(Space, std::fs::File)>,
}

/// Checks the backup in `dir` and opens its files.
pub fn open(dir: &Path) -> Result<Opened, DumpError> {
    let manifest = verify(dir)?;
    let mut files = Vec::new();
    for space in Space::ALL {
        let path = dir.join(&entry_for(&manifest, space).file);
        files.push((space, std::fs::File::open(&path).map_err(io(&path))?));
    }
    Ok(Opened {
        manifest,
        dir: dir.to_path_buf(),
        files,
    })
}

/// Loads the backup in `dir` into the empty `backend` and checks the result.
pub async fn restore(dir: &Path, backend: &Backend) -> Result<Manifest, DumpError> {
    restore_opened(open(dir)?, backend).await
}

/// Loads an opened backup into the empty `backend` and checks the result.
pub async fn restore_opened(opened: Opened, backend: &Backend) -> Result<Manifest, DumpError> {
    let Opened {
        manifest,
        dir,
        files,
    } = opened;
    migrate::ensure_empty(backend).await?;
    for (space, file) in files {
        let path = dir.join(&entry_for(&manifest, space).file);
        let mut batch = Batch::new();
        let mut bytes = 0;
        let mut load = |key: Vec<u8>, value: Vec<u8>| {
            bytes += key.len() + value.len();
            batch.put(space, key, value);
            if bytes >= MAX_BATCH_BYTES || batch.len() >= migrate::PAGE {
                bytes = 0;
                Some(std::mem::take(&mut batch))
            } else {
                None
            }
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        while let Some((key, value)) = read_record(&mut reader).map_err(io(&path))? {
            if let Some(full) = load(key, value) {
                backend.commit(full).await?;
            }
        }
        backend.commit(batch).await?;
    }
    backend.ensure_ids_above(manifest.next_id).await?;
    backend.sync().await?;
    for space in Space::ALL {
        let entry = entry_for(&manifest, space);
        let copy = migrate::summarize(backend, space).await?;
        if SpaceEntry::from_summary(copy.clone()) != *entry {
            return Err(MigrateError::Mismatch {
                space,
                source_keys: entry.keys,
                source_bytes: entry.bytes,
                copy_keys: copy.keys,
                copy_bytes: copy.bytes,
            }
            .into());
        }
    }
    Ok(manifest)
}

fn entry_for(manifest: &Manifest, space: Space) -> &SpaceEntry {
    // verify() made sure every space has its entry.
    manifest
        .spaces
        .iter()
        .find(|e| e.space == space.name())
        .unwrap_or(&manifest.spaces[0])
}

/// Reads one space's file through, comparing it with its entry.
fn check_file(dir: &Path, entry: &SpaceEntry) -> Result<(), DumpError> {
    if entry.file.contains('/') || entry.file.starts_with('.') {
        return Err(DumpError::Damaged(
            dir.join(MANIFEST),
            "bad file name".into(),
        ));
    }
    let path = dir.join(&entry.file);
    let mut reader = open_records(&path)?;
    let mut tally = Tally::default();
    let mut previous: Option<Vec<u8>> = None;
    while let Some((key, value)) = read_record(&mut reader).map_err(io(&path))? {
        if previous.as_ref().is_some_and(|p| *p >= key) {
            return Err(DumpError::Damaged(path, "keys out of order".into()));
        }
        tally.add(&key, &value);
        previous = Some(key);
    }
    let found = SpaceEntry::from_summary(tally.finish(Space::Meta));
    if (found.keys, found.bytes, &found.checksum) != (entry.keys, entry.bytes, &entry.checksum) {
        return Err(DumpError::Damaged(
            path,
            format!(
                "{} keys / {} bytes, the manifest says {} / {} (or the checksum differs)",
                found.keys, found.bytes, entry.keys, entry.bytes
            ),
        ));
    }
    Ok(())
}

fn open_records(path: &Path) -> Result<BufReader<std::fs::File>, DumpError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

pub(crate) fn write_record(out: &mut impl Write, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    for part in [key, value] {
        let len = u32::try_from(part.len()).map_err(std::io::Error::other)?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(part)?;
    }
    Ok(())
}

/// The next (key, value), or None at a clean end of the file.
fn read_record(input: &mut impl Read) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let key = read_exact_vec(input, u32::from_be_bytes(len))?;
    input.read_exact(&mut len)?;
    let value = read_exact_vec(input, u32::from_be_bytes(len))?;
    Ok(Some((key, value)))
}

pub(crate) fn read_exact_vec(input: &mut impl Read, len: u32) -> std::io::Result<Vec<u8>> {
    // Values are at most a chunk (64 KiB) in practice; refuse absurd ones.
    if len > 64 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a record of {len} bytes"),
        ));
    }
    let mut buf = vec![0; len as usize];
    input.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::ScanOrder;

    /// Write set `n`: g = n, k/n added, k/(n-5) deleted, and a 64 KiB blob
    /// chunk; so at any moment g names the five k/ keys there are.
    fn step(n: u64) -> Batch {
        let mut b = Batch::new();
        b.put(Space::Meta, b"g".to_vec(), n.to_be_bytes().to_vec());
        b.put(Space::Meta, format!("k/{n:08}"), n.to_be_bytes().to_vec());
        if n >= 5 {
            b.delete(Space::Meta, format!("k/{:08}", n - 5));
        }
        b.put(Space::Blobs, n.to_be_bytes().to_vec(), vec![n as u8; 65536]);
        b
    }

    /// Backs `engine` up while a writer keeps committing, restores into
    /// `target`, and finds exactly the state of one moment.
    async fn backup_under_writes_restores_one_moment(engine: Backend, target: Backend) {
        for n in 0..300 {
            engine.commit(step(n)).await.unwrap();
        }
        let writer_engine = engine.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let writer = tokio::spawn(async move {
            let mut n = 300;
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                writer_engine.commit(step(n)).await.unwrap();
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        });
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("backup");
        let manifest = backup(&engine, &out).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let written = writer.await.unwrap();
        assert!(written > 300, "the writer ran during the backup");
        // A second backup into the same folder is refused.
        assert!(matches!(
            backup(&engine, &out).await,
            Err(DumpError::Refused(_))
        ));
        restore(&out, &target).await.unwrap();
        let all = KeyRange::prefix(b"");
        let meta = target
            .scan(Space::Meta, &all, ScanOrder::ALL)
            .await
            .unwrap();
        let g = u64::from_be_bytes(meta[0].1.clone().try_into().unwrap());
        let keys: Vec<String> = meta[1..]
            .iter()
            .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
            .collect();
        let expected: Vec<String> = (g - 4..=g).map(|n| format!("k/{n:08}")).collect();
        assert_eq!(keys, expected, "the k/ keys of moment g={g}");
        let blobs = target
            .scan(Space::Blobs, &all, ScanOrder::ALL)
            .await
            .unwrap();
        assert_eq!(blobs.len() as u64, g + 1, "blob chunks 0..=g");
        assert!(target.next_id().await.unwrap() > manifest.next_id);
        // Into a store that is not empty: refused.
        assert!(matches!(
            restore(&out, &target).await,
            Err(DumpError::Migrate(MigrateError::DestinationNotEmpty(_)))
        ));
        // A damaged file is found before anything is written.
        let path = out.join("meta.kv");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(verify(&out), Err(DumpError::Damaged(..))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sled_backup_under_writes_is_one_moment() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Backend::open_sled(&dir.path().join("live")).unwrap();
        let target = Backend::open_sled(&dir.path().join("restored")).unwrap();
        backup_under_writes_restores_one_moment(engine, target).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_backup_under_writes_is_one_moment_and_restores_into_sled() {
        let server = crate::testing::postgres::PrivatePostgres::start();
        let engine = server.engine(|_| {}).await;
        let dir = tempfile::tempdir().unwrap();
        let target = Backend::open_sled(dir.path()).unwrap();
        backup_under_writes_restores_one_moment(engine, target).await;
    }
}
