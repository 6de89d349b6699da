//! Tries the network: at RCPT TO, connects to the config's `host` and
//! `port` (a name resolves through the server's resolver) and reads one
//! line. Refuses with `550 5.7.1 got <line>` when that worked and
//! `451 4.7.1 no connection: <error>` when it did not, so a test can see
//! which connections the server let through. With `rcpt` set, it acts only
//! on that recipient (so several probes can share one server).

use std::io::{BufRead, BufReader};
use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, config};

struct NetProbe;

#[tern_sdk::hooks]
impl Policy for NetProbe {
    fn on_rcpt_to(_s: Session, _e: Envelope, address: String, _p: RcptParams) -> Verdict {
        if config::get("rcpt").is_some_and(|r| !r.eq_ignore_ascii_case(&address)) {
            return Verdict::Continue;
        }
        let host = config::get("host").unwrap_or_default();
        let port = config::get("port").and_then(|p| p.parse().ok()).unwrap_or(0);
        let line = tern_sdk::net::connect(&host, port).and_then(|stream| {
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line)?;
            Ok(line)
        });
        match line {
            Ok(line) => Verdict::reject(550, "5.7.1", &format!("got {}", line.trim())),
            Err(e) => Verdict::tempfail(451, "4.7.1", &format!("no connection: {e}")),
        }
    }
}

tern_sdk::export!(NetProbe: Policy);
