//! DKIM (RFC 6376) verification results, one per signature, as plain data,
//! and their `dkim=` entries of the Authentication-Results header.
//!
//! mail-auth reports a signature whose body hash does not match as
//! `neutral`; the signature is broken all the same (the body changed after
//! signing), so it is `fail`, like a changed signed header field, with the
//! reason in the comment (RFC 8601 section 2.7.1, RFC 6376 section 6.1.3).

use super::results::{DkimCheck, Outcome};
use mail_auth::dkim::DkimError;
use mail_auth::{AuthenticationResults, DkimOutput, DkimResult, Error};

/// Did the signature fail on its body hash?
fn body_hash_failed(r: &DkimResult) -> bool {
    matches!(
        r,
        DkimResult::Neutral(Error::Dkim(DkimError::BodyHashMismatch))
    )
}

pub(super) fn outcome(r: &DkimResult) -> Outcome {
    match r {
        DkimResult::Pass => Outcome::Pass,
        r if body_hash_failed(r) => Outcome::Fail,
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

/// The `;\r\n\tdkim=…` entries for `out`, as mail-auth writes them, but
/// `fail` for a body hash mismatch.
pub(super) fn entries(out: &[DkimOutput<'_>], header_from: &str) -> String {
    const NEUTRAL: &str = ";\r\n\tdkim=neutral";
    let mut text = String::new();
    for o in out {
        let one = AuthenticationResults::new("")
            .with_dkim_result(o, header_from)
            .to_string();
        match one.strip_prefix(NEUTRAL) {
            Some(rest) if body_hash_failed(o.result()) => {
                text.push_str(";\r\n\tdkim=fail");
                text.push_str(rest);
            }
            _ => text.push_str(&one),
        }
    }
    text
}
