//! Outgoing HTTP requests of plugins granted `http` prefixes, through WASI
//! HTTP (`wasi:http/outgoing-handler` from wasmtime-wasi-http, whose
//! request and response resources the guest uses as any WASI HTTP client
//! does). wasmtime-wasi-http builds the request; `HttpHooks::send_request`
//! here decides and sends it: the URL must be under a granted prefix
//! (`http_grant.rs`), else the guest's request fails with
//! `HTTP-request-denied` before anything leaves the host; each request
//! holds one of the plugin's connections (`held.rs`: all its instances
//! together, TCP sockets included) from the moment it is handed over
//! until its connection ends, and past the bound it fails with
//! `connection-limit-reached`; the host is resolved through Tern's
//! resolver and connected to by the host, https verified against the
//! system's trust anchors (or `relay.tls_ca`) for the URL's host; and the
//! plugin's `timeout` bounds connecting and waiting for the response (the
//! call's own deadline covers the guest's waits too).

use super::http_grant::{Destination, HttpGrants};
use crate::dns::Dns;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// What every instance of a plugin shares for its requests.
pub struct HttpGate {
    pub plugin: String,
    pub grants: HttpGrants,
    pub dns: Dns,
    /// Verifies https servers; None: no trust anchors could be loaded
    /// (https requests then fail, http ones still go).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The plugin's call timeout: the most connecting and waiting for a
    /// response may take.
    pub timeout: Duration,
    /// The connections the plugin holds (`held.rs`).
    pub connections: Arc<Semaphore>,
}

impl HttpGate {
    /// The gate for `grants`, with the trust anchors in `ca` (PEM; None:
    /// the system's).
    pub fn new(
        plugin: &str,
        grants: HttpGrants,
        dns: Dns,
        ca: Option<&std::path::Path>,
        timeout: Duration,
        connections: Arc<Semaphore>,
    ) -> HttpGate {
        let tls = match crate::tls::client::verified_tls_config(ca) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(
                    plugin,
                    "no trust anchors for https requests ({e}): they will fail"
                );
                None
            }
        };
        HttpGate {
            plugin: plugin.to_string(),
            grants,
            dns,
            tls,
            timeout,
            connections,
        }
    }
}

/// One instance's view: the gate all instances of its plugin share.
pub struct HttpHooks {
    gate: Option<Arc<HttpGate>>,
}

impl HttpHooks {
    /// `gate`: None for a plugin with no `http` grant (every request refused).
    pub fn new(gate: Option<Arc<HttpGate>>) -> HttpHooks {
        HttpHooks { gate }
    }
}

type Sent = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

fn refused(e: Error) -> Box<dyn Future<Output = Sent> + Send> {
    Box::new(async move { Err(e) })
}

impl WasiHttpHooks for HttpHooks {
    /// A certificate that does not verify is `TLS-certificate-error` to
    /// the guest; other TLS failures `TLS-protocol-error`.
    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> ErrorCode {
        let certificate = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
        if certificate {
            ErrorCode::TlsCertificateError
        } else {
            ErrorCode::TlsProtocolError
        }
    }

    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let url = request.uri().to_string();
        let Some(gate) = self.gate.clone() else {
            tracing::warn!(url, "http request refused: the plugin has no http grant");
            return refused(Error::HttpRequestDenied);
        };
        let plugin = gate.plugin.as_str();
        let destination = match gate.grants.check(&url) {
            Ok(d) => d,
            Err(why) => {
                tracing::warn!(plugin, url, "http request refused: {why}");
                return refused(Error::HttpRequestDenied);
            }
        };
        let Ok(permit) = gate.connections.clone().try_acquire_owned() else {
            tracing::warn!(
                plugin,
                url,
                "http request refused: the plugin holds its max_connections already"
            );
            return refused(Error::ConnectionLimitReached);
        };
        let bound = |asked: Option<Duration>| asked.map_or(gate.timeout, |t| t.min(gate.timeout));
        let connect_timeout = bound(options.and_then(|o| o.connect_timeout));
        let response_timeout = bound(options.and_then(|o| o.first_byte_timeout));
        Box::new(async move {
            let (mut sender, connection) =
                tokio::time::timeout(connect_timeout, connect(&gate, &destination))
                    .await
                    .map_err(|_| Error::ConnectionTimeout)??;
            let request = outgoing(request, &destination)?;
            // The connection counts as held until it ends: once the
            // response is read or dropped (and at once if the guest's
            // instance goes, which drops the response).
            let driver = tokio::spawn(async move {
                let _permit = permit;
                connection.await
            });
            let response = tokio::time::timeout(response_timeout, sender.send_request(request))
                .await
                .map_err(|_| Error::HttpResponseTimeout)?
                .map_err(Error::from)?;
            tracing::debug!(plugin = %gate.plugin, url, status = %response.status(), "http request");
            let response = response.map(|b| b.map_err(Error::from).boxed_unsync());
            let io = async move {
                match driver.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(Error::from(e)),
                    Err(_) => Err(Error::ConnectionTerminated),
                }
            };
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// The request as it goes on the wire: origin-form path, the `Host` of
/// the checked URL (whatever the guest's request said).
fn outgoing(
    request: hyper::Request<WasiBody>,
    destination: &Destination,
) -> Result<hyper::Request<WasiBody>, Error> {
    let (mut parts, body) = request.into_parts();
    parts.uri = destination
        .path_and_query
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let host = hyper::header::HeaderValue::from_str(&destination.authority)
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    parts.headers.insert(hyper::header::HOST, host);
    Ok(hyper::Request::from_parts(parts, body))
}

type Connection =
    hyper::client::conn::http1::Connection<hyper_util::rt::TokioIo<Box<dyn Stream>>, WasiBody>;

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// TCP to the destination's addresses (a name's through Tern's resolver),
/// TLS verified for its host when https, and an HTTP/1.1 handshake.
async fn connect(
    gate: &HttpGate,
    destination: &Destination,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<WasiBody>,
        Connection,
    ),
    Error,
> {
    let ips = match destination.host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => gate.dns.ip_addrs(&destination.host).await.map_err(|e| {
            tracing::warn!(plugin = %gate.plugin, host = %destination.host, "http: resolving: {e}");
            Error::DestinationNotFound
        })?,
    };
    let mut last = None;
    let mut tcp = None;
    for ip in ips {
        match tokio::net::TcpStream::connect((ip, destination.port)).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(Error::Connect(e)),
        (None, None) => return Err(Error::DestinationNotFound),
    };
    let stream: Box<dyn Stream> = if destination.https {
        let Some(config) = gate.tls.clone() else {
            return Err(Error::TlsCertificateError);
        };
        let name = rustls::pki_types::ServerName::try_from(destination.host.clone())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| {
                tracing::warn!(plugin = %gate.plugin, host = %destination.host, "http: TLS: {e}");
                Error::Tls(e)
            })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(Error::from)
}
