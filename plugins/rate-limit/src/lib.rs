//! Rate limits with the key-value store's counters: messages (counted at
//! MAIL FROM) and recipients (counted at RCPT TO) per client address (its
//! /`ipv4_prefix` or /`ipv6_prefix` network), per authenticated user and
//! per sender address, each at most N per window (`"10/1m"`). A counter
//! starts at the first event and lasts one window (it is created with the
//! window as its expiry). Over the limit: 451 4.7.1 for a message, 452
//! 4.5.3 for a recipient; the client may try again later. Clients in
//! `exempt_networks` are not counted. See README.md for the keys.

use std::net::IpAddr;
use std::sync::OnceLock;
use tern_plugin_support::{self as support, Rate};
use tern_sdk::{Envelope, MailParams, Policy, RcptParams, Session, Verdict, config, kv, log};

/// What a limit counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Event {
    Message,
    Recipient,
}

/// Whose events a limit counts.
#[derive(Clone, Copy)]
enum Subject {
    Client,
    User,
    Sender,
}

struct Limit {
    event: Event,
    subject: Subject,
    rate: Rate,
}

struct Settings {
    limits: Vec<Limit>,
    exempt_networks: Vec<support::Network>,
    v4_prefix: u8,
    v6_prefix: u8,
}

impl Settings {
    fn load() -> Result<Settings, String> {
        let mut limits = Vec::new();
        for (event, e) in [
            (Event::Message, "messages"),
            (Event::Recipient, "recipients"),
        ] {
            for (subject, s) in [
                (Subject::Client, "client"),
                (Subject::User, "user"),
                (Subject::Sender, "sender"),
            ] {
                let key = format!("{e}_per_{s}");
                if let Some(v) = config::get(&key) {
                    let rate =
                        support::parse_rate(&v).map_err(|err| format!("config {key}: {err}"))?;
                    limits.push(Limit {
                        event,
                        subject,
                        rate,
                    });
                }
            }
        }
        let prefix = |key: &str, default: u8, max: u8| -> Result<u8, String> {
            match config::get(key) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| {
                        format!("config {key}: {v:?} is not a prefix length (0 to {max})")
                    }),
            }
        };
        Ok(Settings {
            limits,
            exempt_networks: support::networks(&config::get("exempt_networks").unwrap_or_default())
                .map_err(|e| format!("config exempt_networks: {e}"))?,
            v4_prefix: prefix("ipv4_prefix", 32, 32)?,
            v6_prefix: prefix("ipv6_prefix", 64, 128)?,
        })
    }
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let loaded = Settings::load();
        if let Ok(s) = &loaded {
            // A kind of event with no limit is never counted: its hook
            // has nothing to do.
            let idle: Vec<&str> = [
                (Event::Message, "on-mail-from"),
                (Event::Recipient, "on-rcpt-to"),
            ]
            .into_iter()
            .filter(|(event, _)| !s.limits.iter().any(|l| l.event == *event))
            .map(|(_, hook)| hook)
            .collect();
            config::skip_hooks(&idle);
        }
        loaded
    })
}

/// Counts one event against every limit of its kind that applies; the
/// first limit exceeded, with who exceeded it.
fn count(
    s: &Settings,
    event: Event,
    session: &Session,
    sender: &str,
) -> Result<Option<(String, Rate)>, String> {
    let ip: IpAddr = session.client.address.parse().map_err(|_| {
        format!(
            "client address {:?} is not an IP address",
            session.client.address
        )
    })?;
    if s.exempt_networks.iter().any(|n| n.contains(ip)) {
        return Ok(None);
    }
    let mut exceeded = None;
    for limit in s.limits.iter().filter(|l| l.event == event) {
        let (tag, who) = match limit.subject {
            Subject::Client => ("c", support::client_network(ip, s.v4_prefix, s.v6_prefix)),
            Subject::User => match &session.user {
                Some(u) => ("u", u.to_ascii_lowercase()),
                None => continue,
            },
            Subject::Sender if sender.is_empty() => continue,
            Subject::Sender => ("s", sender.to_ascii_lowercase()),
        };
        let kind = match event {
            Event::Message => "m",
            Event::Recipient => "r",
        };
        // The window is part of the key: changing a limit's window starts afresh.
        let key = format!("{kind}/{tag}/{}/{who}", limit.rate.window);
        let n = kv::increment(&key, 1, Some(limit.rate.window))?;
        if u64::try_from(n).unwrap_or(0) > limit.rate.count && exceeded.is_none() {
            exceeded = Some((who, limit.rate));
        }
    }
    Ok(exceeded)
}

fn per(rate: Rate) -> String {
    format!(
        "{} per {}",
        rate.count,
        support::describe_duration(rate.window)
    )
}

struct RateLimit;

#[tern_sdk::hooks]
impl Policy for RateLimit {
    fn on_mail_from(session: Session, address: String, _params: MailParams) -> Verdict {
        let s = match settings() {
            Ok(s) => s,
            Err(e) => {
                log::error(&format!("rate limits are off: {e}"));
                return Verdict::Continue;
            }
        };
        match count(s, Event::Message, &session, &address) {
            Ok(None) => Verdict::Continue,
            Ok(Some((who, rate))) => {
                log::info(&format!("message limit reached for {who} ({})", per(rate)));
                Verdict::tempfail(
                    451,
                    "4.7.1",
                    &format!(
                        "Rate limit reached: more than {} messages from {who} in {}, please try again later",
                        rate.count,
                        support::describe_duration(rate.window)
                    ),
                )
            }
            Err(e) => {
                log::warn(&format!("rate limit not counted: {e}"));
                Verdict::Continue
            }
        }
    }

    fn on_rcpt_to(
        session: Session,
        envelope: Envelope,
        _address: String,
        _params: RcptParams,
    ) -> Verdict {
        let Ok(s) = settings() else {
            return Verdict::Continue;
        };
        match count(s, Event::Recipient, &session, &envelope.sender) {
            Ok(None) => Verdict::Continue,
            Ok(Some((who, rate))) => {
                log::info(&format!(
                    "recipient limit reached for {who} ({})",
                    per(rate)
                ));
                Verdict::tempfail(
                    452,
                    "4.5.3",
                    &format!(
                        "Rate limit reached: more than {} recipients for {who} in {}, please try again later",
                        rate.count,
                        support::describe_duration(rate.window)
                    ),
                )
            }
            Err(e) => {
                log::warn(&format!("rate limit not counted: {e}"));
                Verdict::Continue
            }
        }
    }
}

tern_sdk::export!(RateLimit: Policy);
