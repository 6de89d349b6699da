//! Access lists: allow and deny lists for client networks (CIDR), HELO
//! names, senders and recipients. Names and addresses are matched by
//! pattern: an exact address, `@domain` or `domain`, `.domain` (its
//! subdomains), a `*`/`?` glob, `<>` (the null sender). At each stage the
//! kinds known so far are checked in order (client, HELO, sender,
//! recipient), allow before deny within a kind: the first match decides.
//! Allow answers `accept` (the plugins after this one are skipped for that
//! stage; the built-in checks have already run); deny answers 554 5.7.1 at
//! connect and 550 5.7.1 later. See README.md for the keys.

use std::net::IpAddr;
use std::sync::OnceLock;
use tern_plugin_support::{self as support, Network, Pattern};
use tern_sdk::{Client, Envelope, MailParams, Policy, RcptParams, Session, Verdict, config, log};

/// One kind of list: what it matches on.
enum Lists {
    Client {
        allow: Vec<Network>,
        deny: Vec<Network>,
    },
    Helo {
        allow: Vec<Pattern>,
        deny: Vec<Pattern>,
    },
    Sender {
        allow: Vec<Pattern>,
        deny: Vec<Pattern>,
    },
    Recipient {
        allow: Vec<Pattern>,
        deny: Vec<Pattern>,
    },
}

struct Settings {
    client: Lists,
    helo: Lists,
    sender: Lists,
    recipient: Lists,
    /// Extra text after the standard refusal.
    reject_text: String,
}

fn patterns(key: &str) -> Vec<Pattern> {
    support::patterns(&config::get(key).unwrap_or_default())
}

fn networks(key: &str) -> Result<Vec<Network>, String> {
    support::networks(&config::get(key).unwrap_or_default())
        .map_err(|e| format!("config {key}: {e}"))
}

impl Settings {
    /// The stages where no list can match yet: every kind known there is
    /// empty, so the answer would be `continue` (a stage checks the kinds
    /// known so far, so the first stage with a list, and every later one,
    /// is called).
    fn idle_hooks(&self) -> Vec<&'static str> {
        let stages = [
            (&self.client, "on-connect"),
            (&self.helo, "on-helo"),
            (&self.sender, "on-mail-from"),
            (&self.recipient, "on-rcpt-to"),
        ];
        stages
            .into_iter()
            .scan(false, |listed, (lists, hook)| {
                *listed |= !lists.is_empty();
                Some((!*listed).then_some(hook))
            })
            .flatten()
            .collect()
    }

    fn load() -> Result<Settings, String> {
        Ok(Settings {
            client: Lists::Client {
                allow: networks("client_allow")?,
                deny: networks("client_deny")?,
            },
            helo: Lists::Helo {
                allow: patterns("helo_allow"),
                deny: patterns("helo_deny"),
            },
            sender: Lists::Sender {
                allow: patterns("sender_allow"),
                deny: patterns("sender_deny"),
            },
            recipient: Lists::Recipient {
                allow: patterns("recipient_allow"),
                deny: patterns("recipient_deny"),
            },
            reject_text: config::get("reject_text").unwrap_or_default(),
        })
    }
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let loaded = Settings::load();
        if let Ok(s) = &loaded {
            config::skip_hooks(&s.idle_hooks());
        }
        loaded
    })
}

/// What is known at a stage.
#[derive(Default)]
struct Facts<'a> {
    client: Option<&'a str>,
    helo: Option<&'a str>,
    sender: Option<&'a str>,
    recipient: Option<&'a str>,
}

/// A list's decision.
enum Decision {
    Allow(String),
    Deny(String),
}

impl Lists {
    fn is_empty(&self) -> bool {
        match self {
            Lists::Client { allow, deny } => allow.is_empty() && deny.is_empty(),
            Lists::Helo { allow, deny }
            | Lists::Sender { allow, deny }
            | Lists::Recipient { allow, deny } => allow.is_empty() && deny.is_empty(),
        }
    }

