//! Which TLS policy applies to a delivery, per next hop: the smarthost's
//! (`relay.smarthost_tls`: verified STARTTLS or implicit TLS with the
//! credentials, opportunistic, or none), a router plugin's hosts
//! (opportunistic), or an MX host's — DANE (`dane.rs`) for each MX host
//! with secure TLSA records, taking precedence over MTA-STS (RFC 8461
//! section 2); for the others MTA-STS when the destination
//! publishes a policy (`enforce`: only the MX hosts it lists, only with a
//! certificate valid for the MX name; `testing`: every host, failures
//! logged), else opportunistic STARTTLS.
//!
//! A message sent with REQUIRETLS (RFC 8689) goes only where TLS can be
//! verified: a smarthost with `starttls`/`implicit`, MX hosts under DANE,
//! or MX hosts listed by an MTA-STS policy (`testing` counts as `enforce` for it); anything else
//! leaves no hop, and the caller bounces it with 5.7.30.
//!
//! A router plugin's demand for verified TLS (`VerifiedTls`) is applied on
//! top of any of these by `verified`: hops already verified keep their
//! check, the others must present a certificate valid for their name (or
//! the name the demand pins) under the MX trust anchors.

use super::client::HopSecurity;
use super::dane::{HostDane, host_dane, secure_mx};
use super::mta_sts::{Mode, MtaSts};
use super::mx::NextHop;
use super::tls::{ClientSetupError, TlsDemand, Verifier};
use super::tls_rpt::ReportPolicy;
use crate::config::{Config, SmarthostTls};
use crate::mail::VerifiedTls;

/// The hops of one destination, each with what it must offer.
pub struct Routed {
    /// In order of preference; empty when the policy leaves none.
    pub hops: Vec<(NextHop, HopSecurity)>,
    /// The policy in words, for logs and `tern queue show`.
    pub policy: String,
    /// Why hops were left out (MX hosts the policy does not list).
    pub refusal: Option<String>,
    /// A policy that forbids unverified delivery is in force (MTA-STS
    /// enforce), which a message's `TLS-Required: No` may waive.
    pub enforced: bool,
    /// The policy to tally TLS-RPT results under, if one applies.
    pub report: Option<ReportPolicy>,
    /// MX hosts left out because their DANE look-up was bogus or failed:
    /// (RFC 8460 result type, host, why), tallied as failures.
    pub unusable: Vec<(&'static str, String, String)>,
}

impl Routed {
    fn none_for_requiretls(policy: String, why: String) -> Routed {
        Routed {
            hops: Vec::new(),
            policy,
            refusal: Some(format!("REQUIRETLS: {why}")),
            enforced: true,
            report: None,
            unusable: Vec::new(),
        }
    }
}

pub struct Policies {
    smarthost: HopSecurity,
    /// Trust anchors for MX hosts; None when none could be loaded (an
    /// `enforce` destination is then deferred, never delivered unverified).
    anchors: Option<Verifier>,
    mta_sts: Option<MtaSts>,
    /// The validating resolver DANE looks TLSA records up with, and the
    /// MX port; None: `dns.dnssec = "off"`.
    dane: Option<(crate::dns::Dns, u16)>,
}

impl Policies {
    /// From the config. Fails only when the smarthost's trust anchors
    /// cannot be loaded for a mode that verifies.
    pub fn new(
        config: &Config,
        anchors: Option<Verifier>,
        mta_sts: Option<MtaSts>,
    ) -> Result<Policies, ClientSetupError> {
        Ok(Policies {
            smarthost: smarthost_security(config)?,
            anchors,
            mta_sts,
            dane: None,
        })
    }

    /// DANE for MX hosts, when `dns` validates DNSSEC.
    pub fn with_dane(mut self, dns: crate::dns::Dns, mx_port: u16) -> Policies {
        if dns.validates() {
            self.dane = Some((dns, mx_port));
        }
        self
    }

    pub fn smarthost(&self, hops: Vec<NextHop>, require_tls: bool) -> Routed {
        if require_tls && !self.smarthost.tls.required() {
            return Routed::none_for_requiretls(
                self.smarthost.policy.clone(),
                "the smarthost's certificate is not verified (relay.smarthost_tls)".into(),
            );
        }
        Routed {
            hops: hops
                .into_iter()
                .map(|h| (h, self.smarthost.clone()))
                .collect(),
            policy: self.smarthost.policy.clone(),
            refusal: None,
            enforced: self.smarthost.tls.required(),
            report: None,
            unusable: Vec::new(),
        }
    }

    /// Opportunistic STARTTLS to `hops` (MX hosts of a domain without a
    /// policy, hosts a router plugin chose), `policy` saying why.
    pub fn opportunistic(&self, hops: Vec<NextHop>, policy: &str) -> Routed {
        let mut security = HopSecurity::opportunistic();
        security.policy = policy.to_string();
        Routed {
            policy: security.policy.clone(),
            hops: hops.into_iter().map(|h| (h, security.clone())).collect(),
            refusal: None,
            enforced: false,
            report: None,
            unusable: Vec::new(),
        }
    }

