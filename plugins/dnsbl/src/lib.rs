//! DNS blocklists (DNSBL, RFC 5782): the client's address, reversed (IPv4
//! octets, IPv6 nibbles), is looked up under each of the configured
//! `zones`; an A record in 127.0.0.0/8 means listed. `action = "reject"`
//! refuses listed clients with 554 5.7.1 naming the list (at connect, or at
//! RCPT TO with `stage = "rcpt"`); `action = "tag"` lets the mail in and
//! adds a header naming the lists at the end of data. Authenticated and
//! trusted clients and `skip_networks` are never looked up. A DNS failure
//! is logged and ignored, or answered 451 with
//! `on_temporary_error = "tempfail"`. A client on no list is let through
//! by the server without asking again for `pass_ttl` (5 minutes by
//! default; `verdicts.same-for-client`). See README.md for the keys.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::OnceLock;
use tern_plugin_support as support;
use tern_sdk::{
    Client, Envelope, Filter, FilterAction, FilterVerdict, Message, Policy, RcptParams, Reply,
    Session, Verdict, clock, config, dns, log, verdicts,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Reject,
    Tag,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Rcpt,
}

struct Settings {
    zones: Vec<String>,
    action: Action,
    stage: Stage,
    tempfail_on_dns_error: bool,
    header: String,
    skip_networks: Vec<support::Network>,
    /// Seconds a client found on no list is not looked up again.
    pass_ttl: u32,
}

impl Settings {
    /// The hooks with nothing to do as configured: one stage refuses, or
    /// the end of data tags.
    fn idle_hooks(&self) -> &'static [&'static str] {
        match (self.action, self.stage) {
            (Action::Reject, Stage::Connect) => &["on-rcpt-to", "on-data"],
            (Action::Reject, Stage::Rcpt) => &["on-connect", "on-data"],
            (Action::Tag, _) => &["on-connect", "on-rcpt-to"],
        }
    }

    fn load() -> Result<Settings, String> {
        let zones: Vec<String> = support::list(&config::get("zones").unwrap_or_default())
            .into_iter()
            .map(|z| z.trim_matches('.').to_ascii_lowercase())
            .collect();
        if zones.is_empty() {
            return Err("config zones: no DNS list given (zones = \"zen.example\")".into());
        }
        let action = match config::get("action").as_deref().map(str::trim) {
            None | Some("reject") => Action::Reject,
            Some("tag") => Action::Tag,
            Some(other) => return Err(format!("config action: {other:?} is not reject or tag")),
        };
        let stage = match config::get("stage").as_deref().map(str::trim) {
            None | Some("connect") => Stage::Connect,
            Some("rcpt") => Stage::Rcpt,
            Some(other) => return Err(format!("config stage: {other:?} is not connect or rcpt")),
        };
        let tempfail_on_dns_error =
            match config::get("on_temporary_error").as_deref().map(str::trim) {
                None | Some("continue") => false,
                Some("tempfail") => true,
                Some(other) => {
                    return Err(format!(
                        "config on_temporary_error: {other:?} is not continue or tempfail"
                    ));
                }
            };
        Ok(Settings {
            zones,
            action,
            stage,
            tempfail_on_dns_error,
            header: config::get("header").unwrap_or_else(|| "X-DNSBL".into()),
            skip_networks: support::networks(&config::get("skip_networks").unwrap_or_default())
                .map_err(|e| format!("config skip_networks: {e}"))?,
            pass_ttl: support::parse_duration(
                &config::get("pass_ttl").unwrap_or_else(|| "5m".into()),
            )
            .map_err(|e| format!("config pass_ttl: {e}"))?
            .min(86_400) as u32,
        })
    }
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let loaded = Settings::load();
        if let Ok(s) = &loaded {
            config::skip_hooks(s.idle_hooks());
        }
        loaded
    })
}

/// What the lists say about one client.
#[derive(Clone, Default)]
struct Findings {
    /// `(zone, reason)` for each list naming the client.
    listed: Vec<(String, String)>,
    /// Lists that could not be asked (temporary DNS errors).
    failed: Vec<String>,
}

thread_local! {
    /// The last client looked up (address, port, server address), when,
    /// and what was found: a session's hooks share one set of look-ups.
    static LAST: RefCell<Option<(ClientId, u64, Findings)>> = const { RefCell::new(None) };
}

type ClientId = (String, u16, String);

/// How long a client's findings are reused (within its session).
const REUSE_MS: u64 = 60_000;