    fn decide(&self, facts: &Facts) -> Option<Decision> {
        let hit = |allow: bool, what: &str, value: &str| {
            let why = format!("{what} {value}");
            Some(if allow {
                Decision::Allow(why)
            } else {
                Decision::Deny(why)
            })
        };
        match self {
            Lists::Client { allow, deny } => {
                let text = facts.client?;
                let ip: IpAddr = text.parse().ok()?;
                if allow.iter().any(|n| n.contains(ip)) {
                    return hit(true, "client", text);
                }
                if deny.iter().any(|n| n.contains(ip)) {
                    return hit(false, "client", text);
                }
                None
            }
            Lists::Helo { allow, deny } => {
                let name = facts.helo?;
                if allow.iter().any(|p| p.matches_name(name)) {
                    return hit(true, "HELO", name);
                }
                if deny.iter().any(|p| p.matches_name(name)) {
                    return hit(false, "HELO", name);
                }
                None
            }
            Lists::Sender { allow, deny } | Lists::Recipient { allow, deny } => {
                let (what, address) = match self {
                    Lists::Sender { .. } => ("sender", facts.sender?),
                    _ => ("recipient", facts.recipient?),
                };
                let shown = format!("<{address}>");
                if allow.iter().any(|p| p.matches_address(address)) {
                    return hit(true, what, &shown);
                }
                if deny.iter().any(|p| p.matches_address(address)) {
                    return hit(false, what, &shown);
                }
                None
            }
        }
    }
}

/// The verdict at a stage: the first list that decides, in order.
fn judge(stage: &str, facts: Facts) -> Verdict {
    let s = match settings() {
        Ok(s) => s,
        Err(e) => {
            // Access control that cannot read its lists must not let mail in.
            log::error(&format!("access lists unusable, refusing for now: {e}"));
            return Verdict::tempfail(
                451,
                "4.3.5",
                "Access lists misconfigured, please try again later",
            );
        }
    };
    for lists in [&s.client, &s.helo, &s.sender, &s.recipient] {
        match lists.decide(&facts) {
            None => continue,
            Some(Decision::Allow(why)) => {
                log::debug(&format!("{stage}: {why} allowed"));
                return Verdict::Accept;
            }
            Some(Decision::Deny(why)) => {
                log::info(&format!("{stage}: {why} denied"));
                let (code, status) = if stage == "connect" {
                    (554, "5.7.1")
                } else {
                    (550, "5.7.1")
                };
                let extra = if s.reject_text.is_empty() {
                    String::new()
                } else {
                    format!(" {}", s.reject_text)
                };
                return Verdict::reject(code, status, &format!("Access denied: {why}{extra}"));
            }
        }
    }
    Verdict::Continue
}

struct Access;

#[tern_sdk::hooks]
impl Policy for Access {
    fn on_connect(client: Client) -> Verdict {
        judge(
            "connect",
            Facts {
                client: Some(&client.address),
                ..Facts::default()
            },
        )
    }

    fn on_helo(session: Session, name: String) -> Verdict {
        judge(
            "helo",
            Facts {
                client: Some(&session.client.address),
                helo: Some(&name),
                ..Facts::default()
            },
        )
    }

    fn on_mail_from(session: Session, address: String, _params: MailParams) -> Verdict {
        judge(
            "mail-from",
            Facts {
                client: Some(&session.client.address),
                helo: session.helo.as_deref(),
                sender: Some(&address),
                recipient: None,
            },
        )
    }

    fn on_rcpt_to(
        session: Session,
        envelope: Envelope,
        address: String,
        _params: RcptParams,
    ) -> Verdict {
        judge(
            "rcpt-to",
            Facts {
                client: Some(&session.client.address),
                helo: session.helo.as_deref(),
                sender: Some(&envelope.sender),
                recipient: Some(&address),
            },
        )
    }
}

tern_sdk::export!(Access: Policy);
