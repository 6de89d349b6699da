//! DNS for the whole server, on hickory's resolver: MX, A/AAAA and TXT
//! look-ups through `dns.nameservers` (or the system's resolver), with
//! answers cached for their TTL. The one rule callers rely on: "this name
//! has no such records" (`NotFound`: NXDOMAIN or NODATA) is kept apart from
//! "ask again later" (`Temporary`: timeout, SERVFAIL, refused, network).
//!
//! With `dns.dnssec = "validate"` a second resolver checks DNSSEC itself
//! (hickory's validation, from `dns.trust_anchor` or the root KSKs) for the
//! look-ups that DANE rests on; `validated` says whether an answer is
//! secure, insecure or bogus (RFC 4035 section 4.3).
//!
//! `Dns::canned` answers from a file instead (`canned.rs`), for `tern
//! plugin test --dns`: the same calls, nothing sent.

mod canned;

pub use canned::{Canned, CannedError};

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
    /// Validates DNSSEC (None: `dns.dnssec = "off"`).
    validator: Option<Arc<TokioResolver>>,
    /// Answers from a file instead of the resolver (`Dns::canned`).
    canned: Option<Arc<Canned>>,
}

/// A DNSSEC-validated answer.
#[derive(Debug, Clone)]
pub enum Validated {
    /// Records proven by a chain of signatures from a trust anchor.
    Secure(Vec<hickory_resolver::proto::rr::RData>),
    /// A proven NXDOMAIN or NODATA.
    SecureNone,
    /// No chain of trust reaches the name (an unsigned zone): the answer,
    /// whatever it was, cannot be relied on.
    Insecure,
    /// Signatures that should be there are missing or do not verify.
    Bogus(String),
}

fn resolver_options(builder_opts: &mut ResolverOpts, timeout: Duration) {
    builder_opts.timeout = timeout;
    builder_opts.attempts = 2;
    builder_opts.cache_size = 4096;
    builder_opts.ndots = 0;
    builder_opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    builder_opts.edns0 = true;
}

/// The response code of an answer without the records asked for.
fn no_records_code(e: &ResolveError) -> Option<ResponseCode> {
    match e.kind() {
        ResolveErrorKind::Proto(p) => match p.kind() {
            ProtoErrorKind::NoRecordsFound { response_code, .. } => Some(*response_code),
            _ => None,
        },
        _ => None,
    }
}

fn classify(e: ResolveError) -> DnsError {
    match no_records_code(&e) {
        Some(ResponseCode::NoError | ResponseCode::NXDomain) => DnsError::NotFound,
        Some(other) => DnsError::Temporary(format!("server answered {other}")),
        None => DnsError::Temporary(e.to_string()),
    }
}

impl Dns {
    /// `None`: the system's configuration; otherwise these servers (UDP and TCP).
    pub fn new(nameservers: Option<&[SocketAddr]>, timeout: Duration) -> Result<Dns, DnsError> {
        let mut builder = Self::builder(nameservers);
        resolver_options(builder.options_mut(), timeout);
        Ok(Dns {
            resolver: Arc::new(builder.build()),
            validator: None,
            canned: None,
        })
    }

    /// Answers `mx`, `ip_addrs`, `addresses` and `txt` from `answers`
    /// alone (a name or type they do not give is `NotFound`); no DNSSEC.
    pub fn canned(answers: Canned) -> Dns {
        let unused = TokioResolver::builder_with_config(
            ResolverConfig::new(),
            TokioConnectionProvider::default(),
        );
        Dns {
            resolver: Arc::new(unused.build()),
            validator: None,
            canned: Some(Arc::new(answers)),
        }
    }

    /// The resolver of `config` with DNSSEC validation as `dns.dnssec` says.
    pub fn from_config(config: &crate::config::DnsConfig) -> Result<Dns, DnsError> {
        let mut dns = Dns::new(config.nameservers.as_deref(), config.timeout.0)?;
        if config.dnssec == crate::config::DnssecMode::Validate {
            let anchors = trust_anchors(config)?;
            let mut builder =
                Self::builder(config.nameservers.as_deref()).with_trust_anchor(Arc::new(anchors));
            resolver_options(builder.options_mut(), config.timeout.0);
            builder.options_mut().validate = true;
            dns.validator = Some(Arc::new(builder.build()));
        }
        Ok(dns)
    }

    /// Is DNSSEC validated (so DANE can apply)?
    pub fn validates(&self) -> bool {
        self.validator.is_some()
    }

