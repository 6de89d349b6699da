//! Delivery plugins (interface `delivery`): asked once per local account
//! a message is delivered to, after routing and the filters, before the
//! message is stored. The first plugin (config order) that answers actions
//! decides for that account; an empty answer passes to the next, and with
//! no answer the copy goes to the default folder as always. A failed call
//! (trap, timeout) never loses or delays mail: it counts as no answer,
//! whatever the plugin's `on_error`, and is logged. What plugins answer is
//! checked here (folder names, flags, addresses, sizes) before the
//! submission path acts on it (`submit/deliver.rs`).

use super::bindings::{delivery, wit};
use super::declared::Hook;
use super::dispatch::{Failure, PluginSession, arm, call, on_error};
use super::engine::LoadedPlugin;
use super::mailbox::{MAX_SEND_SIZE, MailboxCall, Outgoing};
use super::message::MessageView;
use crate::address::Address;

/// Most addresses one account's copy may be redirected to.
pub const MAX_REDIRECTS: usize = 10;
/// Most flags on one stored copy.
const MAX_FLAGS: usize = 32;
/// Longest reject reason kept.
const MAX_REASON: usize = 400;

/// One checked action of a delivery plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryAction {
    /// Store a copy: in `folder` (None: the default folder) with `flags`.
    Store {
        folder: Option<String>,
        flags: Vec<String>,
        create: bool,
    },
    Discard,
    Redirect(Vec<Address>),
    /// Refuse for this account, with this reason (one printable line).
    Reject(String),
    /// A reply to the envelope sender, from `<>`.
    Vacation(Vec<u8>),
}

/// What a delivery plugin decided for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDecision {
    pub plugin: String,
    pub actions: Vec<DeliveryAction>,
    /// Mail it asked to send through `mailbox.send`.
    pub outgoing: Vec<Outgoing>,
}

/// The account as the hook sees it.
pub struct Account<'a> {
    pub name: &'a str,
    /// The address the sender used (RCPT TO).
    pub address: &'a str,
}

impl PluginSession {
    /// Has any plugin of this session's set a delivery hook?
    pub fn has_delivery(&self) -> bool {
        self.calls(Hook::Deliver)
    }

    /// Asks the delivery plugins about `account`'s copy of `message`; None:
    /// no plugin answered (deliver as usual).
    pub async fn deliver(
        &self,
        envelope: &wit::Envelope,
        account: &Account<'_>,
        message: &MessageView,
    ) -> Option<DeliveryDecision> {
        let mut slots = self.slots.lock().await;
        let wit_account = delivery::Account {
            name: account.name.to_string(),
            address: account.address.to_string(),
        };
        let mut own = vec![account.name.to_ascii_lowercase()];
        if !own.contains(&account.address.to_ascii_lowercase()) {
            own.push(account.address.to_ascii_lowercase());
        }
        for (i, plugin) in self.set.plugins.iter().enumerate() {
            if !plugin.calls(Hook::Deliver) {
                continue;
            }
            let own_message = match self.live(&mut slots[i], plugin).await {
                Ok(live) => {
                    live.store.data_mut().mailbox = Some(MailboxCall {
                        account: account.name.to_ascii_lowercase(),
                        own: own.clone(),
                        outgoing: Vec::new(),
                    });
                    match live.store.data_mut().table.push(message.clone()) {
                        Ok(r) => r,
                        Err(e) => {
                            live.store.data_mut().mailbox = None;
                            tracing::warn!(plugin = %plugin.name, "delivery hook: {e}");
                            continue;
                        }
                    }
                }
                Err(f) => {
                    slots[i] = None;
                    tracing::warn!(plugin = %plugin.name, "delivery hook: {f}; delivering as usual");
                    continue;
                }
            };
            let rep = own_message.rep();
            let answer = call!(self, slots, i, plugin, delivery, "deliver", |g, s| g
                .call_deliver(
                    s,
                    envelope,
                    &wit_account,
                    wasmtime::component::Resource::<MessageView>::new_borrow(rep)
                ));
            let outgoing = match slots[i].as_mut() {
                Some(live) => {
                    let _ = live.store.data_mut().table.delete(own_message);
                    live.store
                        .data_mut()
                        .mailbox
                        .take()
                        .map(|c| c.outgoing)
                        .unwrap_or_default()
                }
                None => Vec::new(),
            };
            let actions = match answer {
                Ok(Some(a)) => a,
                Ok(None) => continue,
                // A failed call was logged with its on_error; here it is
                // no answer, so the message is delivered as usual.
                Err(_) => {
                    tracing::warn!(plugin = %plugin.name, account = account.name, "delivery plugin failed; keeping the message in the default folder");
                    continue;
                }
            };
            if actions.is_empty() && outgoing.is_empty() {
                continue;
            }
            let actions = checked_actions(&plugin.name, actions);
            let decision = DeliveryDecision {
                plugin: plugin.name.clone(),
                actions,
                outgoing,
            };
            tracing::info!(plugin = %plugin.name, account = account.name, actions = ?summary(&decision.actions), sends = decision.outgoing.len(), "delivery plugin decided");
            return Some(decision);
        }
        None
    }
}

