//! DMARC (RFC 7489) evaluation with SPF and DKIM alignment. A From domain
//! whose policy discovery finds two records is not evaluated at all
//! (section 6.6.3; see `records.rs`).

use super::Origin;
use super::results::{DmarcCheck, DmarcPolicy, Outcome};
use crate::dns::Dns;
use crate::store::DmarcPublished;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::{
    AuthenticatedMessage, DkimOutput, DmarcOutput, DmarcResult, MessageAuthenticator, SpfOutput,
};

/// The DMARC evaluation of one message.
pub(super) enum Dmarc {
    Evaluated(DmarcOutput),
    /// Not applied: `_dmarc.{at}` publishes more than one record.
    NotApplied {
        from_domain: String,
        at: String,
    },
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

/// The record the From domain published, as an aggregate report states it
/// (None without one, or when DMARC was not applied).
pub(super) fn published(dmarc: &Dmarc) -> Option<DmarcPublished> {
    use mail_auth::dmarc::{Alignment, FailureOptions};
    let Dmarc::Evaluated(out) = dmarc else {
        return None;
    };
    let r = out.record()?;
    let align = |a: &Alignment| match a {
        Alignment::Strict => "s",
        Alignment::Relaxed => "r",
    };
    let policy = |p: &Policy| match p {
        Policy::Reject => "reject",
        Policy::Quarantine => "quarantine",
        Policy::None | Policy::Unspecified => "none",
    };
    let sp = if r.sp == Policy::Unspecified {
        &r.p
    } else {
        &r.sp
    };
    Some(DmarcPublished {
        domain: out.domain().to_string(),
        adkim: align(&r.adkim).into(),
        aspf: align(&r.aspf).into(),
        p: policy(&r.p).into(),
        sp: policy(sp).into(),
        // RFC 9989 dropped pct; its t=y asks for no enforcement.
        pct: if r.t { 0 } else { 100 },
        fo: match r.fo {
            FailureOptions::All => "0",
            FailureOptions::Any => "1",
            FailureOptions::Dkim => "d",
            FailureOptions::Spf => "s",
            FailureOptions::DkimSpf => "d:s",
        }
        .into(),
        rua: r
            .rua
            .iter()
            .map(|u| u.uri().trim_start_matches("mailto:").to_string())
            .collect(),
    })
}
