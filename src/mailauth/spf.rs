//! SPF (RFC 7208) on the HELO and MAIL FROM identities, each on its own.

use super::Origin;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfOutput, SpfResult};

/// Both identities' outputs.
pub(super) struct SpfResults {
    pub helo: SpfOutput,
    pub mail_from: SpfOutput,
}

pub(super) async fn check(a: &MessageAuthenticator, origin: &Origin<'_>, host: &str) -> SpfResults {
    let helo = a
        .check_host(SpfParameters::helo(origin.ip, origin.helo, host))
        .await;
    let mail_from = a
        .check_host(SpfParameters::mail_from(
            origin.ip,
            origin.helo,
            host,
            origin.mail_from,
        ))
        .await;
    SpfResults { helo, mail_from }
}

/// The MAIL FROM output DMARC aligns with (`none` when SPF was not run).
pub(super) fn for_dmarc(spf: Option<&SpfResults>, origin: &Origin<'_>) -> SpfOutput {
    match spf {
        Some(s) => s.mail_from.clone(),
        None => SpfOutput::new(origin.mail_from_domain().to_string()).with_result(SpfResult::None),
    }
}

pub(super) fn params<'a>(origin: &Origin<'a>, host: &'a str, helo: bool) -> SpfParameters<'a> {
    if helo {
        SpfParameters::helo(origin.ip, origin.helo, host)
    } else {
        SpfParameters::mail_from(origin.ip, origin.helo, host, origin.mail_from)
    }
}
