//! DKIM (RFC 6376) verification results, one per signature, as plain data.

use super::results::{DkimCheck, Outcome};
use mail_auth::{DkimOutput, DkimResult};

pub(super) fn outcome(r: &DkimResult) -> Outcome {
    match r {
        DkimResult::Pass => Outcome::Pass,
        DkimResult::Neutral(_) => Outcome::Neutral,
        DkimResult::Fail(_) => Outcome::Fail,
        DkimResult::PermError(_) => Outcome::PermError,
        DkimResult::TempError(_) => Outcome::TempError,
        DkimResult::None => Outcome::None,
    }
}

fn reason(r: &DkimResult) -> Option<String> {
    match r {
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => Some(e.to_string()),
        DkimResult::Pass | DkimResult::None => None,
    }
}

pub(super) fn checks(out: &[DkimOutput<'_>]) -> Vec<DkimCheck> {
    out.iter()
        .map(|o| DkimCheck {
            result: outcome(o.result()),
            domain: o.signature().map(|s| s.d.clone()).unwrap_or_default(),
            selector: o.signature().map(|s| s.s.clone()).unwrap_or_default(),
            reason: reason(o.result()),
        })
        .collect()
}
