//! What the end of data tells a message's decision trace (`crate::trace`):
//! the SPF/DKIM/DMARC/ARC verdict and recipients refused for their quota
//! (at the end of data, and at RCPT already).

use super::session::Recipient;
use crate::mail::{Reply, Target};
use crate::mailauth::{AuthResults, Decision};
use crate::trace::{Event, Stage};

/// What SPF, DKIM, DMARC and ARC found and what `[auth]` made of it.
pub(super) fn auth_event(results: &AuthResults, decision: &Decision) -> Event {
    let (word, reply) = match decision {
        Decision::Accept => ("accept", None),
        Decision::Quarantine => ("quarantine", None),
        Decision::Reject(code, text) => ("reject", Some(Reply::new(550, code, text.clone()))),
    };
    let spf = results
        .spf_mail_from
        .as_ref()
        .map_or("off", |s| s.result.as_str());
    let dkim: Vec<&str> = results.dkim.iter().map(|d| d.result.as_str()).collect();
    let detail = format!(
        "spf={spf} dkim={} dmarc={} arc={}",
        if dkim.is_empty() {
            "none".to_string()
        } else {
            dkim.join(",")
        },
        results.dmarc.result.as_str(),
        results.arc.as_str()
    );
    let e = Event::new(Stage::Data, "spf/dkim/dmarc", word).detail(detail);
    match reply {
        Some(r) => e.reply(r),
        None => e,
    }
}

/// A recipient refused for its quota, at RCPT or at the end of data.
pub(super) fn quota_event(stage: Stage, r: &Recipient, reply: &Reply) -> Event {
    let users = r
        .targets
        .iter()
        .filter_map(|t| match t {
            Target::Local(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    Event::refusal(stage, "quota", reply)
        .rcpt(r.address.to_string())
        .users(users)
}
