//! What Tern's shipped plugins share: reading their `config` values, which
//! are all strings. Durations (`"90s"`, `"5m"`), rates (`"10/1m"`), lists
//! (`"a, b c"`), networks (`"192.0.2.0/24"`, `"2001:db8::/32"`), address
//! patterns (`bob@example.test`, `@example.test`, `example.test`,
//! `.example.test`, `*.example.test`, `b*b@*`) and the client network a
//! greylist or a rate limit keys on. Pure functions, no host calls, so the
//! unit tests run natively (`tests/test-plugins` includes this file in the
//! host workspace's test run).

use std::net::IpAddr;

/// Seconds in a duration like `"90s"`, `"5m"`, `"4h"`, `"5d"`, `"1w"` or a
/// bare number of seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 90s, 5m, 4h, 5d)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: unknown unit (use s, m, h, d or w)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Bytes in a size like `"25MiB"`, `"512KiB"`, `"10MB"`, `"1GiB"` or a
/// bare number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (like 10MiB)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(format!("{text:?}: unknown unit (use KiB, MiB, GiB)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A duration as people write it (`"5 minutes"`), for reply texts.
pub fn describe_duration(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// At most `count` events per `window` seconds (`"10/1m"`, `"500/1d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub window: u64,
}

pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let (count, window) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a rate (like 10/1m)"))?;
    let count = count
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {count:?} is not a count"))?;
    let window = parse_duration(window)?;
    if window == 0 {
        return Err(format!("{text:?}: the window must be longer than 0"));
    }
    Ok(Rate { count, window })
}

/// The items of a list value: separated by commas and/or white space,
/// trimmed, empty ones dropped.
pub fn list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A network: an address and a prefix length (a bare address is a /32 or
/// /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let t = text.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let address: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: bad prefix length"))?,
            None => max,
        };
        Ok(Network { address, prefix })
    }

    /// Does the network hold `ip`? (IPv4-mapped IPv6 addresses count as IPv4.)
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// `::ffff:192.0.2.1` as `192.0.2.1`; anything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Parses a list of networks; the error names the first bad one.
pub fn networks(text: &str) -> Result<Vec<Network>, String> {
    list(text).iter().map(|n| Network::parse(n)).collect()
}

/// The network a client is judged by: its /`v4` (IPv4) or /`v6` (IPv6)
/// network as `address/prefix` text (`192.0.2.0/24`, `2001:db8:1:2::/64`).
pub fn client_network(ip: IpAddr, v4: u8, v6: u8) -> String {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let p = v4.min(32);
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask32(p));
            format!("{net}/{p}")
        }
        IpAddr::V6(a) => {
            let p = v6.min(128);
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask128(p));
            format!("{net}/{p}")
        }
    }
}

/// `(local, domain)` of `local@domain`, the domain lower-cased; the
/// domain is empty when there is no `@` (the null sender, `postmaster`).
pub fn split_address(address: &str) -> (&str, String) {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    match a.rsplit_once('@') {
        Some((l, d)) => (l, d.to_ascii_lowercase()),
        None => (a, String::new()),
    }
}

/// Does `domain` equal `parent` or lie below it?
pub fn in_domain(domain: &str, parent: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let p = parent.trim_end_matches('.').to_ascii_lowercase();
    d == p || d.ends_with(&format!(".{p}"))
}

/// Case-insensitive glob: `*` any run of characters, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A pattern for an address or a host name, as the access lists write them:
/// - `bob@example.test`: that address;
/// - `@example.test` or `example.test`: any address in that domain (or, for
///   a name, that name);
/// - `.example.test`: the domain's subdomains (not the domain itself);
/// - anything with `*` or `?`: a glob over the whole address or name;
/// - `<>`: the null sender.
///
/// All case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Address(String),
    Domain(String),
    Subdomains(String),
    Glob(String),
}

impl Pattern {
    pub fn parse(text: &str) -> Pattern {
        let t = text.trim().to_ascii_lowercase();
        if t == "<>" {
            Pattern::Address(String::new())
        } else if t.contains(['*', '?']) {
            Pattern::Glob(t)
        } else if let Some(d) = t.strip_prefix('@') {
            Pattern::Domain(d.to_string())
        } else if let Some(d) = t.strip_prefix('.') {
            Pattern::Subdomains(d.to_string())
        } else if t.contains('@') {
            Pattern::Address(t)
        } else {
            Pattern::Domain(t)
        }
    }

