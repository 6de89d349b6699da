//! The records `tern doctor` tells the operator to publish, as zone-file
//! lines (`name. IN TYPE data`, names absolute), and the values it
//! proposes for the policy records.

use crate::mailauth::keygen::txt_strings;
use std::net::IpAddr;

/// `name. IN TXT "value"` (long values as several character strings).
pub(super) fn txt(name: &str, value: &str) -> String {
    format!(
        "{}. IN TXT {}",
        name.trim_end_matches('.'),
        txt_strings(value).join(" ")
    )
}

pub(super) fn mx(domain: &str, host: &str) -> String {
    format!("{domain}. IN MX 10 {host}.")
}

/// The A or AAAA record of `host` for `ip`.
pub(super) fn address(host: &str, ip: IpAddr) -> String {
    let rtype = if ip.is_ipv4() { "A" } else { "AAAA" };
    format!("{host}. IN {rtype} {ip}")
}

/// The PTR record of `ip` (in `in-addr.arpa` or `ip6.arpa`) naming `host`.
pub(super) fn ptr(ip: IpAddr, host: &str) -> String {
    let name = hickory_resolver::proto::rr::Name::from(ip).to_ascii();
    format!("{}. IN PTR {host}.", name.trim_end_matches('.'))
}

/// The SPF mechanism that authorises exactly `ip`.
pub(super) fn spf_mechanism(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip4:{v4}"),
        IpAddr::V6(v6) => format!("ip6:{v6}"),
    }
}

/// Is `ip` an address other hosts on the Internet can reach (not
/// loopback, private, link-local, shared or unspecified)?
pub(super) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_zone_file_lines() {
        assert_eq!(
            txt("example.test", "v=spf1 ip4:192.0.2.1 -all"),
            "example.test. IN TXT \"v=spf1 ip4:192.0.2.1 -all\""
        );
        assert_eq!(
            ptr("192.0.2.1".parse().unwrap(), "mx.example.test"),
            "1.2.0.192.in-addr.arpa. IN PTR mx.example.test."
        );
        assert!(
            ptr("2001:db8::1".parse().unwrap(), "mx.example.test").starts_with(
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. IN PTR"
            )
        );
        assert_eq!(
            address("mx.example.test", "2001:db8::1".parse().unwrap()),
            "mx.example.test. IN AAAA 2001:db8::1"
        );
        let long = txt("k._domainkey.example.test", &"A".repeat(300));
        assert_eq!(long.matches('"').count(), 4, "{long}");
    }

    #[test]
    fn public_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.1", "8.8.8.8", "2001:db8::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
