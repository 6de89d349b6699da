//! TLS-RPT (RFC 8460): every session with an MX host under an MTA-STS
//! or DANE policy counts as a success or as a failure of a result type
//! (`certificate-expired`, `starttls-not-supported`, …), tallied per policy
//! domain and reporting period in the store (`store/tlsrpt.rs`). Once a
//! period (a day by default, `relay.tls_rpt_period`) is over, each domain
//! that publishes a `_smtp._tls` record (parsed by mail-auth) gets the
//! aggregate report of `report.rs`, gzipped JSON: `mailto:` destinations
//! through Tern's own queue, `https:` ones by POST. Then the tally goes.

pub mod report;

use crate::context::ServerContext;
use crate::dns::{Dns, DnsError};
use crate::store::{Store, TlsRptFailure, now};
use mail_auth::dns::TxtRecordParser;
use mail_auth::mta_sts::{ReportUri, TlsRptRecord};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The address this host sends from towards `ip` (the kernel's choice of
/// source address; a UDP "connect" sends nothing), for `sending-mta-ip`.
fn source_address(ip: &str) -> Option<String> {
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let any: std::net::IpAddr = match ip {
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = std::net::UdpSocket::bind((any, 0)).ok()?;
    socket.connect((ip, 25)).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// The policy a session was held under, as a report names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPolicy {
    /// RFC 8460's `policy-type`: "sts" (MTA-STS) or "tlsa" (DANE).
    pub policy_type: &'static str,
    pub domain: String,
    /// The policy file's lines.
    pub policy_string: Vec<String>,
    /// Its MX patterns.
    pub mx_host: Vec<String>,
}

pub struct TlsRpt {
    store: Store,
    dns: Dns,
    /// Verifies report hosts' certificates.
    https: Arc<rustls::ClientConfig>,
    period: i64,
    sending: AtomicBool,
}

impl TlsRpt {
    pub fn new(
        store: Store,
        dns: Dns,
        https: Arc<rustls::ClientConfig>,
        period_secs: u64,
    ) -> TlsRpt {
        TlsRpt {
            store,
            dns,
            https,
            period: period_secs.max(1) as i64,
            sending: AtomicBool::new(false),
        }
    }

    fn period_start(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.period)
    }

    async fn tally(&self, policy: &ReportPolicy, change: impl Fn(&mut crate::store::TlsRptTally)) {
        let period = self.period_start(now());
        let result = self
            .store
            .update_tlsrpt(period, &policy.domain, |t| {
                t.policy_type = policy.policy_type.into();
                t.policy_string = policy.policy_string.clone();
                t.mx_host = policy.mx_host.clone();
                change(t);
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(domain = %policy.domain, "recording a TLS-RPT result: {e}");
        }
    }

    /// A session that met the policy.
    pub async fn success(&self, policy: &ReportPolicy) {
        self.tally(policy, |t| t.successes += 1).await;
    }

    /// A session that failed the policy: `remote` is "host[ip]:port" or a host.
    pub async fn failure(
        &self,
        policy: &ReportPolicy,
        result_type: &str,
        remote: &str,
        reason: &str,
    ) {
        let (host, ip) = match remote.split_once('[') {
            Some((h, rest)) => (
                h.to_string(),
                rest.split_once(']').map(|(ip, _)| ip.to_string()),
            ),
            None => (remote.to_string(), None),
        };
        let sending = ip.as_deref().and_then(source_address);
        self.tally(policy, |t| {
            match t.failures.iter_mut().find(|f| {
                f.result_type == result_type
                    && f.receiving_mx_hostname == host
                    && f.receiving_ip == ip
            }) {
                Some(f) => f.count += 1,
                None => t.failures.push(TlsRptFailure {
                    result_type: result_type.to_string(),
                    receiving_mx_hostname: host.clone(),
                    receiving_ip: ip.clone(),
                    sending_mta_ip: sending.clone(),
                    failure_reason_code: reason.chars().take(200).collect(),
                    count: 1,
                }),
            }
        })
        .await;
    }

    /// Sends the reports of periods that are over, unless a run is going.
    pub fn send_due(self: &Arc<Self>, ctx: Arc<ServerContext>) {
        let current = self.period_start(now());
        if self.sending.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.send_all(&ctx, current).await;
            this.sending.store(false, Ordering::Release);
        });
    }

    async fn send_all(&self, ctx: &ServerContext, current: i64) {
        let due = match self.store.tlsrpt_before(current).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("reading TLS-RPT tallies: {e}");
                return;
            }
        };
        for (start, domain, tally) in due {
            let destinations = match self.destinations(&domain).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::info!(
                        domain,
                        "TLS-RPT: _smtp._tls look-up failed ({e}); trying again later"
                    );
                    continue;
                }
            };
            if !destinations.is_empty() {
                let range = (start, start + self.period);
                let hostname = &ctx.config.hostname;
                let json = report::json(hostname, &domain, range, &tally);
                match report::gzip(&json) {
                    Ok(gz) => {
                        for uri in &destinations {
                            let result = match uri {
                                ReportUri::Mail(to) => {
                                    report::queue_mail(ctx, to, &domain, range, &gz).await
                                }
                                ReportUri::Http(url) => {
                                    report::post(&self.dns, self.https.clone(), url, gz.clone())
                                        .await
                                }
                            };
                            match result {
                                Ok(()) => tracing::info!(domain, ?uri, "TLS-RPT report sent"),
                                Err(e) => {
                                    tracing::warn!(domain, ?uri, "TLS-RPT report not sent: {e}")
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(domain, "TLS-RPT report: {e}"),
                }
            }
            if let Err(e) = self.store.remove_tlsrpt(start, &domain).await {
                tracing::warn!(domain, "removing a sent TLS-RPT tally: {e}");
            }
        }
    }

    /// The `rua` of the domain's `_smtp._tls` record (empty: it wants none).
    async fn destinations(&self, domain: &str) -> Result<Vec<ReportUri>, DnsError> {
        let records = match self.dns.txt(&format!("_smtp._tls.{domain}")).await {
            Ok(r) => r,
            Err(DnsError::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut valid = records
            .iter()
            .filter(|r| r.starts_with("v=TLSRPTv1"))
            .filter_map(|r| TlsRptRecord::parse(r.as_bytes()).ok());
        // RFC 8460 section 3: exactly one record, else none is used.
        match (valid.next(), valid.next()) {
            (Some(one), None) => Ok(one.rua),
            _ => Ok(Vec::new()),
        }
    }
}
