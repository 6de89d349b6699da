//! Fetching a policy file (RFC 8461 section 3.3): HTTPS GET of
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, the host name
//! resolved through Tern's own resolver (`dns.rs`), the certificate
//! verified for that name, HTTP/1.1 by hyper. Only a 200 with
//! `text/plain` counts: redirects are not followed, the body is capped at
//! 64 KiB and the whole fetch at one time limit.

use crate::dns::Dns;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

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
        let ips = self
            .dns
            .ip_addrs(host)
            .await
            .map_err(|e| format!("resolving {host}: {e}"))?;
        let mut stream = None;
        let mut last = String::from("no address");
        for ip in ips {
            match TcpStream::connect((ip, self.port)).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("connect to {ip}:{}: {e}", self.port),
            }
        }
        let stream = stream.ok_or(last)?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let driver = tokio::spawn(connection);
        let authority = if self.port == 443 {
            host.to_string()
        } else {
            format!("{host}:{}", self.port)
        };
        let request = hyper::Request::builder()
            .uri("/.well-known/mta-sts.txt")
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, "Tern")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
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
        .await;
        driver.abort();
        result
    }
}
