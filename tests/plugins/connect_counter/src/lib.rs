//! A policy that shows which instance serves each session: every
//! `on-connect` logs how many connects this instance has answered
//! ("connect 2 on this instance"). It also declares `on-helo`, which does
//! nothing; with `helo = "off"` it turns that hook off (`config.skip-hooks`),
//! so a session has nothing more for it once it connected.

use std::sync::atomic::{AtomicU32, Ordering};
use tern_sdk::{Client, Policy, Session, Verdict, config, log};

struct ConnectCounter;

static CONNECTS: AtomicU32 = AtomicU32::new(0);

#[tern_sdk::hooks]
impl Policy for ConnectCounter {
    fn on_connect(_client: Client) -> Verdict {
        if config::get("helo").as_deref() == Some("off") {
            config::skip_hooks(&["on-helo"]);
        }
        let n = CONNECTS.fetch_add(1, Ordering::Relaxed) + 1;
        log::info(&format!("connect {n} on this instance"));
        Verdict::Continue
    }

    fn on_helo(_session: Session, _name: String) -> Verdict {
        Verdict::Continue
    }
}

tern_sdk::export!(ConnectCounter: Policy);