    /// `name`'s records of type `rtype`, with what DNSSEC proves of them.
    pub async fn validated(
        &self,
        name: &str,
        rtype: hickory_resolver::proto::rr::RecordType,
    ) -> Result<Validated, DnsError> {
        let Some(validator) = &self.validator else {
            return Err(DnsError::Config("dns.dnssec is off".into()));
        };
        match validator.lookup(fqdn(name), rtype).await {
            Ok(lookup) => {
                let records: Vec<_> = lookup
                    .records()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .collect();
                if let Some(bad) = records.iter().find(|r| r.proof().is_bogus()) {
                    return Ok(Validated::Bogus(format!(
                        "{} {rtype}: signature missing or invalid",
                        bad.name()
                    )));
                }
                if records.is_empty() || !records.iter().all(|r| r.proof().is_secure()) {
                    return Ok(Validated::Insecure);
                }
                Ok(Validated::Secure(
                    records.into_iter().map(|r| r.data().clone()).collect(),
                ))
            }
            Err(e) => {
                if let ResolveErrorKind::Proto(p) = e.kind() {
                    match p.kind() {
                        ProtoErrorKind::NoRecordsFound {
                            response_code: ResponseCode::NoError | ResponseCode::NXDomain,
                            authorities,
                            ..
                        } => {
                            // Negative answers reach here only proven
                            // (NSEC/NSEC3) or from an unsigned zone.
                            let proven = authorities
                                .iter()
                                .flat_map(|a| a.iter())
                                .any(|r| r.proof().is_secure());
                            return Ok(if proven {
                                Validated::SecureNone
                            } else {
                                Validated::Insecure
                            });
                        }
                        ProtoErrorKind::Nsec { proof, .. } if proof.is_insecure() => {
                            return Ok(Validated::Insecure);
                        }
                        ProtoErrorKind::Nsec { .. } => {
                            return Ok(Validated::Bogus(format!(
                                "{name} {rtype}: denial of existence not proven: {e}"
                            )));
                        }
                        _ => {}
                    }
                }
                Err(DnsError::Temporary(e.to_string()))
            }
        }
    }

    fn builder(
        nameservers: Option<&[SocketAddr]>,
    ) -> hickory_resolver::ResolverBuilder<TokioConnectionProvider> {
        let provider = TokioConnectionProvider::default();
        match nameservers {
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
        }
    }

    /// MX records as (preference, exchange without the trailing dot).
    /// `Ok(empty)` when the name exists but has no MX.
    pub async fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>, DnsError> {
        if let Some(c) = &self.canned {
            return found(c.mx(domain));
        }
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
            Err(e) => self.none_or_loop(domain, e).await,
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
        if let Some(c) = &self.canned {
            // As the resolver: A, else AAAA.
            let v4 = c.addresses(host, true);
            return found(if v4.is_empty() {
                c.addresses(host, false)
            } else {
                v4
            });
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
            Err(e) => self.none_or_loop(host, e).await,
        }
    }

    /// The A (`v4`) or else AAAA records of `host` (CNAMEs followed): the
    /// one record type asked for, where `ip_addrs` asks for A, then AAAA
    /// when there is no A.
    pub async fn addresses(&self, host: &str, v4: bool) -> Result<Vec<IpAddr>, DnsError> {
        if let Some(c) = &self.canned {
            return found(c.addresses(host, v4));
        }
        let found: Result<Vec<IpAddr>, ResolveError> = if v4 {
            let lookup = self.resolver.ipv4_lookup(fqdn(host)).await;
            lookup.map(|l| l.iter().map(|a| IpAddr::V4(a.0)).collect())
        } else {
            let lookup = self.resolver.ipv6_lookup(fqdn(host)).await;
            lookup.map(|l| l.iter().map(|a| IpAddr::V6(a.0)).collect())
        };
        match found {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => self.unless_cname_loop(host).await,
            Err(e) => self.none_or_loop(host, e).await,
        }
    }

    /// What a failed look-up of `name` means. A name that does not exist
    /// (NXDOMAIN) has no records; one that exists without the records
    /// asked for (NODATA) is checked for a CNAME loop first.
    async fn none_or_loop<T>(&self, name: &str, e: ResolveError) -> Result<T, DnsError> {
        match no_records_code(&e) {
            Some(ResponseCode::NXDomain) => Err(DnsError::NotFound),
            Some(ResponseCode::NoError) => self.unless_cname_loop(name).await,
            _ => Err(classify(e)),
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
        if let Some(c) = &self.canned {
            return found(c.txt(name));
        }
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

/// The DNSKEY records DNSSEC validation starts from: `dns.trust_anchor`,
/// else the root zone's KSKs (for `check-config` too).
pub fn trust_anchors(
    config: &crate::config::DnsConfig,
) -> Result<hickory_resolver::proto::dnssec::TrustAnchors, DnsError> {
    use hickory_resolver::proto::dnssec::TrustAnchors;
    let anchors = match &config.trust_anchor {
        Some(path) => TrustAnchors::from_file(path)
            .map_err(|e| DnsError::Config(format!("dns.trust_anchor {}: {e}", path.display())))?,
        None => TrustAnchors::default(),
    };
    if anchors.is_empty() {
        return Err(DnsError::Config(
            "dns.trust_anchor: no DNSKEY records".into(),
        ));
    }
    Ok(anchors)
}

/// Canned records: none is `NotFound`, as a resolver's NXDOMAIN or NODATA.
fn found<T>(records: Vec<T>) -> Result<Vec<T>, DnsError> {
    if records.is_empty() {
        Err(DnsError::NotFound)
    } else {
        Ok(records)
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
