//! Which TLS policy applies to a delivery, per next hop: the smarthost's
//! (`relay.smarthost_tls`: verified STARTTLS or implicit TLS with the
//! credentials, opportunistic, or none), a router plugin's hosts
//! (opportunistic), or an MX host's — MTA-STS when the destination
//! publishes a policy (`enforce`: only the MX hosts it lists, only with a
//! certificate valid for the MX name; `testing`: every host, failures
//! logged), else opportunistic STARTTLS.
//!
//! A message sent with REQUIRETLS (RFC 8689) goes only where TLS can be
//! verified: a smarthost with `starttls`/`implicit`, or MX hosts listed by
//! an MTA-STS policy (`testing` counts as `enforce` for it); anything else
//! leaves no hop, and the caller bounces it with 5.7.30.

use super::client::HopSecurity;
use super::mta_sts::{Mode, MtaSts};
use super::mx::NextHop;
use super::tls::{ClientSetupError, TlsDemand, Verifier};
use super::tls_rpt::ReportPolicy;
use crate::config::{Config, SmarthostTls};

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
}

impl Routed {
    fn none_for_requiretls(policy: String, why: String) -> Routed {
        Routed {
            hops: Vec::new(),
            policy,
            refusal: Some(format!("REQUIRETLS: {why}")),
            enforced: true,
            report: None,
        }
    }
}

pub struct Policies {
    smarthost: HopSecurity,
    /// Trust anchors for MX hosts; None when none could be loaded (an
    /// `enforce` destination is then deferred, never delivered unverified).
    anchors: Option<Verifier>,
    mta_sts: Option<MtaSts>,
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
        })
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

    /// The MX hosts of `domain` under its MTA-STS policy, if any.
    pub async fn mx(&self, domain: &str, hops: Vec<NextHop>, require_tls: bool) -> Routed {
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
    Ok(())
}
