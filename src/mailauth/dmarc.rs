//! DMARC (RFC 7489) evaluation with SPF and DKIM alignment.

use super::Origin;
use super::results::{DmarcCheck, DmarcPolicy, Outcome};
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcOutput, DmarcResult, MessageAuthenticator, SpfOutput,
};

pub(super) async fn check<'x>(
    a: &MessageAuthenticator,
    msg: &'x AuthenticatedMessage<'x>,
    dkim: &'x [DkimOutput<'x>],
    origin: &'x Origin<'x>,
    spf: &'x SpfOutput,
) -> DmarcOutput {
    a.verify_dmarc(DmarcParameters::new(
        msg,
        dkim,
        origin.mail_from_domain(),
        spf,
    ))
    .await
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

pub(super) fn result(out: &DmarcOutput) -> DmarcCheck {
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
