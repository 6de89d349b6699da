//! blocklist: a Tern policy plugin in Rust.
//!
//! Refuses recipients whose local part (before the last `@`) is in the
//! comma-separated `blocked` value of the plugin's config, ignoring case:
//!
//! ```toml
//! [[plugin]]
//! name = "blocklist"
//! path = "examples/rust/build/blocklist.wasm"
//! config = { blocked = "nobody,noreply,postmaster-test" }
//! ```
//!
//! Every decision is written to the server log. The other policy hooks keep
//! the defaults of `tern_sdk::Policy`, which let everything through.

use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, config, log};

struct Blocklist;

/// Whether `local` is one of the comma-separated entries of `list`.
fn listed(list: &str, local: &str) -> bool {
    let local = local.to_lowercase();
    list.split(',')
        .map(|entry| entry.trim().to_lowercase())
        .any(|entry| !entry.is_empty() && entry == local)
}

#[tern_sdk::hooks]
impl Policy for Blocklist {
    fn on_rcpt_to(
        _session: Session,
        _envelope: Envelope,
        address: String,
        _params: RcptParams,
    ) -> Verdict {
        let local = address.rsplit_once('@').map_or(address.as_str(), |(l, _)| l);
        let blocked = config::get("blocked").unwrap_or_default();
        if listed(&blocked, local) {
            log::info(&format!("blocklist: reject {address}"));
            return Verdict::reject(
                550,
                "5.1.1",
                &format!("<{address}>: this address does not receive mail (blocked by policy)"),
            );
        }
        log::info(&format!("blocklist: continue {address}"));
        Verdict::Continue
    }
}

tern_sdk::export!(Blocklist: Policy);