    /// Does an address (`local@domain`, or `""` for the null sender) match?
    pub fn matches_address(&self, address: &str) -> bool {
        let a = address.trim().to_ascii_lowercase();
        let (_, domain) = split_address(&a);
        match self {
            Pattern::Address(p) => *p == a,
            Pattern::Domain(d) => !domain.is_empty() && domain == *d,
            Pattern::Subdomains(d) => domain.ends_with(&format!(".{d}")),
            Pattern::Glob(g) => glob(g, &a),
        }
    }

    /// Does a host name (a HELO argument) match?
    pub fn matches_name(&self, name: &str) -> bool {
        let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
        match self {
            Pattern::Address(p) => *p == n,
            Pattern::Domain(d) => n == *d,
            Pattern::Subdomains(d) => n.ends_with(&format!(".{d}")),
            Pattern::Glob(g) => glob(g, &n),
        }
    }
}

/// Parses a list of patterns.
pub fn patterns(text: &str) -> Vec<Pattern> {
    list(text).iter().map(|p| Pattern::parse(p)).collect()
}

/// The name a DNS list is asked about for `ip` under `zone`: the IPv4
/// octets reversed (`2.0.0.127.zone`) or the 32 IPv6 nibbles reversed.
pub fn dnsbl_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim().trim_matches('.');
    match canonical(ip) {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.{zone}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut name = String::with_capacity(64 + zone.len());
            for byte in a.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str(zone);
            name
        }
    }
}

/// A boolean config value: `yes`/`true`/`on`/`1` or `no`/`false`/`off`/`0`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("{text:?} is not yes or no")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration(" 4h "), Ok(14_400));
        assert_eq!(parse_duration("35d"), Ok(35 * 86_400));
        assert_eq!(parse_duration("2"), Ok(2));
        assert!(parse_duration("5x").is_err() && parse_duration("m").is_err());
        assert_eq!(
            parse_rate("10/1m"),
            Ok(Rate {
                count: 10,
                window: 60
            })
        );
        assert!(parse_rate("10").is_err() && parse_rate("10/0s").is_err());
        assert_eq!(describe_duration(300), "5 minutes");
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("1 parsec").is_err());
        assert_eq!(describe_duration(1), "1 second");
        assert_eq!(describe_duration(90), "90 seconds");
    }

    #[test]
    fn networks_contain_addresses() {
        let n = Network::parse("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.200".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let host = Network::parse("127.0.0.2").unwrap();
        assert!(host.contains("127.0.0.2".parse().unwrap()));
        assert!(!host.contains("127.0.0.1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_err() && Network::parse("nope").is_err());
        assert_eq!(
            client_network("192.0.2.77".parse().unwrap(), 24, 64),
            "192.0.2.0/24"
        );
        assert_eq!(
            client_network("2001:db8:1:2:3:4:5:6".parse().unwrap(), 24, 64),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn dnsbl_names_reverse_the_address() {
        assert_eq!(
            dnsbl_name("192.0.2.7".parse().unwrap(), "zen.test."),
            "7.2.0.192.zen.test"
        );
        assert_eq!(
            dnsbl_name("2001:db8::1".parse().unwrap(), "bl.test"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"
        );
        assert_eq!(
            dnsbl_name("::ffff:10.1.2.3".parse().unwrap(), "x"),
            "3.2.1.10.x"
        );
    }

    #[test]
    fn patterns_match() {
        let m = |p: &str, a: &str| Pattern::parse(p).matches_address(a);
        assert!(m("Bob@Example.test", "bob@example.TEST"));
        assert!(m("@example.test", "x@example.test") && m("example.test", "x@example.test"));
        assert!(!m("@example.test", "x@sub.example.test"));
        assert!(m(".example.test", "x@sub.example.test") && !m(".example.test", "x@example.test"));
        assert!(m("*@*.spam.test", "a@b.spam.test") && !m("*@*.spam.test", "a@spam.test"));
        assert!(m("b?b@*", "bob@x.test") && !m("b?b@*", "boob@x.test"));
        assert!(!m("example.test", ""));
        assert!(m("<>", "") && !m("<>", "a@b.test"));
        assert!(Pattern::parse("*.dyn.test").matches_name("host-1.dyn.test"));
        assert!(Pattern::parse("mail.example.test").matches_name("MAIL.example.test."));
        assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
        assert!(glob("*", "") && !glob("?", ""));
        assert_eq!(list(" a, b  c,,"), vec!["a", "b", "c"]);
        assert!(in_domain("a.b.test", "b.test") && !in_domain("ab.test", "b.test"));
    }
}
