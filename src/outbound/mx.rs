//! Next hops for a destination domain (RFC 5321 section 5): MX records by
//! preference with equal preferences shuffled, the domain's own addresses
//! when there is no MX (implicit MX), null MX (RFC 7505) as a permanent
//! refusal, address literals as themselves; or the configured smarthost.

use crate::dns::{Dns, DnsError, is_null_mx};
use rand::seq::SliceRandom;
use std::net::{IpAddr, SocketAddr};

/// One host to try, with its addresses in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub host: String,
    pub addrs: Vec<SocketAddr>,
    pub preference: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("{0} does not accept mail (null MX)")]
    NullMx(String),
    #[error("domain {0} not found")]
    NoDomain(String),
    #[error("no address found for the mail exchangers of {0}")]
    NoAddresses(String),
    #[error("DNS look-up for {0} failed: {1}")]
    Temporary(String, String),
    #[error("bad smarthost {0:?}")]
    BadSmarthost(String),
}

impl RouteError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, RouteError::NullMx(_) | RouteError::NoDomain(_))
    }

    pub fn enhanced(&self) -> &'static str {
        match self {
            RouteError::NullMx(_) => "5.1.10",
            RouteError::NoDomain(_) => "5.1.2",
            RouteError::NoAddresses(_) => "4.4.4",
            RouteError::Temporary(..) => "4.4.3",
            RouteError::BadSmarthost(_) => "4.3.5",
        }
    }
}

#[derive(Clone)]
pub struct MxResolver {
    dns: Dns,
}

fn literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner.strip_prefix("IPv6:").unwrap_or(inner);
    inner.parse().ok()
}

impl MxResolver {
    pub fn new(dns: Dns) -> MxResolver {
        MxResolver { dns }
    }

    /// The hops for `domain`, most preferred first.
    pub async fn resolve(&self, domain: &str, port: u16) -> Result<Vec<NextHop>, RouteError> {
        if let Some(ip) = literal(domain) {
            return Ok(vec![NextHop {
                host: domain.to_string(),
                addrs: vec![SocketAddr::new(ip, port)],
                preference: 0,
            }]);
        }
        let records = match self.dns.mx(domain).await {
            Ok(r) => r,
            Err(DnsError::NotFound) => Vec::new(),
            Err(e) => return Err(RouteError::Temporary(domain.to_string(), e.to_string())),
        };
        if is_null_mx(&records) {
            return Err(RouteError::NullMx(domain.to_string()));
        }
        if records.is_empty() {
            return match self.dns.ip_addrs(domain).await {
                Ok(ips) => Ok(vec![NextHop {
                    host: domain.to_string(),
                    addrs: ips
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect(),
                    preference: 0,
                }]),
                Err(DnsError::NotFound) => Err(RouteError::NoDomain(domain.to_string())),
                Err(e) => Err(RouteError::Temporary(domain.to_string(), e.to_string())),
            };
        }
        let mut records = records;
        records.shuffle(&mut rand::rng());
        records.sort_by_key(|(pref, _)| *pref); // stable: equal preferences stay shuffled
        let mut hops = Vec::new();
        let mut temporary = None;
        for (preference, host) in records {
            match self.dns.ip_addrs(&host).await {
                Ok(ips) => hops.push(NextHop {
                    addrs: ips
                        .into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect(),
                    host,
                    preference,
                }),
                Err(DnsError::NotFound) => {
                    tracing::info!(domain, mx = %host, "MX host has no address; skipped")
                }
                Err(e) => temporary = Some(e.to_string()),
            }
        }
        if hops.is_empty() {
            return Err(match temporary {
                Some(e) => RouteError::Temporary(domain.to_string(), e),
                None => RouteError::NoAddresses(domain.to_string()),
            });
        }
        Ok(hops)
    }

    /// The hops for a `host:port` smarthost.
    pub async fn smarthost(&self, spec: &str) -> Result<Vec<NextHop>, RouteError> {
        let (host, port) = spec
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h, p)))
            .ok_or_else(|| RouteError::BadSmarthost(spec.to_string()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .dns
                .ip_addrs(host)
                .await
                .map_err(|e| RouteError::Temporary(host.to_string(), e.to_string()))?,
        };
        Ok(vec![NextHop {
            host: host.to_string(),
            addrs: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            preference: 0,
        }])
    }
}
