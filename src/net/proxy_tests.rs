//! The PROXY header reader on byte strings: both versions and every
//! address form, exactly the header's bytes taken, and each way a header
//! is refused. v2 headers are written out byte by byte from the
//! specification here, not with the parsing crate's own builder.

use super::*;
use tokio::io::AsyncReadExt;

const V2_SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIG.to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn v2_tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, tlvs: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(tlvs);
    v2(1, 0x11, &p)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// Reads a header off `input`; returns it and what is left for the session.
async fn read(input: &[u8]) -> (Result<Origin, ProxyError>, Vec<u8>) {
    let mut r = input;
    let origin = read_header(&mut r).await;
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).await.expect("rest");
    (origin, rest)
}

const PEER: &str = "127.0.0.1:40000";
const LOCAL: &str = "127.0.0.1:25";

async fn admit_bytes(input: &[u8]) -> Result<(SocketAddr, SocketAddr), ProxyError> {
    let loopback: IpNet = "127.0.0.1/32".parse().expect("net");
    let mut r = input;
    admit(&mut r, addr(PEER), addr(LOCAL), &[loopback]).await
}

#[tokio::test]
async fn v1_tcp4_names_the_client_and_leaves_the_session_bytes() {
    let (origin, rest) = read(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n").await;
    assert_eq!(
        origin.expect("parsed"),
        Origin::Proxied {
            source: addr("192.0.2.7:56324"),
            destination: addr("198.51.100.1:25"),
        }
    );
    assert_eq!(rest, b"EHLO x\r\n");
}

#[tokio::test]
async fn v1_tcp6_and_a_mapped_ipv4_client() {
    let (origin, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 1234 993\r\n").await;
    assert_eq!(
        origin.expect("parsed"),
        Origin::Proxied {
            source: addr("[2001:db8::7]:1234"),
            destination: addr("[2001:db8::1]:993"),
        }
    );
    let (client, local) = admit_bytes(b"PROXY TCP6 ::ffff:192.0.2.9 ::ffff:198.51.100.1 5 25\r\n")
        .await
        .expect("admitted");
    assert_eq!(client, addr("192.0.2.9:5"));
    assert_eq!(local, addr("198.51.100.1:25"));
}

#[tokio::test]
async fn v1_unknown_keeps_the_real_peer() {
    let (origin, rest) = read(b"PROXY UNKNOWN\r\n* OK").await;
    assert_eq!(origin.expect("parsed"), Origin::Local);
    assert_eq!(rest, b"* OK");
    let long = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(long.len(), 107);
    let (client, local) = admit_bytes(long).await.expect("admitted");
    assert_eq!((client, local), (addr(PEER), addr(LOCAL)));
}

#[tokio::test]
async fn v2_ipv4_with_tlvs_and_the_bytes_after_it() {
    // Two TLVs: PP2_TYPE_ALPN "smtp" and PP2_TYPE_NOOP of 3 bytes.
    let tlvs = [0x01, 0, 4, b's', b'm', b't', b'p', 0x04, 0, 3, 0, 0, 0];
    let mut input = v2_tcp4([203, 0, 113, 5], [10, 0, 0, 1], 40001, 465, &tlvs);
    input.extend_from_slice(b"\x16\x03\x01 client hello");
    let (origin, rest) = read(&input).await;
    assert_eq!(
        origin.expect("parsed"),
        Origin::Proxied {
            source: addr("203.0.113.5:40001"),
            destination: addr("10.0.0.1:465"),
        }
    );
    assert_eq!(rest, b"\x16\x03\x01 client hello");
}

#[tokio::test]
async fn v2_ipv6() {
    let src: std::net::Ipv6Addr = "2001:db8::42".parse().expect("ip");
    let dst: std::net::Ipv6Addr = "2001:db8::1".parse().expect("ip");
    let mut p = Vec::new();
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&1111u16.to_be_bytes());
    p.extend_from_slice(&143u16.to_be_bytes());
    let (client, local) = admit_bytes(&v2(1, 0x21, &p)).await.expect("admitted");
    assert_eq!(client, addr("[2001:db8::42]:1111"));
    assert_eq!(local, addr("[2001:db8::1]:143"));
}

#[tokio::test]
async fn v2_local_and_unspec_keep_the_real_peer() {
    // LOCAL (a health check) with addresses anyway: they are ignored.
    let mut local_cmd = v2_tcp4([192, 0, 2, 1], [192, 0, 2, 2], 1, 2, &[]);
    local_cmd[12] = 0x20;
    assert_eq!(
        admit_bytes(&local_cmd).await.expect("admitted"),
        (addr(PEER), addr(LOCAL))
    );
    assert_eq!(
        admit_bytes(&v2(0, 0x00, &[])).await.expect("admitted"),
        (addr(PEER), addr(LOCAL))
    );
    assert_eq!(
        admit_bytes(&v2(1, 0x00, &[])).await.expect("admitted"),
        (addr(PEER), addr(LOCAL))
    );
}

#[tokio::test]
async fn a_peer_outside_proxy_sources_is_refused_before_reading() {
    let loopback: IpNet = "127.0.0.1/32".parse().expect("net");
    let input = b"PROXY TCP4 192.0.2.7 198.51.100.1 1 25\r\n";
    let mut r = &input[..];
    let e = admit(&mut r, addr("127.0.0.9:5000"), addr(LOCAL), &[loopback])
        .await
        .expect_err("refused");
    assert!(matches!(e, ProxyError::Untrusted(ip) if ip == addr("127.0.0.9:5000").ip()));
    assert_eq!(r.len(), input.len(), "nothing read from an untrusted peer");
    let mut r = &input[..];
    let e = admit(&mut r, addr(PEER), addr(LOCAL), &[])
        .await
        .expect_err("no sources: nobody may");
    assert!(matches!(e, ProxyError::Untrusted(_)));
}

#[tokio::test]
async fn missing_malformed_truncated_and_oversized_headers_are_refused() {
    let missing = read(b"EHLO client.example\r\n").await.0;
    assert!(matches!(missing, Err(ProxyError::Missing)), "{missing:?}");
    let tls = read(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .await
        .0;
    assert!(matches!(tls, Err(ProxyError::Missing)), "{tls:?}");
    for bad in [
        &b"PROXY TCP4 192.0.2.7\r\n"[..],
        b"PROXY TCP4 300.0.2.7 198.51.100.1 1 25\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 1 99999\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 01 25\r\n",
        b"PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n",
        b"PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 1 25\n",
    ] {
        let r = read(bad).await.0;
        assert!(
            matches!(r, Err(ProxyError::V1(_))),
            "{:?}: {r:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let endless = [b"PROXY TCP4 ".to_vec(), vec![b'1'; 200]].concat();
    assert!(matches!(
        read(&endless).await.0,
        Err(ProxyError::TooLong(107))
    ));
    let truncated = read(b"PROXY TCP4 192.0.2.7 198.5").await.0;
    assert!(matches!(truncated, Err(ProxyError::Eof)), "{truncated:?}");
    let short = read(b"PROX").await.0;
    assert!(matches!(short, Err(ProxyError::Eof)), "{short:?}");

    // v2: version 1 in the version nibble, an unknown command, a length
    // too short for the addresses, more than the bound, a cut payload.
    let mut bad_version = v2_tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, &[]);
    bad_version[12] = 0x11;
    assert!(matches!(read(&bad_version).await.0, Err(ProxyError::V2(_))));
    let mut bad_command = v2_tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, &[]);
    bad_command[12] = 0x2f;
    assert!(matches!(read(&bad_command).await.0, Err(ProxyError::V2(_))));
    let r = read(&v2(1, 0x11, &[1, 2, 3, 4])).await.0;
    assert!(matches!(r, Err(ProxyError::V2(_))), "{r:?}");
    let huge = v2(1, 0x11, &vec![0u8; 4000]);
    let r = read(&huge).await.0;
    assert!(matches!(r, Err(ProxyError::TooLong(_))), "{r:?}");
    let whole = v2_tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2, &[]);
    let r = read(&whole[..20]).await.0;
    assert!(matches!(r, Err(ProxyError::Eof)), "{r:?}");
}
