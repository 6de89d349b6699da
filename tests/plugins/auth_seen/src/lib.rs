//! A filter deciding on the authentication results the envelope carries:
//! adds `X-Auth-Seen` with the SPF, DKIM, DMARC and ARC outcomes it was
//! given, and refuses mail whose DMARC check failed when the config says
//! `refuse_dmarc_fail = "yes"`.

use tern_sdk::{
    AuthOutcome, Envelope, Filter, FilterAction, FilterVerdict, Message, Reply, Session, config,
};

fn word(o: AuthOutcome) -> &'static str {
    match o {
        AuthOutcome::Pass => "pass",
        AuthOutcome::Fail => "fail",
        AuthOutcome::Softfail => "softfail",
        AuthOutcome::Neutral => "neutral",
        AuthOutcome::None => "none",
        AuthOutcome::Temperror => "temperror",
        AuthOutcome::Permerror => "permerror",
    }
}

struct AuthSeen;

impl Filter for AuthSeen {
    fn on_data(_session: Session, envelope: Envelope, _message: &Message) -> FilterVerdict {
        let Some(auth) = envelope.auth else {
            return FilterVerdict::pass().add_header("X-Auth-Seen", "none given");
        };
        let spf = auth
            .spf_mail_from
            .as_ref()
            .map(|s| format!("{}({})", word(s.outcome), s.domain))
            .unwrap_or_else(|| "off".into());
        let dkim: Vec<String> = auth
            .dkim
            .iter()
            .map(|d| format!("{}({})", word(d.outcome), d.domain))
            .collect();
        let value = format!(
            "spf={spf}; dkim={}; dmarc={}({}); arc={}",
            if dkim.is_empty() { "none".into() } else { dkim.join(",") },
            word(auth.dmarc.outcome),
            auth.dmarc.domain,
            word(auth.arc)
        );
        let mut verdict = FilterVerdict::pass().add_header("X-Auth-Seen", &value);
        if auth.dmarc.outcome == AuthOutcome::Fail
            && config::get("refuse_dmarc_fail").as_deref() == Some("yes")
        {
            verdict.action = FilterAction::Reject(Reply::new(
                550,
                "5.7.1",
                &format!("auth_seen: DMARC failed for {}", auth.dmarc.domain),
            ));
        }
        verdict
    }
}

tern_sdk::export!(AuthSeen: Filter);
