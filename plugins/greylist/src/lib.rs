//! Greylisting (RFC 6647) at RCPT TO. A (client network, sender,
//! recipient) triplet seen for the first time is refused with 451 4.7.1 and
//! remembered in the plugin's key-value store; a retry once `delay` has
//! passed (and before `expiry`) is accepted and confirms the triplet for
//! `lifetime`. Clients in `allow_networks`, senders in `allow_domains`,
//! authenticated and trusted clients, and client networks that passed
//! `auto_allow` times are never greylisted. See README.md for the keys.
//!
//! Store layout: `t/<network>/<sender>/<recipient>` holds the first-seen
//! time (Unix ms, decimal) of an unconfirmed triplet, or `ok` once
//! confirmed; `p/<network>` counts the recipients the network got through.

use std::net::IpAddr;
use std::sync::OnceLock;
use tern_plugin_support as support;
use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, clock, config, kv, log, verdicts};

/// The plugin's settings, read from its config once per instance.
struct Settings {
    delay: u64,
    expiry: u64,
    lifetime: u64,
    allow_networks: Vec<support::Network>,
    allow_domains: Vec<String>,
    auto_allow: u64,
    v4_prefix: u8,
    v6_prefix: u8,
}

fn setting<T>(
    key: &str,
    default: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, String> {
    let value = config::get(key).unwrap_or_else(|| default.to_string());
    parse(&value).map_err(|e| format!("config {key}: {e}"))
}

fn prefix(max: u8) -> impl Fn(&str) -> Result<u8, String> {
    move |t: &str| {
        t.trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{t:?} is not a prefix length (0 to {max})"))
    }
}

impl Settings {
    fn load() -> Result<Settings, String> {
        Ok(Settings {
            delay: setting("delay", "5m", support::parse_duration)?,
            expiry: setting("expiry", "1d", support::parse_duration)?,
            lifetime: setting("lifetime", "35d", support::parse_duration)?,
            allow_networks: setting("allow_networks", "", support::networks)?,
            allow_domains: support::list(&config::get("allow_domains").unwrap_or_default())
                .into_iter()
                .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
                .collect(),
            auto_allow: setting("auto_allow", "5", |t| {
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{t:?} is not a number"))
            })?,
            v4_prefix: setting("ipv4_prefix", "24", prefix(32))?,
            v6_prefix: setting("ipv6_prefix", "64", prefix(128))?,
        })
    }
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(Settings::load)
}

/// A store key for the triplet, within the store's key-length limit.
fn triplet_key(network: &str, sender: &str, recipient: &str) -> String {
    let key = format!(
        "t/{network}/{}/{}",
        sender.to_ascii_lowercase(),
        recipient.to_ascii_lowercase()
    );
    if key.len() <= 400 {
        return key;
    }
    // Very long addresses: a 64-bit FNV-1a digest of the pair stands for them.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("t/{network}/#{h:016x}")
}

/// Seconds the server may let an allowed client's recipients through
/// without asking (`verdicts.same-for-client`): its network is in
/// `allow_networks` (a reload forgets it) or was auto-allowed (which lasts
/// `lifetime`).
const CLIENT_PASS: u32 = 3600;

struct Greylist;

impl Greylist {
    fn judge(
        s: &Settings,
        session: &Session,
        sender: &str,
        recipient: &str,
    ) -> Result<Verdict, String> {
        if session.user.is_some() || session.client.trusted {
            return Ok(Verdict::Continue);
        }
        let ip: IpAddr = session.client.address.parse().map_err(|_| {
            format!(
                "client address {:?} is not an IP address",
                session.client.address
            )
        })?;
        if s.allow_networks.iter().any(|n| n.contains(ip)) {
            verdicts::same_for_client(CLIENT_PASS);
            return Ok(Verdict::Continue);
        }
        let (_, sender_domain) = support::split_address(sender);
        if !sender_domain.is_empty()
            && s.allow_domains
                .iter()
                .any(|d| support::in_domain(&sender_domain, d))
        {
            return Ok(Verdict::Continue);
        }
        let network = support::client_network(ip, s.v4_prefix, s.v6_prefix);
        let passes_key = format!("p/{network}");
        if s.auto_allow > 0 {
            let passes = kv::get(&passes_key)?
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if passes >= s.auto_allow {
                verdicts::same_for_client(CLIENT_PASS);
                return Ok(Verdict::Continue);
            }
        }
        let key = triplet_key(&network, sender, recipient);
        let now = clock::now_ms();
        let wait = match kv::get(&key)? {
            Some(v) if v == b"ok" => None,
            Some(v) => {
                let first: u64 = String::from_utf8_lossy(&v).parse().unwrap_or(now);
                let ready = first.saturating_add(s.delay.saturating_mul(1000));
                if now >= ready {
                    None
                } else {
                    Some((ready - now).div_ceil(1000))
                }
            }
            None => {
                kv::set(
                    &key,
                    now.to_string().as_bytes(),
                    Some(s.expiry.max(s.delay + 1)),
                )?;
                log::info(&format!("greylisted {network} <{sender}> -> <{recipient}>"));
                return Ok(Verdict::tempfail(
                    451,
                    "4.7.1",
                    &format!(
                        "Greylisted: first delivery attempt from your network for this sender and recipient, please try again in {} (RFC 6647)",
                        support::describe_duration(s.delay.max(1))
                    ),
                ));
            }
        };
        match wait {
            Some(secs) => Ok(Verdict::tempfail(
                451,
                "4.7.1",
                &format!(
                    "Greylisted: please try again in {} (RFC 6647)",
                    support::describe_duration(secs.max(1))
                ),
            )),
            None => {
                // Confirmed (again): keep it for another lifetime, count the pass.
                kv::set(&key, b"ok", Some(s.lifetime))?;
                if s.auto_allow > 0 {
                    kv::increment(&passes_key, 1, Some(s.lifetime))?;
                }
                Ok(Verdict::Continue)
            }
        }
    }
}

#[tern_sdk::hooks]
impl Policy for Greylist {
    fn on_rcpt_to(
        session: Session,
        envelope: Envelope,
        address: String,
        _params: RcptParams,
    ) -> Verdict {
        let s = match settings() {
            Ok(s) => s,
            Err(e) => {
                log::error(&format!("greylisting is off: {e}"));
                return Verdict::Continue;
            }
        };
        match Greylist::judge(s, &session, &envelope.sender, &address) {
            Ok(v) => v,
            Err(e) => {
                // The store failing must not stop mail: let it through, loudly.
                log::warn(&format!("greylist skipped for <{address}>: {e}"));
                Verdict::Continue
            }
        }
    }
}

tern_sdk::export!(Greylist: Policy);
