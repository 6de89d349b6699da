//! The PROXY protocol (HAProxy's text v1 and binary v2 headers) on a
//! `proxy_protocol = true` listener: a load balancer in front of Tern
//! opens the TCP connection and writes, before anything of the client's,
//! one header naming the client it relays. This module reads exactly that
//! header off the raw stream (never a byte more: what follows belongs to
//! the session, a TLS ClientHello on an implicit-TLS listener), refuses
//! it from a peer outside `[relay] proxy_sources`, and says which address
//! is the client's from then on. Parsing is the `ppp` crate's; framing and
//! the bounds (length, time) are ours.

use ipnet::IpNet;
use ppp::{v1, v2};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// How long a proxy may take to send its header (Postfix's
/// `smtpd_upstream_proxy_timeout` is 5s too); a load balancer writes it
/// at once, so only a stray client or a wrong setup waits this long.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest v1 header, CRLF included (the specification's bound).
const V1_MAX: usize = 107;

/// The v2 fixed part: 12 bytes of signature, version/command, family,
/// and the length of what follows.
const V2_FIXED: usize = 16;

/// The most address and TLV bytes a v2 header may carry here: addresses
/// take at most 216 (UNIX), and the TLVs balancers add (ALPN, SNI, TLS
/// details, a cloud's endpoint id) fit easily; anything longer is refused.
const V2_MAX_PAYLOAD: usize = 2048;

/// What the first bytes must be: enough to tell v1 from v2, shorter than
/// either's shortest header ("PROXY UNKNOWN\r\n" is 15 bytes).
const PROBE: usize = 8;

/// Why a connection on a PROXY listener was closed before its greeting.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0} is not in relay.proxy_sources, so it may not send a PROXY header")]
    Untrusted(IpAddr),
    #[error("no complete PROXY header within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed before its PROXY header was complete")]
    Eof,
    #[error("the connection did not start with a PROXY v1 or v2 header")]
    Missing,
    #[error("PROXY header longer than {0} bytes")]
    TooLong(usize),
    #[error("malformed PROXY v1 header: {0}")]
    V1(String),
    #[error("malformed PROXY v2 header: {0}")]
    V2(String),
    #[error("reading the PROXY header: {0}")]
    Io(std::io::Error),
}

/// What a valid header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Relayed for the client at `source`, which connected to `destination`.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// The proxy speaking for itself (v2 LOCAL, a health check) or for a
    /// client it cannot name (v1 UNKNOWN, v2 UNSPEC or UNIX): the real
    /// peer's address stands.
    Local,
}

/// The client and local addresses of a connection accepted from `peer` on
/// `local` by a PROXY listener: checks that `peer` may send a header,
/// reads it (within `HEADER_TIMEOUT`) and returns the addresses it names,
/// or the real ones for a LOCAL/UNKNOWN header.
pub async fn admit<R: AsyncRead + Unpin>(
    stream: &mut R,
    peer: SocketAddr,
    local: SocketAddr,
    proxy_sources: &[IpNet],
) -> Result<(SocketAddr, SocketAddr), ProxyError> {
    if !crate::config::in_networks(proxy_sources, peer.ip()) {
        return Err(ProxyError::Untrusted(peer.ip()));
    }
    let origin = tokio::time::timeout(HEADER_TIMEOUT, read_header(stream))
        .await
        .map_err(|_| ProxyError::Timeout(HEADER_TIMEOUT))??;
    Ok(match origin {
        Origin::Proxied {
            source,
            destination,
        } => (canonical(source), canonical(destination)),
        Origin::Local => (peer, local),
    })
}

/// Reads one PROXY header, v1 or v2, and exactly its bytes.
pub async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> Result<Origin, ProxyError> {
    let mut buf = vec![0u8; PROBE];
    read_exact(stream, &mut buf).await?;
    if buf.starts_with(b"PROXY ") {
        // v1 ends at its LF; a byte at a time, so nothing after it is taken.
        while buf.last() != Some(&b'\n') {
            if buf.len() >= V1_MAX {
                return Err(ProxyError::TooLong(V1_MAX));
            }
            let mut byte = [0u8; 1];
            read_exact(stream, &mut byte).await?;
            buf.push(byte[0]);
        }
        parse_v1(&buf)
    } else if buf[..] == v2::PROTOCOL_PREFIX[..PROBE] {
        buf.resize(V2_FIXED, 0);
        read_exact(stream, &mut buf[PROBE..]).await?;
        let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if len > V2_MAX_PAYLOAD {
            return Err(ProxyError::TooLong(V2_FIXED + V2_MAX_PAYLOAD));
        }
        buf.resize(V2_FIXED + len, 0);
        read_exact(stream, &mut buf[V2_FIXED..]).await?;
        parse_v2(&buf)
    } else {
        Err(ProxyError::Missing)
    }
}

async fn read_exact<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
) -> Result<(), ProxyError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ProxyError::Eof),
        Err(e) => Err(ProxyError::Io(e)),
    }
}

/// A complete v1 header, CRLF included and nothing after it.
pub fn parse_v1(header: &[u8]) -> Result<Origin, ProxyError> {
    let parsed = v1::Header::try_from(header).map_err(|e| ProxyError::V1(e.to_string()))?;
    if parsed.header.len() != header.len() {
        return Err(ProxyError::V1("bytes after the CRLF".into()));
    }
    Ok(match parsed.addresses {
        v1::Addresses::Tcp4(a) => a.into(),
        v1::Addresses::Tcp6(a) => a.into(),
        v1::Addresses::Unknown => Origin::Local,
    })
}

/// A complete v2 header: fixed part, addresses and TLVs, nothing after.
pub fn parse_v2(header: &[u8]) -> Result<Origin, ProxyError> {
    let parsed = v2::Header::try_from(header).map_err(|e| ProxyError::V2(e.to_string()))?;
    if parsed.len() != header.len() {
        return Err(ProxyError::V2("length field does not match".into()));
    }
    if parsed.command == v2::Command::Local {
        return Ok(Origin::Local);
    }
    Ok(match parsed.addresses {
        v2::Addresses::IPv4(a) => a.into(),
        v2::Addresses::IPv6(a) => a.into(),
        // The specification: keep the real connection's addresses.
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => Origin::Local,
    })
}

// Both versions' address blocks are the crate's one IPv4 / IPv6 type.
impl From<v1::IPv4> for Origin {
    fn from(a: v1::IPv4) -> Origin {
        Origin::Proxied {
            source: SocketAddr::new(a.source_address.into(), a.source_port),
            destination: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }
    }
}

impl From<v1::IPv6> for Origin {
    fn from(a: v1::IPv6) -> Origin {
        Origin::Proxied {
            source: SocketAddr::new(a.source_address.into(), a.source_port),
            destination: SocketAddr::new(a.destination_address.into(), a.destination_port),
        }
    }
}

/// An IPv4 client seen by a dual-stack balancer (`::ffff:192.0.2.1`) is
/// the IPv4 client everywhere (Received, limits, SPF).
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
