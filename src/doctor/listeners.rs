//! Each configured listener must accept a connection on its address and
//! greet as its protocol does (SMTP/LMTP `220`, POP3 `+OK`, IMAP `* OK`;
//! after the TLS handshake for the implicit-TLS ones; HTTP only connects).
//! A wildcard listener (`0.0.0.0`, `[::]`) is tried on loopback, and the
//! line says so. A `proxy_protocol` listener is sent a PROXY v2 LOCAL
//! header first, as a load balancer's health check would (so the doctor
//! must run from an address in `relay.proxy_sources`). This checks the
//! server from where the doctor runs: a firewall in front is not seen.

use super::Doctor;
use crate::config::{Listen, Protocol};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpStream;

/// The longest a connection, handshake or greeting may take.
const TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn check(d: &mut Doctor<'_>) {
    let listeners: Vec<Listen> = d.config.listen.clone();
    for l in listeners {
        let subject = format!("{} {}", l.protocol.name(), l.address);
        if l.address.port() == 0 {
            d.warning(
                "listener",
                &subject,
                "port 0: a new port is chosen at every start; give the real port".into(),
                None,
            );
            continue;
        }
        let (target, mut note) = if l.address.ip().is_unspecified() {
            let loopback = match l.address.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            let target = SocketAddr::new(loopback, l.address.port());
            (target, format!(" (every address: tried {target})"))
        } else {
            (l.address, String::new())
        };
        if l.proxy_protocol {
            note.push_str(" (after a PROXY v2 LOCAL header)");
        }
        let probed = probe(l.protocol, l.proxy_protocol, target, &d.hostname);
        match tokio::time::timeout(TIMEOUT, probed).await {
            Ok(Ok(greeting)) => {
                let host = d.hostname.clone();
                let smtp = matches!(
                    l.protocol,
                    Protocol::Smtp | Protocol::Submission | Protocol::Submissions | Protocol::Lmtp
                );
                let names_host = greeting
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|w| w.eq_ignore_ascii_case(&host));
                if smtp && !names_host {
                    d.warning(
                        "listener",
                        &subject,
                        format!(
                            "answers{note}, but its greeting does not name {host}: {greeting:?}"
                        ),
                        None,
                    );
                } else if greeting.is_empty() {
                    d.ok("listener", &subject, format!("accepts connections{note}"));
                } else {
                    d.ok("listener", &subject, format!("answers{note}: {greeting}"));
                }
            }
            Ok(Err(e)) => d.error("listener", &subject, format!("{e}{note}"), None),
            Err(_) => d.error(
                "listener",
                &subject,
                format!("no answer within {} s{note}", TIMEOUT.as_secs()),
                None,
            ),
        }
    }
}

/// The greeting's first line ("" for HTTP), or what went wrong.
async fn probe(
    protocol: Protocol,
    proxy: bool,
    target: SocketAddr,
    host: &str,
) -> Result<String, String> {
    let mut tcp = TcpStream::connect(target)
        .await
        .map_err(|e| format!("not reachable: {e}"))?;
    if proxy {
        use ppp::v2::{Addresses, Builder, Command, Protocol as Transport, Version};
        use tokio::io::AsyncWriteExt as _;
        let local = Builder::with_addresses(
            Version::Two | Command::Local,
            Transport::Unspecified,
            Addresses::Unspecified,
        )
        .build()
        .map_err(|e| format!("PROXY header: {e}"))?;
        tcp.write_all(&local)
            .await
            .map_err(|e| format!("sending the PROXY header: {e}"))?;
    }
    if !protocol.implicit_tls() {
        if matches!(protocol, Protocol::Http) {
            return Ok(String::new());
        }
        return greeting(protocol, tcp).await;
    }
    // The certificate itself is judged by `cert.rs`; here only the handshake.
    let config =
        crate::tls::client::opportunistic_tls_config().map_err(|e| format!("TLS client: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(&config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    if matches!(protocol, Protocol::Https) {
        return Ok(String::new());
    }
    greeting(protocol, tls).await
}

/// Reads the first line and checks it is the protocol's greeting.
async fn greeting(protocol: Protocol, stream: impl AsyncRead + Unpin) -> Result<String, String> {
    use tokio::io::AsyncReadExt as _;
    let mut line = String::new();
    BufReader::new(stream.take(1024))
        .read_line(&mut line)
        .await
        .map_err(|e| format!("reading the greeting: {e}"))?;
    let line = line.trim_end().to_string();
    let expected = match protocol {
        Protocol::Smtp | Protocol::Submission | Protocol::Submissions | Protocol::Lmtp => "220",
        Protocol::Pop3 | Protocol::Pop3s => "+OK",
        Protocol::Imap | Protocol::Imaps => "* OK",
        // RFC 5804: the capabilities come first, IMPLEMENTATION among them.
        Protocol::Managesieve => "\"",
        _ => "",
    };
    if line.starts_with(expected) && !line.is_empty() {
        Ok(line)
    } else {
        Err(format!("greets with {line:?}, not {expected:?}"))
    }
}
