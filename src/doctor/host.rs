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
    if smtp.is_empty() {
        d.warning(
            "addresses",
            &host,
            "no smtp listener: other servers cannot deliver mail here; checking the addresses \
             of the host name"
                .into(),
            None,
        );
    }
    let (ours, notes) = choose(&smtp, &published, &host);
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

/// The addresses that are ours, given the smtp listeners and the
/// A/AAAA records of `host`, with a note per listener saying which
/// addresses it gave (or that it was skipped) and why.
fn choose(smtp: &[SocketAddr], published: &[IpAddr], host: &str) -> (Vec<IpAddr>, Vec<String>) {
    let mut ours: Vec<IpAddr> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if smtp.is_empty() {
        ours.extend(published);
    }
    for listener in smtp {
        let ip = listener.ip();
        // 0.0.0.0 takes IPv4 only; [::] both (dual stack).
        let v4_only = ip == IpAddr::from([0, 0, 0, 0]);
        let usable: Vec<IpAddr> = published
            .iter()
            .copied()
            .filter(|a| !v4_only || a.is_ipv4())
            .collect();
        if is_public(ip) {
            ours.push(ip);
            notes.push(format!("listener {listener}"));
        } else if usable.is_empty() {
            notes.push(format!(
                "listener {listener} skipped: not a public address, and {host} has no \
                 {} to check instead",
                if v4_only { "A record" } else { "A/AAAA" }
            ));
        } else {
            let why = if ip.is_unspecified() {
                "listens on every address"
            } else {
                "is not a public address (a NAT or proxy in front?)"
            };
            ours.extend(&usable);
            notes.push(format!(
                "listener {listener} {why}: used the A/AAAA records of {host}"
            ));
        }
    }
    ours.sort();
    ours.dedup();
    (ours, notes)
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
        let loopback = published
            .iter()
            .any(|ip| ip.is_loopback() || ip.is_unspecified());
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

#[cfg(test)]
mod tests {
    use super::choose;
    use std::net::{IpAddr, SocketAddr};

    fn addrs(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn listen(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn wildcard_and_private_listeners_use_the_host_records_and_say_so() {
        let published = addrs(&["192.0.2.10", "2001:db8::10"]);
        let (ours, notes) = choose(&listen(&["0.0.0.0:25"]), &published, "mx.example.test");
        assert_eq!(ours, addrs(&["192.0.2.10"]));
        assert_eq!(
            notes,
            [
                "listener 0.0.0.0:25 listens on every address: used the A/AAAA records of mx.example.test"
            ]
        );
        let (ours, _) = choose(&listen(&["[::]:25"]), &published, "mx.example.test");
        assert_eq!(ours, published);
        let (ours, notes) = choose(&listen(&["10.0.0.5:25"]), &published, "mx.example.test");
        assert_eq!(ours, published);
        assert!(
            notes[0].contains("not a public address (a NAT or proxy in front?)"),
            "{notes:?}"
        );
    }

    #[test]
    fn public_listeners_are_taken_as_they_are_and_unusable_ones_skipped() {
        let (ours, notes) = choose(
            &listen(&["198.51.100.7:25", "127.0.0.1:25"]),
            &[],
            "mx.example.test",
        );
        assert_eq!(ours, addrs(&["198.51.100.7"]));
        assert_eq!(notes[0], "listener 198.51.100.7:25");
        assert!(
            notes[1].starts_with("listener 127.0.0.1:25 skipped"),
            "{notes:?}"
        );
        let (ours, notes) = choose(
            &listen(&["0.0.0.0:25"]),
            &addrs(&["2001:db8::10"]),
            "mx.example.test",
        );
        assert!(ours.is_empty());
        assert!(
            notes[0].contains("skipped") && notes[0].contains("no A record"),
            "{notes:?}"
        );
    }
}
