//! The server's name and addresses: `hostname` must be a fully qualified
//! name with A/AAAA records, and those records must list the public
//! addresses the `smtp` listeners bind. Also decides which addresses the
//! other checks (PTR, SPF) take as "ours": a listener's own address when
//! it is public; for a wildcard listener (`0.0.0.0`, `[::]`) or one on a
//! private or loopback address (a NAT or proxy in front), the addresses
//! `hostname` resolves to — and says which it used and why.

use super::records::{address, is_public};
use super::{Doctor, records};
use crate::config::Protocol;
use crate::dns::DnsError;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The checks of the host name; returns the addresses that are ours.
pub(super) async fn check(d: &mut Doctor<'_>) -> Vec<IpAddr> {
    let host = d.hostname.clone();
    if !host.contains('.') || host.parse::<IpAddr>().is_ok() {
        d.error(
            "a",
            &host,
            "hostname is not a fully qualified domain name: set `hostname` in the config to the \
             name the MX records will point at (such as mx.example.org)"
                .into(),
            None,
        );
    }
    let published = match d.dns.ip_addrs(&host).await {
        Ok(list) => list,
        Err(DnsError::NotFound) => Vec::new(),
        Err(e) => {
            d.warning("a", &host, format!("A/AAAA look-up failed: {e}"), None);
            Vec::new()
        }
    };
    let smtp: Vec<SocketAddr> = d
        .config
        .listen
        .iter()
        .filter(|l| l.protocol == Protocol::Smtp)
        .map(|l| l.address)
        .collect();
    let mut ours: Vec<IpAddr> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if smtp.is_empty() {
        d.warning(
            "addresses",
            &host,
            "no smtp listener: other servers cannot deliver mail here; checking the addresses \
             of the host name"
                .into(),
            None,
        );
        ours.extend(&published);
    }
    for listener in &smtp {
        let ip = listener.ip();
        if is_public(ip) {
            ours.push(ip);
            notes.push(format!("listener {listener}"));
        } else if published.is_empty() {
            notes.push(format!(
                "listener {listener} skipped: not a public address, and {host} has no A/AAAA \
                 to check instead"
            ));
        } else {
            let why = if ip.is_unspecified() {
                "listens on every address"
            } else {
                "is not a public address (a NAT or proxy in front?)"
            };
            // 0.0.0.0 takes IPv4 only; [::] both (dual stack).
            let v4_only = ip == IpAddr::from([0, 0, 0, 0]);
            ours.extend(published.iter().filter(|a| !v4_only || a.is_ipv4()));
            notes.push(format!(
                "listener {listener} {why}: used the A/AAAA records of {host}"
            ));
        }
    }
    ours.sort();
    ours.dedup();
    address_records(d, &host, &published, &smtp);
    let list: Vec<String> = ours.iter().map(IpAddr::to_string).collect();
    if ours.is_empty() {
        d.warning(
            "addresses",
            &host,
            format!("no address to check PTR and SPF for ({})", notes.join("; ")),
            None,
        );
    } else {
        d.ok(
            "addresses",
            &host,
            format!("checking {} ({})", list.join(", "), notes.join("; ")),
        );
    }
    ours
}

/// `hostname`'s A/AAAA records: present, and listing every public
/// address an smtp listener binds.
fn address_records(d: &mut Doctor<'_>, host: &str, published: &[IpAddr], smtp: &[SocketAddr]) {
    let bound: Vec<IpAddr> = smtp
        .iter()
        .map(SocketAddr::ip)
        .filter(|ip| !ip.is_unspecified())
        .collect();
    if published.is_empty() {
        // A private or loopback listener sits behind a NAT or proxy: its
        // own address is no use to others.
        let mut suggest: Vec<IpAddr> = bound.iter().copied().filter(|ip| is_public(*ip)).collect();
        if suggest.is_empty() {
            suggest.extend([false, true].into_iter().filter_map(local_address));
        }
        let publish = if suggest.is_empty() {
            format!("{host}. IN A <this server's public IPv4 address>")
        } else {
            suggest
                .iter()
                .map(|ip| address(host, *ip))
                .collect::<Vec<_>>()
                .join("\n")
        };
        d.error(
            "a",
            host,
            "no A or AAAA record: other servers cannot find this host".into(),
            Some(publish),
        );
        return;
    }
    let missing: Vec<IpAddr> = bound
        .iter()
        .copied()
        .filter(|ip| is_public(*ip) && !published.contains(ip))
        .collect();
    let list: Vec<String> = published.iter().map(IpAddr::to_string).collect();
    let unreachable: Vec<String> = published
        .iter()
        .filter(|ip| !is_public(**ip))
        .map(IpAddr::to_string)
        .collect();
    if !unreachable.is_empty() {
        let loopback = published.iter().any(|ip| ip.is_loopback() || ip.is_unspecified());
        let message = format!(
            "A/AAAA {}: {} is not a public address, which other servers cannot reach",
            list.join(", "),
            unreachable.join(", ")
        );
        if loopback {
            d.error("a", host, message, None);
        } else {
            d.warning("a", host, message, None);
        }
    } else if missing.is_empty() {
        d.ok("a", host, format!("A/AAAA {}", list.join(", ")));
    } else {
        let names: Vec<String> = missing.iter().map(IpAddr::to_string).collect();
        d.error(
            "a",
            host,
            format!(
                "A/AAAA {} do not include the listener address {}",
                list.join(", "),
                names.join(", ")
            ),
            Some(
                missing
                    .iter()
                    .map(|ip| records::address(host, *ip))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        );
    }
}

/// The public address this machine sends from (the source address the
/// kernel picks for a route to the Internet; no packet is sent), as a
/// suggestion when the host name has no address record at all.
fn local_address(v6: bool) -> Option<IpAddr> {
    let (bind, peer) = if v6 {
        ("[::]:0", "[2001:db8::1]:25")
    } else {
        ("0.0.0.0:0", "192.0.2.1:25")
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(peer).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    is_public(ip).then_some(ip)
}
