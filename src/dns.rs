//! DNS for the whole server, on hickory's resolver: MX, A/AAAA and TXT
//! look-ups through `dns.nameservers` (or the system's resolver), with
//! answers cached for their TTL. The one rule callers rely on: "this name
//! has no such records" (`NotFound`: NXDOMAIN or NODATA) is kept apart from
//! "ask again later" (`Temporary`: timeout, SERVFAIL, refused, network).

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, ResolveErrorKind, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("no such records")]
    NotFound,
    #[error("temporary DNS failure: {0}")]
    Temporary(String),
    #[error("resolver configuration: {0}")]
    Config(String),
}

/// What the DNS says about a domain as a mail domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailDomainStatus {
    HasMx,
    /// A single MX of "." (RFC 7505): the domain accepts no mail.
    NullMx,
    /// No MX, but an A or AAAA (implicit MX).
    HasAddress,
    /// NXDOMAIN, or neither MX nor A nor AAAA.
    NoMailRecords,
}

/// Longest CNAME chain followed when looking for a loop.
const MAX_CNAME_CHAIN: usize = 8;

/// The server's resolver; cheap to clone.
#[derive(Clone)]
pub struct Dns {
    resolver: Arc<TokioResolver>,
}

fn classify(e: ResolveError) -> DnsError {
    if let ResolveErrorKind::Proto(p) = e.kind()
        && let ProtoErrorKind::NoRecordsFound { response_code, .. } = p.kind()
    {
        return match *response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => DnsError::NotFound,
            other => DnsError::Temporary(format!("server answered {other}")),
        };
    }
    DnsError::Temporary(e.to_string())
}

impl Dns {
    /// `None`: the system's configuration; otherwise these servers (UDP and TCP).
    pub fn new(nameservers: Option<&[SocketAddr]>, timeout: Duration) -> Result<Dns, DnsError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match nameservers {
            Some(list) => {
                let mut config = ResolverConfig::new();
                for addr in list {
                    config.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
                    config.add_name_server(NameServerConfig::new(*addr, Protocol::Tcp));
                }
                TokioResolver::builder_with_config(config, provider)
            }
            None => match TokioResolver::builder(provider) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("no usable system resolver configuration ({e}); using defaults");
                    TokioResolver::builder_with_config(
                        ResolverConfig::default(),
                        TokioConnectionProvider::default(),
                    )
                }
            },
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.cache_size = 4096;
        opts.ndots = 0;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        opts.edns0 = true;
        Ok(Dns {
            resolver: Arc::new(builder.build()),
        })
    }

    /// MX records as (preference, exchange without the trailing dot).
    /// `Ok(empty)` when the name exists but has no MX.
    pub async fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>, DnsError> {
        match self.resolver.mx_lookup(fqdn(domain)).await {
            Ok(l) => Ok(l
                .iter()
                .map(|mx| {
                    (
                        mx.preference(),
                        mx.exchange().to_utf8().trim_end_matches('.').to_string(),
                    )
                })
                .collect()),
            Err(e) => match classify(e) {
                DnsError::NotFound => self.unless_cname_loop(domain).await,
                other => Err(other),
            },
        }
    }

    /// A and AAAA addresses (CNAMEs followed).
    pub async fn ip_addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(vec![ip]);
        }
        match self.resolver.lookup_ip(fqdn(host)).await {
            Ok(l) => {
                let v: Vec<IpAddr> = l.iter().collect();
                if v.is_empty() {
                    Err(DnsError::NotFound)
                } else {
                    Ok(v)
                }
            }
            Err(e) => match classify(e) {
                DnsError::NotFound => self.unless_cname_loop(host).await,
                other => Err(other),
            },
        }
    }

    /// "Not found" for `name`, unless its CNAME chain loops or runs too
    /// deep: a broken zone, which may be mended, so "try later" (as
    /// Postfix does) rather than a bounce.
    async fn unless_cname_loop<T>(&self, name: &str) -> Result<T, DnsError> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        let mut seen = vec![fqdn(name).to_ascii_lowercase()];
        for _ in 0..MAX_CNAME_CHAIN {
            let Some(current) = seen.last() else { break };
            let Ok(lookup) = self
                .resolver
                .lookup(current.clone(), RecordType::CNAME)
                .await
            else {
                return Err(DnsError::NotFound);
            };
            let Some(target) = lookup.iter().find_map(|r| match r {
                RData::CNAME(c) => Some(c.0.to_utf8().to_ascii_lowercase()),
                _ => None,
            }) else {
                return Err(DnsError::NotFound);
            };
            if seen.contains(&target) {
                return Err(DnsError::Temporary(format!("CNAME loop at {name}")));
            }
            seen.push(target);
        }
        Err(DnsError::Temporary(format!(
            "CNAME chain too long at {name}"
        )))
    }

    /// TXT records, each joined into one string.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self.resolver.txt_lookup(fqdn(name)).await {
            Ok(l) => Ok(l
                .iter()
                .map(|t| {
                    t.txt_data()
                        .iter()
                        .map(|d| String::from_utf8_lossy(d).into_owned())
                        .collect::<String>()
                })
                .collect()),
            Err(e) => Err(classify(e)),
        }
    }

    /// Is this a domain that can receive mail (for the address checks)?
    pub async fn domain_exists_for_mail(&self, domain: &str) -> Result<MailDomainStatus, DnsError> {
        match self.mx(domain).await {
            Ok(list) if is_null_mx(&list) => Ok(MailDomainStatus::NullMx),
            Ok(list) if !list.is_empty() => Ok(MailDomainStatus::HasMx),
            Ok(_) | Err(DnsError::NotFound) => match self.ip_addrs(domain).await {
                Ok(_) => Ok(MailDomainStatus::HasAddress),
                Err(DnsError::NotFound) => Ok(MailDomainStatus::NoMailRecords),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }
}

/// RFC 7505: exactly one MX, preference 0, exchange ".".
pub fn is_null_mx(list: &[(u16, String)]) -> bool {
    matches!(list, [(0, host)] if host.is_empty() || host == ".")
}

/// Names are absolute: no search domains appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}