/// The actions for the log, without message bodies.
fn summary(actions: &[DeliveryAction]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            DeliveryAction::Vacation(m) => format!("vacation ({} bytes)", m.len()),
            other => format!("{other:?}"),
        })
        .collect()
}

/// A plugin's answer made safe: unusable folder names become the default
/// folder, unusable flags are dropped, unusable redirects and oversized
/// replies are left out (each logged); a reject reason is one printable
/// line. An answer of only unusable actions keeps the message.
pub fn checked_actions(plugin: &str, answer: Vec<delivery::DeliveryAction>) -> Vec<DeliveryAction> {
    use delivery::DeliveryAction as A;
    let mut out = Vec::new();
    let mut redirects = 0usize;
    for a in answer {
        let checked = match a {
            A::Keep(f) | A::Fileinto(f) => Some(filing(plugin, f)),
            A::Discard => Some(DeliveryAction::Discard),
            A::Redirect(list) => {
                let mut ok = Vec::new();
                for a in list {
                    match Address::parse(&a, true) {
                        Ok(addr) if redirects < MAX_REDIRECTS => {
                            redirects += 1;
                            ok.push(addr);
                        }
                        Ok(_) => tracing::warn!(
                            plugin,
                            "more than {MAX_REDIRECTS} redirects; {a:?} left out"
                        ),
                        Err(e) => tracing::warn!(plugin, "redirect to {a:?} left out: {e}"),
                    }
                }
                (!ok.is_empty()).then_some(DeliveryAction::Redirect(ok))
            }
            A::Reject(reason) => Some(DeliveryAction::Reject(one_line(&reason))),
            A::Vacation(m) if m.is_empty() || m.len() > MAX_SEND_SIZE => {
                tracing::warn!(
                    plugin,
                    size = m.len(),
                    "vacation reply of unusable size left out"
                );
                None
            }
            A::Vacation(m) => Some(DeliveryAction::Vacation(m)),
        };
        out.extend(checked);
    }
    out
}

fn filing(plugin: &str, f: delivery::Filing) -> DeliveryAction {
    let folder = if f.folder.is_empty() {
        None
    } else {
        match crate::store::check_folder_name(&f.folder) {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::warn!(plugin, folder = %f.folder, "unusable folder ({e}); the default folder instead");
                None
            }
        }
    };
    let mut flags: Vec<String> = Vec::new();
    for flag in f.flags {
        if !flag_ok(&flag) {
            tracing::warn!(plugin, %flag, "unusable flag left out");
        } else if flags.len() < MAX_FLAGS && !flags.iter().any(|x| x.eq_ignore_ascii_case(&flag)) {
            flags.push(system_flag(&flag).map_or(flag, str::to_string));
        }
    }
    DeliveryAction::Store {
        folder,
        flags,
        create: f.create,
    }
}

/// The system flags a copy may be stored with, in their usual spelling.
const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

fn system_flag(flag: &str) -> Option<&'static str> {
    SYSTEM_FLAGS
        .iter()
        .find(|f| f.eq_ignore_ascii_case(flag))
        .copied()
}

/// A system flag, or a keyword that is an IMAP atom (RFC 3501).
fn flag_ok(flag: &str) -> bool {
    if flag.starts_with('\\') {
        return system_flag(flag).is_some();
    }
    !flag.is_empty()
        && flag.len() <= 100
        && flag.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

fn one_line(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect();
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() {
        "Rejected by the recipient's filter".into()
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use delivery::{DeliveryAction as A, Filing};

    fn f(folder: &str, flags: &[&str]) -> Filing {
        Filing {
            folder: folder.into(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            create: false,
        }
    }

    #[test]
    fn answers_are_checked() {
        let got = checked_actions(
            "p",
            vec![
                A::Fileinto(f("lists", &["\\seen", "$label1", "bad flag", "\\Bogus"])),
                A::Keep(f("", &[])),
                A::Fileinto(f("../etc", &[])),
                A::Redirect(vec!["a@x.test".into(), "nope".into()]),
                A::Redirect(vec!["nope".into()]),
                A::Reject("no\r\nthanks".into()),
                A::Vacation(Vec::new()),
            ],
        );
        let store = |folder: Option<&str>, flags: &[&str]| DeliveryAction::Store {
            folder: folder.map(str::to_string),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            create: false,
        };
        assert_eq!(
            got,
            vec![
                store(Some("lists"), &["\\Seen", "$label1"]),
                store(None, &[]),
                store(None, &[]),
                DeliveryAction::Redirect(vec![Address::parse("a@x.test", true).unwrap()]),
                DeliveryAction::Reject("no thanks".into()),
            ]
        );
    }
}
