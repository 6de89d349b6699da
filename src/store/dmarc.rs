//! DMARC evaluations kept for aggregate reports (RFC 7489 section 7.2),
//! grouped by report window and From domain. Under `d/` in `meta`:
//!
//! - `d/<window: u64 BE><domain>\0p`: the policy the domain published (the
//!   last one seen in the window), with its `rua` addresses;
//! - `d/<window: u64 BE><domain>\0r<row hash>`: one distinct row (source IP,
//!   identifiers, results, disposition) and how many messages it had.
//!
//! `d#` counts the rows; past the configured bound new rows are refused
//! (a repeat of a known row still counts up), so a flood of distinct
//! sources cannot grow the store without limit. Written over the storage
//! seam (`backend/`) with conditional write sets, like the plugins'
//! key-value areas, and like them not synced one by one: a report is no
//! promise made to a client.

use super::backend::{BackendError, Batch, KeyRange, ScanOrder, Space, retry};
use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

/// The policy a domain published, as a report states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcPublished {
    /// The RFC5322.From domain the policy applied to.
    pub domain: String,
    /// "r" or "s".
    pub adkim: String,
    pub aspf: String,
    /// "none", "quarantine" or "reject".
    pub p: String,
    pub sp: String,
    pub pct: u8,
    pub fo: String,
    /// `mailto:` addresses of `rua=`, as published.
    pub rua: Vec<String>,
}

/// One DKIM signature's result, uninterpreted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DmarcDkimResult {
    pub domain: String,
    pub selector: String,
    pub result: String,
}

/// One evaluated message, as a report row counts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DmarcRow {
    pub source_ip: String,
    pub header_from: String,
    pub envelope_from: String,
    /// "none", "quarantine" or "reject": what was done.
    pub disposition: String,
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    pub spf_domain: String,
    pub spf_result: String,
    pub dkim: Vec<DmarcDkimResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRow {
    count: u64,
    row: DmarcRow,
}

/// Everything kept for one domain in one window.
#[derive(Debug, Clone)]
pub struct DmarcWindow {
    /// Unix seconds of the window's start.
    pub start: u64,
    pub domain: String,
    pub policy: DmarcPublished,
    /// Distinct rows with their message counts.
    pub rows: Vec<(DmarcRow, u64)>,
}

const COUNT_KEY: &[u8] = b"d#";

fn prefix(start: u64, domain: &str) -> Vec<u8> {
    let mut k = b"d/".to_vec();
    k.extend_from_slice(&start.to_be_bytes());
    k.extend_from_slice(domain.as_bytes());
    k.push(0);
    k
}

