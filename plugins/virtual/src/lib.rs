//! Virtual domains and aliases, through the `rewrite` hook (asked about
//! each RCPT TO before Tern's own recipient checks). The alias map comes
//! from the `map` config value: `key = target, target; key = target`.
//! A key is an address or `@domain` (a catch-all for the domain); a target
//! is an address (a local mailbox or a remote address) or `@domain` (the
//! same local part in that domain). Targets that are keys themselves are
//! expanded again (up to 8 levels). `bob+lists@…` is looked up as itself,
//! then as `bob@…`, then as the domain's catch-all. Addresses in `domains`
//! that match nothing are refused (550 5.1.1); in `subaddress_domains`
//! they lose their `+detail` and Tern's own checks decide; anywhere else
//! they are left alone. See README.md for the keys.

mod map;

use map::{AliasMap, Lookup};
use std::sync::OnceLock;
use tern_sdk::{Envelope, Recipient, Reply, Rewrite, Rewritten, config, log};

fn alias_map() -> &'static Result<AliasMap, String> {
    static MAP: OnceLock<Result<AliasMap, String>> = OnceLock::new();
    MAP.get_or_init(|| {
        AliasMap::from_config(
            &config::get("map").unwrap_or_default(),
            &config::get("domains").unwrap_or_default(),
            &config::get("subaddress_domains").unwrap_or_default(),
            &config::get("detail_separator").unwrap_or_else(|| "+".into()),
        )
    })
}

struct Virtual;

#[tern_sdk::hooks]
impl Rewrite for Virtual {
    fn rewrite_recipient(_envelope: Envelope, recipient: Recipient) -> Rewritten {
        let map = match alias_map() {
            Ok(m) => m,
            Err(e) => {
                log::error(&format!("virtual aliases are off: {e}"));
                return Rewritten::Tempfail(Reply::new(
                    451,
                    "4.3.5",
                    "Alias map misconfigured, please try again later",
                ));
            }
        };
        match map.resolve(&recipient.address) {
            Lookup::NotOurs => Rewritten::Unchanged,
            Lookup::Unknown => Rewritten::Reject(Reply::new(
                550,
                "5.1.1",
                &format!(
                    "<{}>: Recipient address rejected: User unknown in virtual domain",
                    recipient.address
                ),
            )),
            Lookup::To(list) => {
                log::debug(&format!("{} -> {}", recipient.address, list.join(", ")));
                Rewritten::Addresses(list)
            }
        }
    }
}

tern_sdk::export!(Virtual: Rewrite);
