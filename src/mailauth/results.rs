//! `AuthResults`: what the checks found, as plain Rust data for the hooks
//! (and, through them, plugins), plus the rendered `Authentication-Results`
//! header (RFC 8601) under our host name.

use super::Origin;
use super::dmarc::Dmarc;
use super::spf::{SpfResults, params};
use mail_auth::{ArcOutput, AuthenticatedMessage, AuthenticationResults, DkimOutput};
use serde::Serialize;

/// One method's result (RFC 8601 result keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::SoftFail => "softfail",
            Outcome::Neutral => "neutral",
            Outcome::None => "none",
            Outcome::TempError => "temperror",
            Outcome::PermError => "permerror",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpfCheck {
    pub result: Outcome,
    /// The domain whose record was evaluated.
    pub domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkimCheck {
    pub result: Outcome,
    /// `d=` and `s=` of the signature (empty when it could not be parsed).
    pub domain: String,
    pub selector: String,
    pub reason: Option<String>,
}

/// The policy a DMARC record publishes for failing mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcPolicy {
    None,
    Quarantine,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmarcCheck {
    pub result: Outcome,
    /// The RFC5322.From domain.
    pub domain: String,
    /// The policy that applies to this domain (`p=`, `sp=` or `np=`).
    pub policy: DmarcPolicy,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
}

impl DmarcCheck {
    /// DMARC not applied to a message from `domain`.
    pub fn none(domain: String) -> DmarcCheck {
        DmarcCheck {
            result: Outcome::None,
            domain,
            policy: DmarcPolicy::None,
            spf_aligned: false,
            dkim_aligned: false,
        }
    }
}

/// Everything the checks found about one message from outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthResults {
    /// `None` when SPF was not checked (`spf_fail = "off"`).
    pub spf_helo: Option<SpfCheck>,
    pub spf_mail_from: Option<SpfCheck>,
    /// One entry per DKIM-Signature.
    pub dkim: Vec<DkimCheck>,
    pub arc: Outcome,
    pub dmarc: DmarcCheck,
    /// The complete `Authentication-Results:` field, CRLF-terminated.
    pub header: String,
    /// The ARC set Tern adds when it forwards the message (`[auth]
    /// arc_seal`): ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results.
    pub arc_set: Option<String>,
    /// The DMARC record of the From domain, for aggregate reports.
    #[serde(skip)]
    pub dmarc_published: Option<crate::store::DmarcPublished>,
}

impl AuthResults {
    /// Does DMARC fail under a published `p=` other than none?
    pub fn dmarc_asks(&self) -> Option<DmarcPolicy> {
        (self.dmarc.result == Outcome::Fail && self.dmarc.policy != DmarcPolicy::None)
            .then_some(self.dmarc.policy)
    }
}

fn spf_outcome(r: mail_auth::SpfResult) -> Outcome {
    use mail_auth::SpfResult as R;
    match r {
        R::Pass => Outcome::Pass,
        R::Fail => Outcome::Fail,
        R::SoftFail => Outcome::SoftFail,
        R::Neutral => Outcome::Neutral,
        R::TempError => Outcome::TempError,
        R::PermError => Outcome::PermError,
        R::None => Outcome::None,
    }
}

fn spf_checks(spf: Option<&SpfResults>) -> (Option<SpfCheck>, Option<SpfCheck>) {
    let check = |o: &mail_auth::SpfOutput| SpfCheck {
        result: spf_outcome(o.result()),
        domain: o.domain().to_string(),
    };
    match spf {
        Some(s) => (Some(check(&s.helo)), Some(check(&s.mail_from))),
        None => (None, None),
    }
}

fn add_spf(
    ar: &mut AuthenticationResults<'_>,
    spf: Option<&SpfResults>,
    origin: &Origin<'_>,
    host: &str,
) {
    if let Some(s) = spf {
        ar.set_spf_result(&s.mail_from, &params(origin, host, false));
        ar.set_spf_result(&s.helo, &params(origin, host, true));
    }
}

fn field(ar: &AuthenticationResults<'_>, extra: &str) -> String {
    format!("Authentication-Results: {ar}{extra}\r\n")
}

/// What mail-auth found about one parsed message.
pub(super) struct Outputs<'a, 'x> {
    pub spf: Option<&'a SpfResults>,
    pub msg: &'a AuthenticatedMessage<'x>,
    pub dkim: &'a [DkimOutput<'x>],
    pub arc: &'a ArcOutput<'x>,
    pub dmarc: &'a Dmarc,
}

