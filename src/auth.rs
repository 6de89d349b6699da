//! Logging users in, for every protocol: SASL PLAIN decoding, password checks
//! off the async runtime, and the price of failure — each failed login waits,
//! and repeated failures from one address wait longer. Nothing in a reply
//! tells a client whether a user exists.
//!
//! Failures are counted per client address. With sled (one process) the
//! count is this process's memory; on a store shared with other nodes it is
//! the store's (`store/logins.rs`), so an address guessing on several nodes
//! is slowed and cut off by its failures on all of them. Should the
//! database fail, the node counts in its own memory meanwhile.

use crate::store::Store;
use base64::Engine;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    #[error("the response is not valid base64")]
    Base64,
    #[error("the PLAIN response is malformed")]
    Malformed,
    #[error("the response is not UTF-8")]
    Utf8,
}

/// Decodes a SASL PLAIN response (RFC 4616): returns (authzid, authcid, password).
pub fn decode_plain(b64: &str) -> Result<(String, String, String), SaslError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| SaslError::Base64)?;
    let mut parts = raw.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let s = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Utf8);
    Ok((s(authz)?, s(authc)?, s(pass)?))
}

/// Decodes one base64 line (AUTH LOGIN steps).
pub fn decode_b64_text(b64: &str) -> Result<String, SaslError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| SaslError::Base64)?;
    String::from_utf8(raw).map_err(|_| SaslError::Utf8)
}

pub fn encode_b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// How long after the last failure an address's record is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Checks credentials and slows down those who guess.
pub struct Authenticator {
    store: Store,
    default_domain: String,
    base_delay: Duration,
    /// Failures after which an address's logins are refused unchecked.
    max_failures: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// The store is shared with other nodes: failures are counted there.
    shared: bool,
    /// When the store's stale failure records were last swept.
    swept: Mutex<Instant>,
}

impl Authenticator {
    pub fn new(
        store: Store,
        default_domain: String,
        base_delay: Duration,
        max_failures: u32,
    ) -> Authenticator {
        Authenticator {
            shared: store.is_shared(),
            store,
            default_domain,
            base_delay,
            max_failures,
            failures: Mutex::new(HashMap::new()),
            swept: Mutex::new(Instant::now()),
        }
    }

    /// The account name a login refers to: a bare name gets the first local domain.
    pub fn account_name(&self, login: &str) -> String {
        let login = login.trim().to_ascii_lowercase();
        if login.contains('@') {
            login
        } else {
            format!("{login}@{}", self.default_domain)
        }
    }

    /// Verifies a login; returns the account on success. On failure, waits
    /// before returning: the base delay, doubled for each recent failure
    /// from the same address (at most 64 times the base). An address with
    /// `max_failures` recent failures is refused without a password check
    /// (and still waits) until its record is forgotten.
    pub async fn verify(&self, peer: IpAddr, login: &str, password: &str) -> Option<String> {
        let account = self.account_name(login);
        let before = self.failures(peer).await;
        if before >= self.max_failures {
            crate::metrics::counter("tern_auth_failures_total", &[]);
            crate::metrics::counter("tern_limits_hit_total", &[("limit", "max_auth_failures")]);
            let delay = self.record_failure(peer).await;
            tracing::warn!(login = %account, client = %peer, delay_ms = delay.as_millis() as u64, "login refused: too many failures from this address");
            tokio::time::sleep(delay).await;
            return None;
        }
        let result = self
            .store
            .verify_password(&account, password)
            .await
            .ok()
            .flatten();
        match result {
            Some(user) => {
                if before > 0 {
                    self.forget(peer).await;
                }
                tracing::info!(user = %user, client = %peer, "login");
                Some(user)
            }
            None => {
                crate::metrics::counter("tern_auth_failures_total", &[]);
                let delay = self.record_failure(peer).await;
                tracing::warn!(login = %account, client = %peer, delay_ms = delay.as_millis() as u64, "login failed");
                tokio::time::sleep(delay).await;
                None
            }
        }
    }

    /// Counts a failure from `peer`; the wait it costs.
    async fn record_failure(&self, peer: IpAddr) -> Duration {
        let count = if self.shared {
            match self
                .store
                .add_login_failure(&peer.to_string(), FORGET_AFTER)
                .await
            {
                Ok(n) => {
                    self.sweep_now_and_then().await;
                    n
                }
                Err(e) => {
                    tracing::warn!(client = %peer, "counting a failed login in the store failed, counting here: {e}");
                    self.record_here(peer)
                }
            }
        } else {
            self.record_here(peer)
        };
        self.base_delay * (1u32 << (count.max(1) - 1).min(6))
    }

    /// Counts a failure in this process's memory; the count now.
    fn record_here(&self, peer: IpAddr) -> u32 {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
        let entry = map.entry(peer).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        entry.0
    }

    /// Deletes the store's forgotten failure records, at most once per
    /// `FORGET_AFTER` from each node (addresses that never log in again
    /// leave one record each behind).
    async fn sweep_now_and_then(&self) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            if swept.elapsed() < FORGET_AFTER {
                return;
            }
            *swept = Instant::now();
        }
        if let Err(e) = self.store.sweep_login_failures(FORGET_AFTER).await {
            tracing::warn!("sweeping old failed-login records failed: {e}");
        }
    }

    async fn forget(&self, peer: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer);
        if self.shared
            && let Err(e) = self.store.forget_login_failures(&peer.to_string()).await
        {
            tracing::warn!(client = %peer, "forgetting failed logins failed: {e}");
        }
    }

    /// Recent failures from this address (for abuse limits and tests): the
    /// cluster's on a shared store (this node's while it cannot be read).
    pub async fn failures(&self, peer: IpAddr) -> u32 {
        if self.shared {
            match self
                .store
                .login_failures(&peer.to_string(), FORGET_AFTER)
                .await
            {
                Ok(n) => return n,
                Err(e) => tracing::warn!(client = %peer, "reading failed logins failed: {e}"),
            }
        }
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&peer).map(|(n, _)| *n).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decodes_plain() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"\0bob@x.test\0pw");
        assert_eq!(
            decode_plain(&b64).unwrap(),
            ("".into(), "bob@x.test".into(), "pw".into())
        );
        assert_eq!(decode_plain("!!!"), Err(SaslError::Base64));
        let two = base64::engine::general_purpose::STANDARD.encode(b"bob\0pw");
        assert_eq!(decode_plain(&two), Err(SaslError::Malformed));
    }

    #[tokio::test]
    async fn failures_grow_the_delay_and_success_resets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user("bob@x.test", "pw").await.unwrap();
        let auth = Authenticator::new(store, "x.test".into(), Duration::from_millis(1), 10);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(auth.verify(ip, "bob", "nope").await, None);
        assert_eq!(auth.verify(ip, "bob@x.test", "nope").await, None);
        assert_eq!(auth.failures(ip).await, 2);
        assert_eq!(auth.record_failure(ip).await, Duration::from_millis(4));
        assert_eq!(
            auth.verify(ip, "BOB", "pw").await.as_deref(),
            Some("bob@x.test")
        );
        assert_eq!(auth.failures(ip).await, 0);
    }

    #[tokio::test]
    async fn too_many_failures_refuse_even_the_right_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user("bob@x.test", "pw").await.unwrap();
        let auth = Authenticator::new(store, "x.test".into(), Duration::from_millis(1), 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(auth.verify(ip, "bob", "nope").await, None);
        }
        assert_eq!(auth.verify(ip, "bob", "pw").await, None);
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(auth.verify(other, "bob", "pw").await.is_some());
    }
}
