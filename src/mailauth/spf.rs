//! SPF (RFC 7208) on the HELO and MAIL FROM identities, each on its own.
//! Two checks around mail-auth: a HELO that is an address literal is not a
//! domain, so its identity is `none` (RFC 7208 section 2.3 checks HELO only
//! for a domain name), and a domain with two SPF records, checked or
//! reached through `include:` / `redirect=`, is `permerror` (section 4.5;
//! see `records.rs`).

use super::Origin;
use crate::dns::Dns;
use mail_auth::dns::Parameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfOutput, SpfResult};

/// Both identities' outputs.
pub(super) struct SpfResults {
    pub helo: SpfOutput,
    pub mail_from: SpfOutput,
}

/// Is the HELO argument an address literal (`[192.0.2.1]`, `[IPv6:…]`) or
/// a bare address, rather than a domain name?
pub(super) fn helo_is_literal(helo: &str) -> bool {
    helo.starts_with('[') || helo.parse::<std::net::IpAddr>().is_ok()
}

async fn check_one(
    a: &MessageAuthenticator,
    dns: &Dns,
    domain: &str,
    params: SpfParameters<'_>,
) -> SpfOutput {
    let verdicts = super::records::spf_duplicates(dns, domain).await;
    if verdicts.is_empty() {
        a.check_host(params).await
    } else {
        a.check_host(Parameters::new(params).with_cache(&verdicts))
            .await
    }
}

pub(super) async fn check(
    a: &MessageAuthenticator,
    dns: &Dns,
    origin: &Origin<'_>,
    host: &str,
) -> SpfResults {
    let literal = helo_is_literal(origin.helo);
    let helo = if literal {
        SpfOutput::new(origin.helo.to_string()).with_result(SpfResult::None)
    } else {
        check_one(a, dns, origin.helo, params(origin, host, true)).await
    };
    let domain = origin.mail_from_domain();
    let mail_from = if literal && origin.mail_from.is_empty() {
        // The null reverse-path checks "postmaster@HELO", and there is no
        // HELO domain to check.
        SpfOutput::new(domain.to_string()).with_result(SpfResult::None)
    } else {
        check_one(a, dns, domain, params(origin, host, false)).await
    };
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