pub(super) fn build(
    host: &str,
    origin: &Origin<'_>,
    out: Outputs<'_, '_>,
    sealer: Option<&super::Signer>,
) -> AuthResults {
    let Outputs {
        spf,
        msg,
        dkim,
        arc,
        dmarc,
    } = out;
    // mail-auth has no way to add an entry of our own (the dkim= entries
    // Tern words differently, dmarc= when not applied), but writes the
    // authserv-id verbatim: the entries rendered here follow it, and the
    // ARC-Authentication-Results of a seal carry the same text.
    let mut lead = {
        let mut spf_ar = AuthenticationResults::new(host);
        add_spf(&mut spf_ar, spf, origin, host);
        spf_ar.to_string()
    };
    if dkim.is_empty() {
        lead.push_str(";\r\n\tdkim=none");
    } else {
        lead.push_str(&super::dkim::entries(dkim, msg.first_from_address()));
    }
    if let Some(entry) = dmarc.own_entry() {
        lead.push_str(&entry);
    }
    let finish = |ar: &mut AuthenticationResults<'_>| {
        if !msg.arc_seals().is_empty() {
            ar.set_arc_result(arc, origin.ip);
        }
        if let Dmarc::Evaluated(d) = dmarc {
            ar.set_dmarc_result(d);
        }
    };
    let mut ar = AuthenticationResults::new(&lead);
    finish(&mut ar);
    let header_text = field(&ar, "");
    // mail-auth hashes an ARC-Authentication-Results under relaxed
    // canonicalization but takes the authserv-id part as written: the
    // entries in it go unfolded, or the seal would not verify.
    let flat = lead.replace("\r\n\t", " ");
    let mut sealed_ar = AuthenticationResults::new(&flat);
    finish(&mut sealed_ar);
    let arc_set = sealer.and_then(|s| s.arc_seal(msg, &sealed_ar, arc));
    let (spf_helo, spf_mail_from) = spf_checks(spf);
    AuthResults {
        spf_helo,
        spf_mail_from,
        dkim: super::dkim::checks(dkim),
        arc: if msg.arc_seals().is_empty() {
            Outcome::None
        } else {
            super::dkim::outcome(arc.result())
        },
        dmarc: super::dmarc::result(dmarc),
        header: header_text,
        arc_set,
        dmarc_published: super::dmarc::published(dmarc),
    }
}

/// Results for bytes mail-auth cannot parse as a message.
pub(super) fn unparsed(host: &str, origin: &Origin<'_>, spf: Option<SpfResults>) -> AuthResults {
    let mut ar = AuthenticationResults::new(host);
    add_spf(&mut ar, spf.as_ref(), origin, host);
    let (spf_helo, spf_mail_from) = spf_checks(spf.as_ref());
    AuthResults {
        spf_helo,
        spf_mail_from,
        dkim: Vec::new(),
        arc: Outcome::None,
        dmarc: DmarcCheck::none(String::new()),
        header: field(&ar, ";\r\n\tdkim=none;\r\n\tdmarc=none"),
        arc_set: None,
        dmarc_published: None,
    }
}

/// Byte offsets (into `header`, the received header section) of the field
/// names of `Authentication-Results` fields whose authserv-id is
/// `hostname`: forgeries, or our own from an earlier pass, that must not be
/// taken as ours (RFC 8601 section 5).
pub fn forged_results(header: &[u8], hostname: &str) -> Vec<usize> {
    const NAME: &[u8] = b"authentication-results:";
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < header.len() {
        let end = header[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(header.len(), |p| pos + p + 2);
        // Unfold: the field continues while the next line starts with WSP.
        let mut field_end = end;
        while field_end < header.len() && matches!(header[field_end], b' ' | b'\t') {
            field_end = header[field_end..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(header.len(), |p| field_end + p + 2);
        }
        let line = &header[pos..field_end];
        if line.len() >= NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            let value = String::from_utf8_lossy(&line[NAME.len()..]);
            let id = authserv_id(&value);
            if id.eq_ignore_ascii_case(hostname) {
                out.push(pos);
            }
        }
        pos = field_end;
    }
    out
}

/// The authserv-id: the first token of the value, comments skipped.
fn authserv_id(value: &str) -> String {
    let mut depth = 0u32;
    let mut id = String::new();
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            ';' => break,
            c if c.is_whitespace() => {
                if !id.is_empty() {
                    break;
                }
            }
            c => id.push(c),
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_results_claiming_our_name() {
        let h = b"Received: x\r\nAuthentication-Results: mx.example.test;\r\n\tspf=pass\r\nauthentication-results: (c) MX.EXAMPLE.TEST 1; none\r\nAuthentication-Results: other.test; dkim=pass\r\nSubject: Authentication-Results: mx.example.test\r\n\r\n";
        let found = forged_results(h, "mx.example.test");
        assert_eq!(found.len(), 2);
        assert!(h[found[0]..].starts_with(b"Authentication-Results: mx"));
        assert!(h[found[1]..].starts_with(b"authentication-results: (c)"));
    }
}
