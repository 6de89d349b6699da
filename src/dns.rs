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
                DnsError::NotFound => {
                    // NODATA for MX: tell it apart from NXDOMAIN by asking for addresses.
                    Err(DnsError::NotFound)
                }
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
            Err(e) => Err(classify(e)),
        }
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
