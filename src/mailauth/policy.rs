//! `[auth]`: what Tern does with the results. Overrides for a trusted
//! forwarder apply when the HELO name or the MAIL FROM domain is the
//! forwarder's domain or below it.

use super::{AuthResults, DmarcPolicy, Origin, Outcome};
use crate::config::{AuthConfig, DmarcAction, SpfAction};

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Into INBOX as usual.
    Accept,
    /// Local copies go to the Junk folder (DMARC p=quarantine, honoured).
    Quarantine,
    /// Refused at end of data: enhanced status code and text.
    Reject(&'static str, String),
}

fn within(name: &str, domain: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == domain || name.ends_with(&format!(".{domain}"))
}

/// The actions that apply to a message from `origin`.
pub fn actions(config: &AuthConfig, origin: &Origin<'_>) -> (SpfAction, DmarcAction, DmarcAction) {
    let mut spf = config.spf_fail;
    let mut reject = config.dmarc_reject;
    let mut quarantine = config.dmarc_quarantine;
    for (domain, o) in &config.forwarders {
        if within(origin.helo, domain) || within(origin.mail_from_domain(), domain) {
            spf = o.spf_fail.unwrap_or(spf);
            reject = o.dmarc_reject.unwrap_or(reject);
            quarantine = o.dmarc_quarantine.unwrap_or(quarantine);
        }
    }
    (spf, reject, quarantine)
}

pub fn decide(config: &AuthConfig, origin: &Origin<'_>, r: &AuthResults) -> Decision {
    let (spf, reject, quarantine) = actions(config, origin);
    if spf == SpfAction::Reject
        && let Some(s) = r
            .spf_mail_from
            .as_ref()
            .filter(|s| s.result == Outcome::Fail)
    {
        return Decision::Reject("5.7.23", format!("SPF validation failed for {}", s.domain));
    }
    match r.dmarc_asks() {
        Some(DmarcPolicy::Reject) if reject == DmarcAction::Honour => Decision::Reject(
            "5.7.1",
            format!(
                "DMARC policy of {} rejects this unauthenticated message",
                r.dmarc.domain
            ),
        ),
        Some(DmarcPolicy::Quarantine) if quarantine == DmarcAction::Honour => Decision::Quarantine,
        _ => Decision::Accept,
    }
}
