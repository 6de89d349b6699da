//! A router that demands verified TLS: for a recipient domain `D`, config
//! `hosts.D = "host:port"` relays it there (else the built-in route), and
//! `verified.D = "yes"` (or the name the certificate must be valid for)
//! demands verified TLS for it.

use tern_sdk::{Destination, Envelope, Recipient, Router, config, routing};

struct TlsRouter;

#[tern_sdk::hooks]
impl Router for TlsRouter {
    fn route(_envelope: Envelope, recipient: Recipient) -> Destination {
        let Some((_, domain)) = recipient.address.rsplit_once('@') else {
            return Destination::Default;
        };
        let domain = domain.to_ascii_lowercase();
        match config::get(&format!("verified.{domain}")).as_deref() {
            None => {}
            Some("yes") => routing::require_verified_tls(None),
            Some(name) => routing::require_verified_tls(Some(name)),
        }
        match config::get(&format!("hosts.{domain}")) {
            Some(host) => Destination::Relay(vec![host]),
            None => Destination::Default,
        }
    }
}

tern_sdk::export!(TlsRouter: Router);