fn look_up(s: &Settings, client: &Client) -> Findings {
    let id = (client.address.clone(), client.port, client.local.clone());
    let now = clock::now_ms();
    let cached = LAST.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|(k, at, _)| *k == id && now.saturating_sub(*at) < REUSE_MS)
            .map(|(_, _, f)| f.clone())
    });
    if let Some(f) = cached {
        return f;
    }
    let mut found = Findings::default();
    if let Ok(ip) = client.address.parse::<IpAddr>() {
        for zone in &s.zones {
            let name = support::dnsbl_name(ip, zone);
            match dns::a(&name) {
                Ok(answers) => {
                    let listed = answers
                        .iter()
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .any(|a| match a {
                            // 127.255.255.0/24 is how lists say "query refused" (a public resolver, over quota).
                            IpAddr::V4(v4) => {
                                v4.octets()[0] == 127 && v4.octets()[1..3] != [255, 255]
                            }
                            IpAddr::V6(_) => false,
                        });
                    if listed {
                        let reason = dns::txt(&name)
                            .ok()
                            .and_then(|t| t.into_iter().next())
                            .unwrap_or_default();
                        log::info(&format!("{} is listed on {zone}: {reason}", client.address));
                        found.listed.push((zone.clone(), reason));
                    } else {
                        log::warn(&format!(
                            "{zone} answered {answers:?} for {name}: not a listing, ignored"
                        ));
                    }
                }
                Err(dns::DnsError::NotFound) => {}
                Err(dns::DnsError::Temporary(e)) => {
                    log::warn(&format!("{zone}: lookup of {name} failed ({e})"));
                    found.failed.push(zone.clone());
                }
            }
        }
    }
    LAST.with(|l| *l.borrow_mut() = Some((id, now, found.clone())));
    found
}

/// Is this client exempt from the lists?
fn exempt(s: &Settings, client: &Client, user: Option<&str>) -> bool {
    if client.trusted || user.is_some() {
        return true;
    }
    match client.address.parse::<IpAddr>() {
        Ok(ip) => s.skip_networks.iter().any(|n| n.contains(ip)),
        Err(_) => true,
    }
}

/// The reject action's verdict for a client.
fn refusal(s: &Settings, client: &Client) -> Verdict {
    let found = look_up(s, client);
    if let Some((zone, reason)) = found.listed.first() {
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        return Verdict::reject(
            554,
            "5.7.1",
            &format!(
                "Service unavailable; client [{}] blocked using {zone}{why}",
                client.address
            ),
        );
    }
    if !found.failed.is_empty() && s.tempfail_on_dns_error {
        return Verdict::tempfail(
            451,
            "4.4.3",
            &format!(
                "Cannot check {} just now, please try again later",
                found.failed.join(", ")
            ),
        );
    }
    if found.failed.is_empty() && s.pass_ttl > 0 {
        // On no list, every list answered: the server lets this client's
        // next sessions through here without asking again for a while
        // (postscreen's cache of passed clients).
        verdicts::same_for_client(s.pass_ttl);
    }
    Verdict::Continue
}

struct Dnsbl;

#[tern_sdk::hooks]
impl Policy for Dnsbl {
    fn on_connect(client: Client) -> Verdict {
        match settings() {
            Ok(s)
                if s.action == Action::Reject
                    && s.stage == Stage::Connect
                    && !exempt(s, &client, None) =>
            {
                refusal(s, &client)
            }
            Ok(_) => Verdict::Continue,
            Err(e) => {
                log::error(&format!("DNSBL checks are off: {e}"));
                Verdict::Continue
            }
        }
    }

    fn on_rcpt_to(
        session: Session,
        _envelope: Envelope,
        _address: String,
        _params: RcptParams,
    ) -> Verdict {
        match settings() {
            Ok(s)
                if s.action == Action::Reject
                    && s.stage == Stage::Rcpt
                    && !exempt(s, &session.client, session.user.as_deref()) =>
            {
                refusal(s, &session.client)
            }
            _ => Verdict::Continue,
        }
    }
}

#[tern_sdk::hooks]
impl Filter for Dnsbl {
    fn on_data(session: Session, _envelope: Envelope, _message: &Message) -> FilterVerdict {
        let Ok(s) = settings() else {
            return FilterVerdict::pass();
        };
        if s.action != Action::Tag || exempt(s, &session.client, session.user.as_deref()) {
            return FilterVerdict::pass();
        }
        let found = look_up(s, &session.client);
        if !found.failed.is_empty() && s.tempfail_on_dns_error {
            return FilterVerdict {
                action: FilterAction::Tempfail(Reply::new(
                    451,
                    "4.4.3",
                    &format!(
                        "Cannot check {} just now, please try again later",
                        found.failed.join(", ")
                    ),
                )),
                edits: Vec::new(),
            };
        }
        if found.listed.is_empty() {
            return FilterVerdict::pass();
        }
        let zones: Vec<&str> = found.listed.iter().map(|(z, _)| z.as_str()).collect();
        FilterVerdict::pass().add_header(&s.header, &format!("listed on {}", zones.join(", ")))
    }
}

tern_sdk::export!(Dnsbl: Policy, Filter);
