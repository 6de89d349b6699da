//! A router: recipients in the `domain` config value go to the `smarthost`
//! config value (`host:port`); everything else takes the built-in route.

use tern_sdk::{Destination, Envelope, Recipient, Router, config};

struct SmarthostRouter;

#[tern_sdk::hooks]
impl Router for SmarthostRouter {
    fn route(_envelope: Envelope, recipient: Recipient) -> Destination {
        let (Some(domain), Some(host)) = (config::get("domain"), config::get("smarthost")) else {
            return Destination::Default;
        };
        match recipient.address.rsplit_once('@') {
            Some((_, d)) if d.eq_ignore_ascii_case(&domain) => Destination::Smarthost(host),
            _ => Destination::Default,
        }
    }
}

tern_sdk::export!(SmarthostRouter: Router);
