//! Moving an installation from one engine to another (`tern store
//! migrate`): every key of every space is copied in key order, in write
//! sets of bounded size, into an empty destination; the destination's ids
//! are moved past the source's; then both sides are read again and compared
//! space by space — key count, byte count and a BLAKE2b checksum over every
//! key and value in order. Because everything that means mail is written
//! above the seam in the same keys on every engine, a verified copy is a
//! working store. The source is only read; it must not be in use.

use super::{Backend, BackendError, Batch, KeyRange, KeyValues, ScanOrder, Space, after};
use blake2::{Blake2b512, Digest};

/// Keys read per scan and written per write set.
pub(crate) const PAGE: usize = 500;
/// Bytes per write set at most (message chunks are 64 KiB).
pub(crate) const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What one space holds, as compared after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceSummary {
    pub space: Space,
    pub keys: u64,
    pub bytes: u64,
    /// BLAKE2b-512 of every (key length, key, value length, value) in order.
    pub checksum: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("the destination is not empty: its {0:?} space already has keys")]
    DestinationNotEmpty(Space),
    #[error(
        "the copy does not match the source in the {space:?} space: \
         source {source_keys} keys / {source_bytes} bytes, copy {copy_keys} keys / {copy_bytes} bytes"
    )]
    Mismatch {
        space: Space,
        source_keys: u64,
        source_bytes: u64,
        copy_keys: u64,
        copy_bytes: u64,
    },
}

/// Copies `from` into the empty `to` and verifies the copy; returns the
/// summary of each space (equal on both sides).
pub async fn migrate(from: &Backend, to: &Backend) -> Result<Vec<SpaceSummary>, MigrateError> {
    ensure_empty(to).await?;
    for space in Space::ALL {
        copy_space(from, to, space).await?;
    }
    let last_id = from.next_id().await?;
    to.ensure_ids_above(last_id).await?;
    to.sync().await?;
    let mut summaries = Vec::new();
    for space in Space::ALL {
        let source = summarize(from, space).await?;
        let copy = summarize(to, space).await?;
        if source != copy {
            return Err(MigrateError::Mismatch {
                space,
                source_keys: source.keys,
                source_bytes: source.bytes,
                copy_keys: copy.keys,
                copy_bytes: copy.bytes,
            });
        }
        summaries.push(source);
    }
    Ok(summaries)
}

/// Refuses a destination that holds any key.
pub(crate) async fn ensure_empty(to: &Backend) -> Result<(), MigrateError> {
    for space in Space::ALL {
        let first = ScanOrder {
            reverse: false,
            limit: Some(1),
        };
        if !to
            .scan(space, &KeyRange::prefix(b""), first)
            .await?
            .is_empty()
        {
            return Err(MigrateError::DestinationNotEmpty(space));
        }
    }
    Ok(())
}

/// Reads a whole space in key order, a page at a time, handing each page
/// to `visit`.
async fn for_each_page(
    backend: &Backend,
    space: Space,
    mut visit: impl AsyncFnMut(KeyValues) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    let mut range = KeyRange::prefix(b"");
    let order = ScanOrder {
        reverse: false,
        limit: Some(PAGE),
    };
    loop {
        let page = backend.scan(space, &range, order).await?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        range.start = after(last);
        visit(page).await?;
    }
}

async fn copy_space(from: &Backend, to: &Backend, space: Space) -> Result<(), BackendError> {
    for_each_page(from, space, async |page| {
        let mut batch = Batch::new();
        let mut bytes = 0;
        for (key, value) in page {
            bytes += key.len() + value.len();
            batch.put(space, key, value);
            if bytes >= MAX_BATCH_BYTES {
                to.commit(std::mem::take(&mut batch)).await?;
                bytes = 0;
            }
        }
        to.commit(batch).await
    })
    .await
}

/// Counts and checksums one space, reading it in pages.
pub async fn summarize(backend: &Backend, space: Space) -> Result<SpaceSummary, BackendError> {
    let mut tally = Tally::default();
    for_each_page(backend, space, async |page| {
        for (key, value) in &page {
            tally.add(key, value);
        }
        Ok(())
    })
    .await?;
    Ok(tally.finish(space))
}

/// The running count and checksum of a space read in key order.
#[derive(Default)]
pub(crate) struct Tally {
    hash: Blake2b512,
    keys: u64,
    bytes: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        self.hash.update((key.len() as u64).to_be_bytes());
        self.hash.update(key);
        self.hash.update((value.len() as u64).to_be_bytes());
        self.hash.update(value);
        self.keys += 1;
        self.bytes += (key.len() + value.len()) as u64;
    }

    pub(crate) fn finish(self, space: Space) -> SpaceSummary {
        let checksum = self
            .hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        SpaceSummary {
            space,
            keys: self.keys,
            bytes: self.bytes,
            checksum,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fill(engine: &Backend) {
        for i in 0..1200u32 {
            let mut batch = Batch::new();
            batch.put(
                Space::Meta,
                format!("m/user\0INBOX\0{i:08}").into_bytes(),
                i.to_be_bytes().to_vec(),
            );
            let mut chunk = (i as u64).to_be_bytes().to_vec();
            chunk.extend_from_slice(&0u32.to_be_bytes());
            batch.put(
                Space::Blobs,
                chunk,
                vec![(i % 251) as u8; 1000 + i as usize],
            );
            engine.commit(batch).await.unwrap();
        }
        for _ in 0..10 {
            engine.next_id().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_to_postgres_and_back_is_verified_and_ids_move_on() {
        let server = crate::testing::postgres::PrivatePostgres::start();
        let dir = tempfile::tempdir().unwrap();
        let sled = Backend::open_sled(&dir.path().join("a")).unwrap();
        fill(&sled).await;
        let source_id = sled.next_id().await.unwrap();
        let pg = server.engine(|_| {}).await;
        let summaries = migrate(&sled, &pg).await.unwrap();
        assert_eq!(summaries[0].keys, 1200, "meta keys");
        assert_eq!(summaries[1].keys, 1200, "blob chunks");
        assert!(
            pg.next_id().await.unwrap() > source_id,
            "ids continue past the source's"
        );
        // A second run into the now full destination is refused.
        assert!(matches!(
            migrate(&sled, &pg).await,
            Err(MigrateError::DestinationNotEmpty(Space::Meta))
        ));
        // And back into an empty sled.
        let back = Backend::open_sled(&dir.path().join("b")).unwrap();
        let again = migrate(&pg, &back).await.unwrap();
        assert_eq!(again, summaries, "the same keys, bytes and checksums");
        let pg_id = pg.next_id().await.unwrap();
        assert!(
            back.next_id().await.unwrap() > pg_id,
            "ids continue past the source's"
        );
    }

    #[tokio::test]
    async fn a_changed_value_changes_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let a = Backend::open_sled(&dir.path().join("a")).unwrap();
        let b = Backend::open_sled(&dir.path().join("b")).unwrap();
        for (engine, value) in [(&a, b"one".as_slice()), (&b, b"two".as_slice())] {
            let mut batch = Batch::new();
            batch.put(Space::Meta, b"k".to_vec(), value.to_vec());
            engine.commit(batch).await.unwrap();
        }
        let (sa, sb) = (
            summarize(&a, Space::Meta).await.unwrap(),
            summarize(&b, Space::Meta).await.unwrap(),
        );
        assert_eq!((sa.keys, sa.bytes), (sb.keys, sb.bytes));
        assert_ne!(sa.checksum, sb.checksum);
    }
}
