//! Outgoing connections a plugin is granted (`[[plugin]] connect = ["host:port",
//! …]`), through WASI sockets: which imports need a grant (a component
//! importing `wasi:sockets` or `wasi:http` without one is refused at load
//! and by `check-config`, naming the imports), and the check wasmtime-wasi
//! asks before every bind and connect. A grant names a host (an IP address or a name) and a
//! port; a name is resolved through Tern's resolver at the moment of the
//! connect, and the guest may connect only to the addresses it resolves
//! to, so a name granted is never a way to reach some other address. Only
//! TCP: no UDP, no listening, no accepting, and `wasi:sockets/ip-name-lookup`
//! is off (guests resolve through `tern:plugin/dns`, which is Tern's
//! resolver). How many sockets a plugin holds at once is bounded in
//! `held.rs`; the call's deadline covers its I/O (host calls are awaited
//! under the plugin's timeout).

use crate::dns::Dns;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use wasmtime_wasi::sockets::SocketAddrUse;

/// One `connect` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    /// An address, or a name (lower case, without a final dot).
    host: Host,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

/// A plugin's grants.
#[derive(Debug, Default)]
pub struct Grants {
    connect: Vec<Grant>,
}

impl Grants {
    /// Parses `connect` entries: `host:port`, `[v6]:port`.
    pub fn parse(connect: &[String]) -> Result<Grants, String> {
        let connect = connect
            .iter()
            .map(|entry| parse_entry(entry))
            .collect::<Result<_, _>>()?;
        Ok(Grants { connect })
    }

    pub fn is_empty(&self) -> bool {
        self.connect.is_empty()
    }

    /// wasmtime-wasi's socket check: implicit binds (wildcard, port 0)
    /// for a connect are allowed; a connect only to a granted address;
    /// nothing else.
    pub async fn allows(&self, addr: SocketAddr, usage: SocketAddrUse, dns: &Dns) -> bool {
        match usage {
            SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
            SocketAddrUse::TcpConnect => self.granted(addr, dns).await,
            _ => false,
        }
    }

    /// Whether `addr` is a granted address (a name's, as Tern's resolver
    /// answers now).
    async fn granted(&self, addr: SocketAddr, dns: &Dns) -> bool {
        for g in self.connect.iter().filter(|g| g.port == addr.port()) {
            match &g.host {
                Host::Ip(ip) if *ip == addr.ip() => return true,
                Host::Ip(_) => {}
                Host::Name(name) => {
                    if let Ok(ips) = dns.ip_addrs(name).await
                        && ips.contains(&addr.ip())
                    {
                        return true;
                    }
                }
            }
        }
        false
    }
}

fn parse_entry(entry: &str) -> Result<Grant, String> {
    let bad = |why: &str| format!("connect entry {entry:?}: {why} (want \"host:port\")");
    let (host, port) = entry.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Grant {
            host: Host::Ip(ip),
            port,
        });
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(bad("not an address or a host name"));
    }
    Ok(Grant {
        host: Host::Name(name),
        port,
    })
}

/// `wasi:sockets` imports without a `connect` grant: the component is
/// refused (at load and by `check-config`), naming them. Every
/// `wasi:sockets` interface counts, even `network`, which alone opens
/// nothing: a component that needs no network imports none of it (a
/// runtime that imports sockets unused, CPython's, has them answered by
/// `sdk/no-network` plugged in at build time).
pub fn ungranted_import<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    grants: &Grants,
) -> Option<String> {
    if !grants.is_empty() {
        return None;
    }
    let sockets: Vec<&str> = imports
        .into_iter()
        .filter(|name| name.starts_with("wasi:sockets/"))
        .collect();
    (!sockets.is_empty()).then(|| {
        format!(
            "it imports {}, but its [[plugin]] entry grants no network (connect = [\"host:port\", …]); a component that does not use them can have them answered by sdk/no-network (wac plug, see docs/plugins.md)",
            sockets.join(", ")
        )
    })
}

/// A `wasi:http` import without an `http` grant: the component is refused
/// (at load and by `check-config`), naming the import.
pub fn ungranted_http_import<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    http: &super::http_grant::HttpGrants,
) -> Option<String> {
    if !http.is_empty() {
        return None;
    }
    imports
        .into_iter()
        .find(|name| name.starts_with("wasi:http/"))
        .map(|name| {
            format!(
                "it imports {name}, but its [[plugin]] entry grants no HTTP (http = [\"https://host/path/\", …])"
            )
        })
}

/// The socket check closure for one instance's WASI context.
pub fn socket_check(
    grants: Arc<Grants>,
    dns: Dns,
) -> impl Fn(
    SocketAddr,
    SocketAddrUse,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + Sync>>
+ Send
+ Sync
+ 'static {
    move |addr, usage| {
        let (grants, dns) = (grants.clone(), dns.clone());
        // wasmtime wants a Sync future and the resolver's is not: the check
        // runs as a task of its own (a JoinHandle is Sync); a panic refuses.
        let task = tokio::spawn(async move { grants.allows(addr, usage, &dns).await });
        Box::pin(async move { task.await.unwrap_or(false) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_bad_ones_are_named() {
        let g = Grants::parse(&[
            "127.0.0.1:11333".into(),
            "[::1]:3310".into(),
            "Clamd.Internal.:3310".into(),
        ])
        .unwrap();
        assert_eq!(g.connect[0].host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(g.connect[1].host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(g.connect[2].host, Host::Name("clamd.internal".into()));
        for bad in ["nohost", "x:0", "x:99999", "a b:25", ":25"] {
            let e = Grants::parse(&[bad.into()]).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[tokio::test]
    async fn only_granted_connects_and_no_listening() {
        let dns = Dns::new(
            Some(&["127.0.0.1:9".parse().unwrap()]),
            std::time::Duration::from_millis(200),
        )
        .unwrap();
        let g = Grants::parse(&["127.0.0.1:11333".into()]).unwrap();
        let granted: SocketAddr = "127.0.0.1:11333".parse().unwrap();
        let allows = |addr: &str, usage| {
            let addr: SocketAddr = addr.parse().unwrap();
            let (g, dns) = (&g, &dns);
            async move { g.allows(addr, usage, dns).await }
        };
        assert!(!allows("127.0.0.1:11334", SocketAddrUse::TcpConnect).await);
        assert!(!allows("127.0.0.2:11333", SocketAddrUse::TcpConnect).await);
        assert!(allows("0.0.0.0:0", SocketAddrUse::TcpBind).await);
        assert!(!allows("0.0.0.0:25", SocketAddrUse::TcpBind).await);
        assert!(!allows("127.0.0.1:11333", SocketAddrUse::TcpListen).await);
        assert!(!allows("127.0.0.1:11333", SocketAddrUse::UdpBind).await);
        assert!(g.allows(granted, SocketAddrUse::TcpConnect, &dns).await);
    }

    #[test]
    fn network_imports_without_a_grant_are_named() {
        let none = Grants::default();
        let some = Grants::parse(&["127.0.0.1:1".into()]).unwrap();
        let imports = ["wasi:io/streams@0.2.6", "wasi:sockets/tcp@0.2.6"];
        let e = ungranted_import(imports, &none).unwrap();
        assert!(e.contains("wasi:sockets/tcp@0.2.6"), "{e}");
        assert_eq!(ungranted_import(imports, &some), None);
        let e = ungranted_import(["wasi:sockets/network@0.2.6"], &none).unwrap();
        assert!(e.contains("wasi:sockets/network@0.2.6"), "{e}");
        assert_eq!(ungranted_import(["wasi:io/streams@0.2.6"], &none), None);
    }
}
