//! Tern's Sieve plugin, at the delivery hook: for each local account with
//! an active script (`tern sieve`, ManageSieve), runs it with `tern-sieve`
//! against the message and its envelope and answers its actions — keep and
//! fileinto with their imap4flags, discard, redirect, reject/ereject, and
//! vacation, whose reply is decided here as RFC 5230 and RFC 3834 demand
//! (`tern_sieve::vacation::decide`, with the account's key-value area as
//! the memory of senders already answered) and written in `reply.rs`. An
//! account without a script, a script that no longer compiles, or one
//! that fails at run time gets the implicit keep (logged): mail is never
//! lost to a bad script.

mod reply;

use tern_sdk::{
    Account, Delivery, DeliveryAction, Envelope, Filing, Message, clock, config, log, mailbox,
};
use tern_sieve::vacation::{self, ReplyLog};
use tern_sieve::{Action, Context, Environment, Outcome};

/// The largest part of a message a script sees (header and body tests);
/// config `max_message_size` in bytes.
const DEFAULT_MAX_MESSAGE: u64 = 10 << 20;
/// Bytes read per host call.
const CHUNK: u32 = 256 * 1024;

struct Sieve;

impl Delivery for Sieve {
    fn deliver(envelope: Envelope, account: Account, message: &Message) -> Vec<DeliveryAction> {
        let Some((name, source)) = mailbox::active_script() else {
            return Vec::new();
        };
        let script = match tern_sieve::compile(&source) {
            Ok(s) => s,
            Err(e) => {
                log::warn(&format!(
                    "{}: script {name:?} does not compile ({e}); implicit keep",
                    account.name
                ));
                return Vec::new();
            }
        };
        let raw = read_message(message);
        let mut ctx = Context::new(
            &account.name,
            tern_sieve::Envelope {
                from: envelope.sender.clone(),
                to: account.address.clone(),
            },
        );
        ctx.now = i64::try_from(clock::now_ms() / 1000).unwrap_or(0);
        if let Some(steps) = config::get("step_limit").and_then(|s| s.parse().ok()) {
            ctx.step_limit = steps;
        }
        let outcome = tern_sieve::run(&script, &raw, &ctx, &Mailbox);
        if let Some(e) = &outcome.error {
            log::warn(&format!(
                "{}: script {name:?} failed at run time ({e}); implicit keep",
                account.name
            ));
            return Vec::new();
        }
        actions(&outcome, &raw, &ctx, &account)
    }
}

/// The script's outcome as delivery actions. Sieve's implicit keep is a
/// `keep` with the internal flags; a script that cancelled every delivery
/// (discard) answers `discard`, as an empty answer would mean "keep".
fn actions(outcome: &Outcome, raw: &[u8], ctx: &Context, account: &Account) -> Vec<DeliveryAction> {
    let mut out = Vec::new();
    for a in &outcome.actions {
        match a {
            Action::Keep { flags } => out.push(DeliveryAction::Keep(Filing {
                folder: String::new(),
                flags: flags.clone(),
                create: false,
            })),
            Action::FileInto {
                folder,
                flags,
                create,
                ..
            } => out.push(DeliveryAction::Fileinto(Filing {
                folder: folder.clone(),
                flags: flags.clone(),
                create: *create,
            })),
            Action::Discard => out.push(DeliveryAction::Discard),
            Action::Redirect { address, .. } => {
                out.push(DeliveryAction::Redirect(vec![address.clone()]))
            }
            Action::Reject { reason, .. } => out.push(DeliveryAction::Reject(reason.clone())),
            Action::Vacation(v) => {
                let msg = tern_sieve::message::MessageView::new(raw);
                match vacation::decide(&msg, &ctx.envelope, &account.name, v, &Answered) {
                    Ok(r) => {
                        let key = answered_key(&r.to, &v.handle);
                        if let Err(e) = mailbox::set(&key, b"1", Some(v.period.max(1))) {
                            log::warn(&format!(
                                "{}: cannot record the vacation reply: {e}",
                                account.name
                            ));
                        }
                        log::info(&format!("{}: vacation reply to {}", account.name, r.to));
                        out.push(DeliveryAction::Vacation(reply::build(&r, ctx.now)));
                    }
                    Err(why) => {
                        log::debug(&format!("{}: no vacation reply ({why:?})", account.name))
                    }
                }
            }
        }
    }
    if outcome.implicit_keep {
        out.push(DeliveryAction::Keep(Filing {
            folder: String::new(),
            flags: outcome.implicit_flags.clone(),
            create: false,
        }));
    }
    if !out
        .iter()
        .any(|a| !matches!(a, DeliveryAction::Vacation(_)))
    {
        out.push(DeliveryAction::Discard);
    }
    out
}

/// The whole message, up to `max_message_size` bytes.
fn read_message(message: &Message) -> Vec<u8> {
    let limit = config::get("max_message_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_MAX_MESSAGE)
        .min(message.size());
    let mut raw = Vec::with_capacity(usize::try_from(limit).unwrap_or(0));
    while (raw.len() as u64) < limit {
        let want = u32::try_from(limit - raw.len() as u64)
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let part = message.read(raw.len() as u64, want);
        if part.is_empty() {
            break;
        }
        raw.extend_from_slice(&part);
    }
    raw
}

/// The key recording that `sender` was answered for `handle`.
fn answered_key(sender: &str, handle: &str) -> String {
    format!("vacation\u{0}{handle}\u{0}{}", sender.to_ascii_lowercase())
}

/// Senders already answered: keys in the account's area that expire after
/// the vacation period.
struct Answered;

impl ReplyLog for Answered {
    fn already_replied(&self, sender: &str, handle: &str, _period: u64) -> bool {
        matches!(mailbox::get(&answered_key(sender, handle)), Ok(Some(_)))
    }
}

/// What scripts may ask about the account: its folders, its other scripts.
struct Mailbox;

impl Environment for Mailbox {
    fn mailbox_exists(&self, name: &str) -> bool {
        mailbox::folder_exists(name)
    }
    fn load_script(&self, name: &str, global: bool) -> Option<String> {
        if global {
            return None;
        }
        mailbox::script(name)
    }
}

tern_sdk::export!(Sieve: Delivery);