    /// Hosts a router plugin chose.
    pub fn routed(&self, hops: Vec<NextHop>, require_tls: bool) -> Routed {
        if require_tls {
            return Routed::none_for_requiretls(
                "opportunistic".into(),
                "hosts a router plugin chose have no policy to verify them by".into(),
            );
        }
        self.opportunistic(hops, "opportunistic")
    }

    /// `routed` under a router plugin's demand for verified TLS: DANE hops
    /// keep their TLSA check and a verified smarthost its own anchors; every
    /// other hop (opportunistic, MTA-STS testing, a smarthost `none`) is
    /// verified against the MX trust anchors, for the name the demand pins
    /// or else the hop's own. Without anchors only the hops already verified
    /// are left, and none left means a deferral saying why.
    pub fn verified(&self, mut routed: Routed, demand: &VerifiedTls) -> Routed {
        routed.policy = format!("{demand}; {}", routed.policy);
        routed.enforced = true;
        let before = routed.hops.len();
        let mut hops = Vec::with_capacity(before);
        for (mut hop, mut security) in std::mem::take(&mut routed.hops) {
            let verifier = match &security.tls {
                TlsDemand::Dane(_) => {
                    hops.push((hop, security));
                    continue;
                }
                TlsDemand::Require { .. } => None,
                TlsDemand::Report(v) => Some(v.clone()),
                TlsDemand::Plain | TlsDemand::Opportunistic => match &self.anchors {
                    Some(v) => Some(v.clone()),
                    None => continue,
                },
            };
            if let Some(verifier) = verifier {
                security.tls = TlsDemand::Require {
                    verifier,
                    implicit: false,
                };
                security.policy = demand.to_string();
            }
            if let Some(name) = &demand.name {
                hop.host = name.clone();
            }
            hops.push((hop, security));
        }
        if hops.len() < before {
            let why = format!("{demand} and no trust anchors are loaded to verify the hosts");
            tracing::warn!(plugin = %demand.plugin, "{why}");
            routed.refusal = Some(match routed.refusal.take() {
                Some(r) => format!("{r}; {why}"),
                None => why,
            });
        }
        routed.hops = hops;
        routed
    }

    /// The MX hosts of `domain`: DANE for those with secure TLSA records,
    /// the MTA-STS policy (if any) for the others.
    pub async fn mx(&self, domain: &str, hops: Vec<NextHop>, require_tls: bool) -> Routed {
        let Some((dns, port)) = self.dane.as_ref().filter(|_| !domain.starts_with('[')) else {
            return self.mx_sts(domain, hops, require_tls).await;
        };
        let secure_hosts = match secure_mx(dns, domain).await {
            Ok(Some(hosts)) => hosts,
            Ok(None) => return self.mx_sts(domain, hops, require_tls).await,
            Err((_kind, why)) => {
                tracing::warn!(domain, "{why}; delivery deferred");
                return Routed {
                    hops: Vec::new(),
                    policy: "DANE".into(),
                    refusal: Some(why),
                    enforced: true,
                    report: None,
                    unusable: Vec::new(),
                };
            }
        };
        let mut dane_hops = Vec::new();
        let mut others = Vec::new();
        let mut refusals = Vec::new();
        let mut records = Vec::new();
        let mut unusable = Vec::new();
        for hop in hops {
            if !secure_hosts.contains(&hop.host.to_ascii_lowercase()) {
                others.push(hop);
                continue;
            }
            match host_dane(dns, &hop.host, *port).await {
                HostDane::Applies(v) => {
                    records.extend(v.records().iter().map(|r| r.text()));
                    let security = HopSecurity {
                        tls: TlsDemand::Dane(v),
                        auth: None,
                        policy: "DANE".into(),
                    };
                    dane_hops.push((hop, security));
                }
                HostDane::NotApplicable(why) => {
                    tracing::debug!(domain, mx = %hop.host, "no DANE: {why}");
                    others.push(hop);
                }
                HostDane::Unusable(kind, why) => {
                    tracing::warn!(domain, mx = %hop.host, "{why}; MX host not used");
                    refusals.push(why.clone());
                    unusable.push((kind, hop.host.clone(), why));
                }
            }
        }
        if dane_hops.is_empty() && unusable.is_empty() {
            return self.mx_sts(domain, others, require_tls).await;
        }
        let rest = if others.is_empty() {
            None
        } else {
            Some(self.mx_sts(domain, others, require_tls).await)
        };
        let mut policy = "DANE".to_string();
        let mut hops = dane_hops;
        if let Some(rest) = rest {
            policy = format!("DANE; {}", rest.policy);
            hops.extend(rest.hops);
            refusals.extend(rest.refusal);
        }
        hops.sort_by_key(|(h, _)| h.preference);
        Routed {
            hops,
            policy,
            refusal: (!refusals.is_empty()).then(|| refusals.join("; ")),
            enforced: true,
            report: Some(ReportPolicy {
                policy_type: "tlsa",
                domain: domain.to_ascii_lowercase(),
                policy_string: records,
                mx_host: Vec::new(),
            }),
            unusable,
        }
    }

