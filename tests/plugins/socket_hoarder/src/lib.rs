//! Holds connections: at RCPT TO `keep-N@…` it opens N connections to the
//! config's `host` and `port` and keeps them (in a static, so across calls
//! and sessions of this instance); `drop@…` drops every one it keeps;
//! `trap@…` traps, so its instance is thrown away with what it keeps.
//! Answers `451 4.7.1 holding K, opened M of N[: first error]` (`dropped
//! M` for `drop`), so a test can see how many the server let it hold.

use std::net::TcpStream;
use std::sync::Mutex;
use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, config};

struct SocketHoarder;

static KEPT: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());

#[tern_sdk::hooks]
impl Policy for SocketHoarder {
    fn on_rcpt_to(_s: Session, _e: Envelope, address: String, _p: RcptParams) -> Verdict {
        let local = address.split('@').next().unwrap_or_default();
        let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
        let done = if local == "trap" {
            panic!("asked to trap");
        } else if local == "drop" {
            let n = kept.len();
            kept.clear();
            format!("dropped {n}")
        } else if let Some(n) = local
            .strip_prefix("keep-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            let host = config::get("host").unwrap_or_default();
            let port = config::get("port")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let mut opened = 0;
            let mut first_error = String::new();
            for _ in 0..n {
                match tern_sdk::net::connect(&host, port) {
                    Ok(stream) => {
                        kept.push(stream);
                        opened += 1;
                    }
                    Err(e) => {
                        first_error = format!(": {e}");
                        break;
                    }
                }
            }
            format!("opened {opened} of {n}{first_error}")
        } else {
            return Verdict::Continue;
        };
        Verdict::tempfail(451, "4.7.1", &format!("holding {}, {done}", kept.len()))
    }
}

tern_sdk::export!(SocketHoarder: Policy);
