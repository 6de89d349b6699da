//! Greylisting with the key-value store: the first attempt of a (client,
//! sender, recipient) triplet is refused with 451 and remembered for a day;
//! a retry passes. A counter of refusals shows in the reply text.

use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, kv, log};

struct Greylist;

impl Policy for Greylist {
    fn on_rcpt_to(
        session: Session,
        envelope: Envelope,
        address: String,
        _params: RcptParams,
    ) -> Verdict {
        let key = format!(
            "t/{}/{}/{}",
            session.client.address,
            envelope.sender.to_lowercase(),
            address.to_lowercase()
        );
        match kv::get(&key) {
            Ok(Some(_)) => Verdict::Continue,
            Ok(None) => {
                if let Err(e) = kv::set(&key, b"1", Some(86_400)) {
                    log::warn(&format!("greylist: cannot remember {key}: {e}"));
                    return Verdict::Continue;
                }
                let n = kv::increment("refusals", 1, None).unwrap_or(-1);
                Verdict::tempfail(
                    451,
                    "4.7.1",
                    &format!("Greylisted, please try again later (refusal {n})"),
                )
            }
            Err(e) => {
                log::warn(&format!("greylist: kv error {e}"));
                Verdict::Continue
            }
        }
    }
}

tern_sdk::export!(Greylist: Policy);