    /// The MX hosts of `domain` under its MTA-STS policy, if any.
    async fn mx_sts(&self, domain: &str, hops: Vec<NextHop>, require_tls: bool) -> Routed {
        // An address literal has no DNS name to publish a policy under.
        let applied = match &self.mta_sts {
            Some(sts) if !domain.starts_with('[') => sts.policy(domain).await,
            _ => None,
        };
        let Some(applied) = applied.filter(|a| a.policy.mode != Mode::None) else {
            if require_tls {
                return Routed::none_for_requiretls(
                    "opportunistic".into(),
                    format!("{domain} publishes no MTA-STS policy to verify its MX hosts by"),
                );
            }
            return self.opportunistic(hops, "opportunistic");
        };
        let policy = format!(
            "MTA-STS {} (policy {})",
            applied.policy.mode.name(),
            applied.id
        );
        let (listed, unlisted): (Vec<NextHop>, Vec<NextHop>) = hops
            .into_iter()
            .partition(|h| applied.policy.matches(&h.host));
        let unlisted_names = unlisted
            .iter()
            .map(|h| h.host.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let security = |tls: TlsDemand| HopSecurity {
            tls,
            auth: None,
            policy: policy.clone(),
        };
        let mode = match applied.policy.mode {
            Mode::Testing if require_tls => Mode::Enforce,
            mode => mode,
        };
        let report = ReportPolicy {
            policy_type: "sts",
            domain: domain.to_ascii_lowercase(),
            policy_string: applied
                .text
                .lines()
                .map(|l| l.trim_end().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            mx_host: applied.policy.mx.clone(),
        };
        let mut routed = match mode {
            Mode::Enforce => {
                let Some(anchors) = &self.anchors else {
                    return Routed {
                        hops: Vec::new(),
                        refusal: Some(format!(
                            "{domain} enforces MTA-STS and no trust anchors are loaded to verify its MX hosts"
                        )),
                        policy,
                        enforced: true,
                        report: None,
                        unusable: Vec::new(),
                    };
                };
                let refusal = (!unlisted.is_empty()).then(|| {
                    tracing::warn!(domain, hosts = %unlisted_names, "MX hosts not in the MTA-STS policy: not used");
                    format!(
                        "MX host(s) {unlisted_names} not listed in the MTA-STS policy of {domain} (mx: {})",
                        applied.policy.mx.join(", ")
                    )
                });
                let demand = TlsDemand::Require {
                    verifier: anchors.clone(),
                    implicit: false,
                };
                Routed {
                    hops: listed
                        .into_iter()
                        .map(|h| (h, security(demand.clone())))
                        .collect(),
                    refusal,
                    policy,
                    enforced: true,
                    report: None,
                    unusable: Vec::new(),
                }
            }
            Mode::Testing | Mode::None => {
                if !unlisted.is_empty() {
                    tracing::warn!(domain, hosts = %unlisted_names, "MX hosts not in the MTA-STS policy (testing: used anyway)");
                }
                let demand = match &self.anchors {
                    Some(v) => TlsDemand::Report(v.clone()),
                    None => TlsDemand::Opportunistic,
                };
                Routed {
                    hops: listed
                        .into_iter()
                        .chain(unlisted)
                        .map(|h| (h, security(demand.clone())))
                        .collect(),
                    refusal: None,
                    policy,
                    enforced: false,
                    report: None,
                    unusable: Vec::new(),
                }
            }
        };
        routed.report = Some(report);
        routed
    }
}

fn smarthost_security(config: &Config) -> Result<HopSecurity, ClientSetupError> {
    let relay = &config.relay;
    let mode = relay.smarthost_tls();
    let tls = match mode {
        SmarthostTls::None => TlsDemand::Plain,
        SmarthostTls::Opportunistic => TlsDemand::Opportunistic,
        SmarthostTls::Starttls | SmarthostTls::Implicit if relay.smarthost.is_none() => {
            TlsDemand::Opportunistic
        }
        SmarthostTls::Starttls | SmarthostTls::Implicit => TlsDemand::Require {
            verifier: Verifier::load(relay.smarthost_ca.as_deref())?,
            implicit: mode == SmarthostTls::Implicit,
        },
    };
    Ok(HopSecurity {
        auth: relay.credentials().filter(|_| tls.required()),
        tls,
        policy: format!("smarthost {}", mode.name()),
    })
}

/// For `check-config`: the trust anchors the config names load.
pub fn check(config: &Config) -> Result<(), ClientSetupError> {
    smarthost_security(config)?;
    if let Some(ca) = &config.relay.tls_ca {
        Verifier::load(Some(ca))?;
    }
    if config.dns.dnssec == crate::config::DnssecMode::Validate {
        crate::dns::trust_anchors(&config.dns)
            .map_err(|e| ClientSetupError::Anchors(e.to_string()))?;
    }
    Ok(())
}
