//! A policy: refuses recipients whose local part is `nobody` (or the
//! `local` config value) with 550 5.1.1.

use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, config, log};

struct NoNobody;

#[tern_sdk::hooks]
impl Policy for NoNobody {
    fn on_rcpt_to(
        _session: Session,
        _envelope: Envelope,
        address: String,
        _params: RcptParams,
    ) -> Verdict {
        let banned = config::get("local").unwrap_or_else(|| "nobody".to_string());
        let local = address.rsplit_once('@').map(|(l, _)| l).unwrap_or(&address);
        if local.eq_ignore_ascii_case(&banned) {
            log::info(&format!("refusing {address}"));
            return Verdict::reject(
                550,
                "5.1.1",
                &format!("<{address}>: {banned} lives here no more"),
            );
        }
        Verdict::Continue
    }
}

tern_sdk::export!(NoNobody: Policy);
