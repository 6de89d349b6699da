//! DMARC (RFC 7489) evaluation with SPF and DKIM alignment. A From domain
//! whose policy discovery finds two records is not evaluated at all
//! (section 6.6.3; see `records.rs`).

use super::Origin;
use super::results::{DmarcCheck, DmarcPolicy, Outcome};
use crate::dns::Dns;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcOutput, DmarcResult, MessageAuthenticator, SpfOutput,
};

/// The DMARC evaluation of one message.
pub(super) enum Dmarc {
    Evaluated(DmarcOutput),
    /// Not applied: `_dmarc.{at}` publishes more than one record.
    NotApplied { from_domain: String, at: String },
}

pub(super) async fn check<'x>(
    a: &MessageAuthenticator,
    dns: &Dns,
    msg: &'x AuthenticatedMessage<'x>,
    dkim: &'x [DkimOutput<'x>],
    origin: &'x Origin<'x>,
    spf: &'x SpfOutput,
) -> Dmarc {
    let from_domain = msg
        .first_from_address()
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    if !from_domain.is_empty()
        && let Some(at) = super::records::duplicate_dmarc(dns, &from_domain).await
    {
        return Dmarc::NotApplied { from_domain, at };
    }
    Dmarc::Evaluated(
        a.verify_dmarc(DmarcParameters::new(
            msg,
            dkim,
            origin.mail_from_domain(),
            spf,
        ))
        .await,
    )
}

impl Dmarc {
    /// The `dmarc=` entry when mail-auth cannot write it (not applied).
    pub(super) fn own_entry(&self) -> Option<String> {
        match self {
            Dmarc::Evaluated(_) => None,
            Dmarc::NotApplied { from_domain, at } => Some(format!(
                ";\r\n\tdmarc=none (more than one DMARC record at _dmarc.{at}) header.from={from_domain}"
            )),
        }
    }
}

fn outcome(r: &DmarcResult) -> Outcome {
    match r {
        DmarcResult::Pass => Outcome::Pass,
        DmarcResult::Fail(_) => Outcome::Fail,
        DmarcResult::TempError(_) => Outcome::TempError,
        DmarcResult::PermError(_) => Outcome::PermError,
        DmarcResult::None => Outcome::None,
    }
}

pub(super) fn result(dmarc: &Dmarc) -> DmarcCheck {
    let out = match dmarc {
        Dmarc::Evaluated(out) => out,
        Dmarc::NotApplied { from_domain, .. } => {
            return DmarcCheck::none(from_domain.clone());
        }
    };
    DmarcCheck {
        result: outcome(&out.result()),
        domain: out.domain().to_string(),
        policy: match out.policy() {
            Policy::Reject => DmarcPolicy::Reject,
            Policy::Quarantine => DmarcPolicy::Quarantine,
            Policy::None | Policy::Unspecified => DmarcPolicy::None,
        },
        spf_aligned: matches!(out.spf_result(), DmarcResult::Pass),
        dkim_aligned: matches!(out.dkim_result(), DmarcResult::Pass),
    }
}
