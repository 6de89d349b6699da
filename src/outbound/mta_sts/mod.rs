//! MTA-STS (RFC 8461) for MX delivery: which policy a destination domain
//! has now. Discovery (section 5.1): the `_mta-sts` TXT record (parsed by
//! mail-auth) names the policy's `id`; a cached, unexpired policy with
//! that id (or with no record at all, or DNS failing) is used as it is;
//! otherwise the policy is fetched (`fetch.rs`), parsed (`policy.rs`) and
//! cached in the store for `max_age`. A fetch that fails, or a policy that
//! is malformed or oversized, leaves the cached one in force, else no
//! policy at all — and is logged. A cached policy past half its `max_age`
//! is fetched again in the background, so a domain that keeps publishing
//! never falls out of the cache (section 10.2).

pub mod fetch;
pub mod policy;

use crate::dns::{Dns, DnsError};
use crate::store::{Store, StsPolicyRecord, now};
use fetch::Fetcher;
use mail_auth::dns::TxtRecordParser;
use mail_auth::mta_sts::MtaStsRecord;
pub use policy::{Mode, Policy};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The policy that applies to a domain, and where it came from.
#[derive(Debug, Clone)]
pub struct Applied {
    pub policy: Policy,
    pub id: String,
    /// The policy file as served (for TLS-RPT's policy-string).
    pub text: String,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct MtaSts {
    inner: Arc<Inner>,
}

struct Inner {
    dns: Dns,
    store: Store,
    fetcher: Fetcher,
    /// Domains whose background refresh is running.
    refreshing: Mutex<HashSet<String>>,
}

impl MtaSts {
    pub fn new(dns: Dns, store: Store, fetcher: Fetcher) -> MtaSts {
        MtaSts {
            inner: Arc::new(Inner {
                dns,
                store,
                fetcher,
                refreshing: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The policy in force for `domain`, if any (mode `none` included).
    pub async fn policy(&self, domain: &str) -> Option<Applied> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let t = now();
        let cached = match self.inner.store.sts_policy(&domain).await {
            Ok(c) => c.filter(|c| c.expires > t),
            Err(e) => {
                tracing::warn!(domain, "reading the cached MTA-STS policy: {e}");
                None
            }
        };
        let cached_policy = cached.as_ref().and_then(|c| match Policy::parse(&c.text) {
            Ok(p) => Some(Applied {
                policy: p,
                id: c.id.clone(),
                text: c.text.clone(),
            }),
            Err(e) => {
                tracing::warn!(domain, "cached MTA-STS policy unreadable: {e}");
                None
            }
        });
        let id = self.record_id(&domain).await;
        match (&id, &cached, cached_policy) {
            (None, _, cached) => cached,
            (Some(id), Some(c), Some(applied)) if *id == c.id => {
                if t - c.fetched > (c.expires - c.fetched) / 2 {
                    self.refresh_in_background(&domain, id);
                }
                Some(applied)
            }
            (Some(id), _, cached) => match self.fetch_and_cache(&domain, id).await {
                Ok(applied) => Some(applied),
                Err(e) => {
                    if cached.is_some() {
                        tracing::warn!(
                            domain,
                            "MTA-STS policy {id}: {e}; the cached policy stays in force"
                        );
                    } else {
                        tracing::warn!(
                            domain,
                            "MTA-STS policy {id}: {e}; delivering as if the domain had no policy"
                        );
                    }
                    cached
                }
            },
        }
    }

    /// The `id` of the domain's `_mta-sts` record: None when there is no
    /// (single, valid) record or DNS fails — either way the cache decides.
    async fn record_id(&self, domain: &str) -> Option<String> {
        let name = format!("_mta-sts.{domain}");
        match self.inner.dns.txt(&name).await {
            Ok(records) => {
                let sts: Vec<&String> = records
                    .iter()
                    .filter(|r| r.starts_with("v=STSv1"))
                    .collect();
                match sts.as_slice() {
                    [one] => match MtaStsRecord::parse(one.as_bytes()) {
                        Ok(r) => Some(r.id),
                        Err(_) => {
                            tracing::warn!(domain, record = %one, "malformed _mta-sts record ignored");
                            None
                        }
                    },
                    [] => None,
                    _ => {
                        tracing::warn!(
                            domain,
                            "several _mta-sts records; none is used (RFC 8461 3.1)"
                        );
                        None
                    }
                }
            }
            Err(DnsError::NotFound) => None,
            Err(e) => {
                tracing::info!(domain, "_mta-sts look-up failed: {e}");
                None
            }
        }
    }

    async fn fetch_and_cache(&self, domain: &str, id: &str) -> Result<Applied, String> {
        let text = self.inner.fetcher.fetch(domain).await?;
        let policy = Policy::parse(&text).map_err(|e| format!("malformed policy: {e}"))?;
        let t = now();
        let record = StsPolicyRecord {
            id: id.to_string(),
            text: text.clone(),
            fetched: t,
            expires: t.saturating_add(policy.max_age as i64),
        };
        if let Err(e) = self.inner.store.set_sts_policy(domain, &record).await {
            tracing::warn!(domain, "caching the MTA-STS policy: {e}");
        }
        tracing::info!(
            domain,
            id,
            mode = policy.mode.name(),
            max_age = policy.max_age,
            "MTA-STS policy fetched"
        );
        Ok(Applied {
            policy,
            id: id.to_string(),
            text,
        })
    }

    fn refresh_in_background(&self, domain: &str, id: &str) {
        {
            let mut running = self
                .inner
                .refreshing
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !running.insert(domain.to_string()) {
                return;
            }
        }
        let (this, domain, id) = (self.clone(), domain.to_string(), id.to_string());
        tokio::spawn(async move {
            if let Err(e) = this.fetch_and_cache(&domain, &id).await {
                tracing::warn!(
                    domain,
                    "refreshing the MTA-STS policy: {e}; the cached one stays in force"
                );
            }
            this.inner
                .refreshing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&domain);
        });
    }
}
