//! TLS-RPT tallies (`r/<period start>\0<policy domain>` in `Space::Meta`,
//! the start as 20 decimal digits so keys sort by time): for one reporting
//! period and one policy domain, the policy as reported, the count of
//! successful sessions and the failures by kind (RFC 8460 section 4.4).
//! `outbound/tls_rpt` adds to them and turns finished periods into reports;
//! this file only keeps them, over the storage seam: a change reads the
//! tally and commits only if it is still what was read (else it is read
//! again), so two deliveries tallying at once both count.

use super::backend::{Batch, KeyRange, ScanOrder, Space, retry};
use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRptTally {
    /// "sts" (MTA-STS).
    pub policy_type: String,
    /// The policy file's lines.
    pub policy_string: Vec<String>,
    /// The policy's MX patterns.
    pub mx_host: Vec<String>,
    pub successes: u64,
    pub failures: Vec<TlsRptFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRptFailure {
    /// RFC 8460 result type ("certificate-expired", "starttls-not-supported", …).
    pub result_type: String,
    pub receiving_mx_hostname: String,
    pub receiving_ip: Option<String>,
    /// Our address towards the receiving IP.
    #[serde(default)]
    pub sending_mta_ip: Option<String>,
    pub failure_reason_code: String,
    pub count: u64,
}

fn tally_key(period: i64, domain: &str) -> Vec<u8> {
    format!("r/{period:020}\0{}", domain.to_ascii_lowercase()).into_bytes()
}

impl Store {
    /// Changes the tally of `domain` for the period starting at `period`
    /// (created empty). Concurrent changes are retried, never lost.
    pub async fn update_tlsrpt(
        &self,
        period: i64,
        domain: &str,
        change: impl Fn(&mut TlsRptTally),
    ) -> Result<(), StoreError> {
        let key = tally_key(period, domain);
        let backend = &self.inner.backend;
        retry(|| async {
            let old = backend.get(Space::Meta, &key).await?;
            let mut tally = match &old {
                Some(v) => match decode("TLS-RPT tally", v) {
                    Ok(t) => t,
                    Err(e) => return Ok(Err(e)),
                },
                None => TlsRptTally::default(),
            };
            change(&mut tally);
            let mut batch = Batch::new();
            batch.require(Space::Meta, key.clone(), old.as_deref());
            batch.put(Space::Meta, key.clone(), encode(&tally));
            backend.commit(batch).await?;
            Ok(Ok(()))
        })
        .await?
    }

    /// Tallies of periods that started before `before`: (start, domain, tally).
    pub async fn tlsrpt_before(
        &self,
        before: i64,
    ) -> Result<Vec<(i64, String, TlsRptTally)>, StoreError> {
        let end = format!("r/{before:020}").into_bytes();
        let range = KeyRange::between(b"r/", &end);
        let mut out = Vec::new();
        for (k, v) in self
            .inner
            .backend
            .scan(Space::Meta, &range, ScanOrder::ALL)
            .await?
        {
            let key = String::from_utf8_lossy(&k[2..]).into_owned();
            let Some((start, domain)) = key.split_once('\0') else {
                continue;
            };
            let Ok(start) = start.parse::<i64>() else {
                continue;
            };
            if start >= before {
                break;
            }
            out.push((start, domain.to_string(), decode("TLS-RPT tally", &v)?));
        }
        Ok(out)
    }

    pub async fn remove_tlsrpt(&self, period: i64, domain: &str) -> Result<(), StoreError> {
        let mut batch = Batch::new();
        batch.delete(Space::Meta, tally_key(period, domain));
        Ok(self.inner.backend.commit(batch).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tallies_all_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        crate::store::race(&store, 8, 25, |store| async move {
            store
                .update_tlsrpt(86400, "Example.test", |t| t.successes += 1)
                .await
                .unwrap();
        })
        .await;
        let due = store.tlsrpt_before(2 * 86400).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, "example.test");
        assert_eq!(due[0].2.successes, 200);
        assert!(store.tlsrpt_before(86400).await.unwrap().is_empty());
        store.remove_tlsrpt(86400, "example.test").await.unwrap();
        assert!(store.tlsrpt_before(i64::MAX).await.unwrap().is_empty());
    }
}
