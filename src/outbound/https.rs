//! One HTTPS request for the delivering side (MTA-STS policy fetches,
//! TLS-RPT report uploads): the host resolved through Tern's own resolver
//! (`dns.rs`), TCP to each address in turn, rustls with a configuration
//! that verifies the certificate for the host, HTTP/1.1 by hyper. No
//! redirects are followed: the caller sees the status as it came.

use crate::dns::Dns;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Sends `request` (its URI a path; the Host header set here) to
/// `host:port` and returns the response, whose body the caller reads.
pub async fn request<B>(
    dns: &Dns,
    tls: Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    mut request: hyper::Request<B>,
) -> Result<hyper::Response<Incoming>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let ips = dns
        .ip_addrs(host)
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?;
    let mut stream = None;
    let mut last = String::from("no address");
    for ip in ips {
        match TcpStream::connect((ip, port)).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connect to {ip}:{port}: {e}"),
        }
    }
    let stream = stream.ok_or(last)?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(tls)
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        // Ends when the response has been read and the sender dropped.
        let _ = connection.await;
    });
    let authority = if port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let value = hyper::header::HeaderValue::from_str(&authority)
        .map_err(|_| format!("{authority:?} is not a host name"))?;
    request.headers_mut().insert(hyper::header::HOST, value);
    request.headers_mut().insert(
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static("Tern"),
    );
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))
}
