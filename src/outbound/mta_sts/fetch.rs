//! Fetching a policy file (RFC 8461 section 3.3): HTTPS GET of
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt` through
//! `outbound/https.rs` (Tern's resolver, the certificate verified for
//! that name). Only a 200 with
//! `text/plain` counts: redirects are not followed, the body is capped at
//! 64 KiB and the whole fetch at one time limit.

use crate::dns::Dns;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Largest policy file accepted (RFC 8461 section 3.3 suggests 64 KiB).
pub const MAX_POLICY_SIZE: usize = 64 * 1024;
/// The longest a whole fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Fetcher {
    dns: Dns,
    tls: Arc<rustls::ClientConfig>,
    port: u16,
}

impl Fetcher {
    /// `tls` must verify certificates (see `tls::Verifier::client_config`).
    pub fn new(dns: Dns, tls: Arc<rustls::ClientConfig>, port: u16) -> Fetcher {
        Fetcher { dns, tls, port }
    }

    /// The policy file of `domain`, as text.
    pub async fn fetch(&self, domain: &str) -> Result<String, String> {
        let host = format!("mta-sts.{}", domain.trim_end_matches('.'));
        match tokio::time::timeout(FETCH_TIMEOUT, self.get(&host)).await {
            Ok(result) => {
                result.map_err(|e| format!("https://{host}/.well-known/mta-sts.txt: {e}"))
            }
            Err(_) => Err(format!(
                "https://{host}/.well-known/mta-sts.txt: no answer within {}s",
                FETCH_TIMEOUT.as_secs()
            )),
        }
    }

    async fn get(&self, host: &str) -> Result<String, String> {
        let request = hyper::Request::builder()
            .uri("/.well-known/mta-sts.txt")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let response =
            crate::outbound::https::request(&self.dns, self.tls.clone(), host, self.port, request)
                .await?;
        let status = response.status();
        if status != hyper::StatusCode::OK {
            return Err(if status.is_redirection() {
                format!("HTTP {status} (redirects are not followed)")
            } else {
                format!("HTTP {status}")
            });
        }
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("text/plain") {
            return Err(format!("Content-Type {content_type:?}, not text/plain"));
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("HTTP body: {e}"))?;
            if let Some(data) = frame.data_ref() {
                if bytes.len() + data.len() > MAX_POLICY_SIZE {
                    return Err(format!("policy larger than {MAX_POLICY_SIZE} bytes"));
                }
                bytes.extend_from_slice(data);
            }
        }
        String::from_utf8(bytes).map_err(|_| "policy is not UTF-8".to_string())
    }
}