fn row_key(start: u64, domain: &str, row: &DmarcRow) -> Vec<u8> {
    use blake2::Digest as _;
    let digest = blake2::Blake2s256::digest(encode(row));
    let mut k = prefix(start, domain);
    k.push(b'r');
    for b in &digest[..16] {
        k.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    k
}

/// (window start, domain, kind byte) of a `d/` key.
fn parse_key(key: &[u8]) -> Option<(u64, String, u8)> {
    let rest = key.strip_prefix(b"d/")?;
    let (start, rest) = rest.split_at_checked(8)?;
    let start = u64::from_be_bytes(start.try_into().ok()?);
    let nul = rest.iter().position(|&b| b == 0)?;
    let domain = String::from_utf8(rest[..nul].to_vec()).ok()?;
    let kind = *rest.get(nul + 1)?;
    Some((start, domain, kind))
}

fn read_count(raw: Option<&[u8]>) -> u64 {
    raw.and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

/// What one attempt at counting an evaluation decided.
enum Counted {
    Stored(bool),
    Corrupt(StoreError),
}

impl Store {
    /// Counts one evaluation in window `start`. Returns false when the row
    /// is new and `max_rows` are already kept (the evaluation is dropped).
    pub async fn dmarc_record(
        &self,
        start: u64,
        policy: &DmarcPublished,
        row: &DmarcRow,
        max_rows: usize,
    ) -> Result<bool, StoreError> {
        let backend = &self.inner.backend;
        let key = row_key(start, &policy.domain, row);
        let mut pkey = prefix(start, &policy.domain);
        pkey.push(b'p');
        let counted = retry(|| async {
            let old = backend.get(Space::Meta, &key).await?;
            let mut batch = Batch::new();
            batch.require(Space::Meta, key.clone(), old.as_deref());
            let stored = match &old {
                Some(raw) => match decode::<StoredRow>("DMARC report row", raw) {
                    Ok(mut s) => {
                        s.count += 1;
                        s
                    }
                    Err(e) => return Ok(Counted::Corrupt(e)),
                },
                None => {
                    let count = backend.get(Space::Meta, COUNT_KEY).await?;
                    let rows = read_count(count.as_deref());
                    if rows >= max_rows as u64 {
                        return Ok(Counted::Stored(false));
                    }
                    batch.require(Space::Meta, COUNT_KEY.to_vec(), count.as_deref());
                    batch.put(
                        Space::Meta,
                        COUNT_KEY.to_vec(),
                        (rows + 1).to_be_bytes().to_vec(),
                    );
                    StoredRow {
                        count: 1,
                        row: row.clone(),
                    }
                }
            };
            batch.put(Space::Meta, key.clone(), encode(&stored));
            batch.put(Space::Meta, pkey.clone(), encode(policy));
            backend.commit(batch).await?;
            Ok(Counted::Stored(true))
        })
        .await?;
        match counted {
            Counted::Stored(kept) => Ok(kept),
            Counted::Corrupt(e) => Err(e),
        }
    }

    /// Every window that started before `before` (Unix seconds), oldest
    /// first, one per domain.
    pub async fn dmarc_windows(&self, before: u64) -> Result<Vec<DmarcWindow>, StoreError> {
        let mut end = b"d/".to_vec();
        end.extend_from_slice(&before.to_be_bytes());
        let range = KeyRange::between(b"d/", &end);
        let items = self
            .inner
            .backend
            .scan(Space::Meta, &range, ScanOrder::ALL)
            .await?;
        let mut out: Vec<DmarcWindow> = Vec::new();
        for (key, value) in items {
            let Some((start, domain, kind)) = parse_key(&key) else {
                continue;
            };
            let same = |w: &DmarcWindow| w.start == start && w.domain == domain;
            if !out.last().is_some_and(same) {
                out.push(DmarcWindow {
                    start,
                    domain: domain.clone(),
                    policy: DmarcPublished {
                        domain: domain.clone(),
                        adkim: "r".into(),
                        aspf: "r".into(),
                        p: "none".into(),
                        sp: "none".into(),
                        pct: 100,
                        fo: "0".into(),
                        rua: Vec::new(),
                    },
                    rows: Vec::new(),
                });
            }
            let Some(w) = out.last_mut() else { continue };
            match kind {
                b'p' => w.policy = decode("DMARC published policy", &value)?,
                b'r' => {
                    let s: StoredRow = decode("DMARC report row", &value)?;
                    w.rows.push((s.row, s.count));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Forgets what was kept for `domain` in window `start` (once reported).
    pub async fn dmarc_forget(&self, start: u64, domain: &str) -> Result<(), StoreError> {
        let backend = &self.inner.backend;
        let range = KeyRange::prefix(&prefix(start, domain));
        retry(|| async {
            let keys = backend.scan(Space::Meta, &range, ScanOrder::ALL).await?;
            let count = backend.get(Space::Meta, COUNT_KEY).await?;
            let mut batch = Batch::new();
            let mut rows = 0u64;
            for (key, value) in keys {
                if parse_key(&key).is_some_and(|(_, _, kind)| kind == b'r') {
                    rows += 1;
                }
                batch.require(Space::Meta, key.clone(), Some(&value));
                batch.delete(Space::Meta, key);
            }
            let left = read_count(count.as_deref()).saturating_sub(rows);
            batch.require(Space::Meta, COUNT_KEY.to_vec(), count.as_deref());
            batch.put(Space::Meta, COUNT_KEY.to_vec(), left.to_be_bytes().to_vec());
            backend.commit(batch).await
        })
        .await
        .map_err(|e: BackendError| StoreError::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DmarcPublished {
        DmarcPublished {
            domain: "a.test".into(),
            adkim: "r".into(),
            aspf: "s".into(),
            p: "reject".into(),
            sp: "reject".into(),
            pct: 100,
            fo: "0".into(),
            rua: vec!["mailto:r@a.test".into()],
        }
    }

    fn row(ip: &str) -> DmarcRow {
        DmarcRow {
            source_ip: ip.into(),
            header_from: "a.test".into(),
            envelope_from: "a.test".into(),
            disposition: "none".into(),
            dkim_aligned: true,
            spf_aligned: false,
            spf_domain: "a.test".into(),
            spf_result: "fail".into(),
            dkim: vec![],
        }
    }

    #[tokio::test]
    async fn rows_count_up_are_bounded_and_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).await.expect("open");
        let p = policy();
        let record = async |start, ip| store.dmarc_record(start, &p, &row(ip), 2).await;
        assert!(record(100, "192.0.2.1").await.expect("1"));
        assert!(record(100, "192.0.2.1").await.expect("2"));
        assert!(record(100, "192.0.2.2").await.expect("3"));
        assert!(!record(100, "192.0.2.3").await.expect("4"), "bound reached");
        assert!(!record(200, "192.0.2.1").await.expect("5"), "bound reached");
        let w = store.dmarc_windows(150).await.expect("windows");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].policy, p);
        let mut counts: Vec<u64> = w[0].rows.iter().map(|(_, c)| *c).collect();
        counts.sort();
        assert_eq!(counts, [1, 2]);
        store.dmarc_forget(100, "a.test").await.expect("forget");
        assert!(
            store
                .dmarc_windows(u64::MAX)
                .await
                .expect("windows")
                .is_empty()
        );
        assert!(record(200, "192.0.2.3").await.expect("6"));
    }
}
