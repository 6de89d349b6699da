//! The delivery hook in the submission path: once the filters have run and
//! the message is signed, each local account it goes to is put to the
//! delivery plugins (`hooks::delivery`), and their answers become a plan —
//! the copies to store (folder and flags), the accounts that refuse it,
//! the copies to send on, the replies to send. A refusal for the message's
//! only recipient is the DATA reply (550 5.7.1 with the reason), over LMTP
//! that recipient's own reply; for one of several over SMTP it is a DSN to
//! the sender after the commit. Everything sent
//! (redirects, vacation replies, DSNs, a plugin's own sends) is queued only
//! after the message is committed, through the queue's own path: local
//! addresses are delivered to mailboxes, remote ones relayed, and mail
//! from the account's domain is DKIM-signed; redirected mail from outside
//! leaves from an SRS address with `[relay] srs_secret`.

use super::{Envelope, Refused};
use crate::address::Address;
use crate::context::ServerContext;
use crate::hooks::mailbox::Outgoing;
use crate::hooks::{Account, DataMessage, DeliveryAction, SessionInfo};
use crate::mail::{Reply, Target};
use crate::queue::{dsn::DsnKind, notify};
use crate::store::{LocalCopy, QueueEntry, QueueRecipient, RecipientState};
use crate::trace::{Event, Stage};
use std::collections::BTreeMap;

/// A recipient a delivery plugin refused.
#[derive(Debug)]
pub struct Rejected {
    /// Its index in the envelope.
    pub index: usize,
    /// LMTP: refused in the recipient's own reply (no DSN).
    pub in_reply: bool,
    /// The RCPT TO address.
    pub address: String,
    pub account: String,
    pub reason: String,
    /// DSN parameters of that recipient.
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// What the delivery plugins decided for the local accounts of a message.
#[derive(Debug, Default)]
pub struct LocalPlan {
    /// Accounts a plugin decided for, with the copies to store (none:
    /// discarded, rejected or only sent on). Accounts not here get the
    /// default copy.
    pub filed: BTreeMap<String, Vec<LocalCopy>>,
    pub rejected: Vec<Rejected>,
    /// Copies to send on, per account.
    pub redirects: Vec<(String, Vec<Address>)>,
    /// Mail to send (vacation replies, plugins' sends), per account.
    pub outgoing: Vec<(String, Outgoing)>,
}

impl LocalPlan {
    /// Whether `user` gets a copy in the built-in store.
    pub fn keeps(&self, user: &str) -> bool {
        self.filed.get(user).is_none_or(|c| !c.is_empty())
    }

    /// Whether the message's bytes are needed after the commit.
    pub fn sends_message(&self) -> bool {
        !self.redirects.is_empty() || self.rejected.iter().any(|r| !r.in_reply)
    }

    /// LMTP: the recipients refused in their own replies (550 5.7.1).
    pub fn refused_now(&self) -> Vec<(usize, Reply)> {
        self.rejected
            .iter()
            .filter(|r| r.in_reply)
            .map(|r| (r.index, Reply::new(550, "5.7.1", r.reason.clone())))
            .collect()
    }
}

/// Asks the delivery plugins about every local account of `envelope`.
/// `default_folder` is INBOX, Junk for a quarantined message (whose
/// redirects are then dropped, as its relayed copies are: `quarantined`),
/// or the folder a filter chose (`verdicts.local-folder`).
pub async fn plan(
    ctx: &ServerContext,
    info: &SessionInfo,
    hook_envelope: &crate::hooks::Envelope<'_>,
    envelope: &Envelope<'_>,
    message: &DataMessage<'_>,
    default_folder: &str,
    quarantined: bool,
) -> Result<LocalPlan, Refused> {
    let mut plan = LocalPlan::default();
    if !info.plugins.has_delivery() {
        return Ok(plan);
    }
    // Built at the first local account (a relayed message needs none).
    let mut shown = None;
    let only_one = envelope.recipients.len() == 1 && envelope.recipients[0].targets.len() == 1;
    // LMTP answers each recipient: one whose account refused gets 550.
    let lmtp = info.protocol == crate::config::Protocol::Lmtp;
    for (i, r) in envelope.recipients.iter().enumerate() {
        let address = hook_envelope
            .recipients
            .get(i)
            .map(|h| h.address.clone())
            .unwrap_or_default();
        for t in r.targets {
            let Target::Local(user) = t else { continue };
            if plan.filed.contains_key(user) {
                continue;
            }
            let account = Account {
                name: user,
                address: if address.is_empty() { user } else { &address },
            };
            let shown =
                shown.get_or_insert_with(|| ctx.hooks.delivering(info, hook_envelope, message));
            let Some(decision) = ctx.hooks.deliver(info, shown, &account).await else {
                continue;
            };
            let mut copies = Vec::new();
            let mut rejected = None;
            // Each decision goes into the message's trace, as that user's.
            let by = format!("plugin {}", decision.plugin);
            let record = |verdict: &str, detail: String| {
                let e = Event::new(Stage::Store, by.clone(), verdict)
                    .rcpt(account.address)
                    .users(vec![user.clone()]);
                info.trace.record(e.detail(detail));
            };
            for action in decision.actions {
                match action {
                    DeliveryAction::Store {
                        folder,
                        flags,
                        create,
                    } => {
                        let verdict = if folder.is_some() { "fileinto" } else { "keep" };
                        let folder =
                            resolve(ctx, user, folder, create, default_folder, quarantined).await;
                        let mut detail = folder.clone();
                        if !flags.is_empty() {
                            detail.push_str(&format!(" flags {}", flags.join(" ")));
                        }
                        record(verdict, detail);
                        // A second store in the same folder adds its flags.
                        match copies
                            .iter_mut()
                            .find(|c: &&mut LocalCopy| c.folder == folder)
                        {
                            Some(c) => {
                                for f in flags {
                                    if !c.flags.contains(&f) {
                                        c.flags.push(f);
                                    }
                                }
                            }
                            None => copies.push(LocalCopy {
                                user: user.clone(),
                                folder,
                                flags,
                            }),
                        }
                    }
                    DeliveryAction::Discard => record("discard", String::new()),
                    DeliveryAction::Redirect(to) if quarantined => {
                        record("redirect", "dropped: the message is quarantined".into());
                        tracing::info!(account = %user, to = ?to, "quarantined message: redirect dropped");
                    }
                    DeliveryAction::Redirect(mut to) => {
                        // `[sieve] max_redirects` per account and message.
                        let done: usize = plan
                            .redirects
                            .iter()
                            .filter(|(u, _)| u == user)
                            .map(|(_, t)| t.len())
                            .sum();
                        let left = ctx.config.sieve.max_redirects.saturating_sub(done);
                        if to.len() > left {
                            tracing::warn!(account = %user, dropped = to.len() - left, "more redirects than [sieve] max_redirects");
                            to.truncate(left);
                        }
                        let list: Vec<String> = to.iter().map(|a| a.to_string()).collect();
                        record("redirect", format!("to {}", list.join(", ")));
                        if !to.is_empty() {
                            plan.redirects.push((user.clone(), to));
                        }
                    }
                    DeliveryAction::Reject(reason) => {
                        let e = Event::new(Stage::Store, by.clone(), "reject")
                            .rcpt(account.address)
                            .users(vec![user.clone()]);
                        info.trace
                            .record(e.reply(Reply::new(550, "5.7.1", reason.clone())));
                        rejected = Some(reason);
                    }
                    DeliveryAction::Vacation(reply) => match Address::parse(&envelope.sender, true)
                    {
                        Ok(to) if !envelope.sender.is_empty() => {
                            record("vacation", format!("reply to {to}"));
                            plan.outgoing.push((
                                user.clone(),
                                Outgoing {
                                    sender: String::new(),
                                    recipients: vec![to],
                                    message: reply,
                                },
                            ))
                        }
                        _ => {
                            record("vacation", "no reply to the null sender".into());
                            tracing::info!(account = %user, "no vacation reply to the null sender")
                        }
                    },
                }
            }
            if let Some(reason) = rejected {
                if only_one {
                    tracing::info!(account = %user, plugin = %decision.plugin, "refused by the recipient's delivery plugin: {reason}");
                    return Err(Refused::Policy {
                        reply: Reply::new(550, "5.7.1", reason),
                        disconnect: false,
                    });
                }
                copies.clear();
                plan.rejected.push(Rejected {
                    index: i,
                    in_reply: lmtp && r.targets.len() == 1,
                    address: if address.is_empty() {
                        user.clone()
                    } else {
                        address.clone()
                    },
                    account: user.clone(),
                    reason,
                    notify: r.notify.clone(),
                    orcpt: r.orcpt.clone(),
                });
            }
            plan.outgoing
                .extend(decision.outgoing.into_iter().map(|o| (user.clone(), o)));
            plan.filed.insert(user.clone(), copies);
        }
    }
    Ok(plan)
}

/// The folder a store action lands in: the one named when it exists (or
/// is created, with `create`), else the default folder.
async fn resolve(
    ctx: &ServerContext,
    user: &str,
    folder: Option<String>,
    create: bool,
    default_folder: &str,
    quarantined: bool,
) -> String {
    let fallback = if quarantined { "Junk" } else { "INBOX" };
    let Some(folder) = folder else {
        return default_for(ctx, user, default_folder, fallback).await;
    };
    if folder == "INBOX" || folder == "Junk" {
        return folder;
    }
    match ctx.store.folder(user, &folder).await {
        Ok(Some(_)) => return folder,
        Ok(None) if create => match ctx.store.create_folder(user, &folder).await {
            Ok(_) => return folder,
            Err(e) => tracing::warn!(account = user, %folder, "cannot create the folder: {e}"),
        },
        Ok(None) => {
            tracing::info!(account = user, %folder, "no such folder; delivering to {default_folder}")
        }
        Err(e) => tracing::warn!(account = user, %folder, "folder look-up failed: {e}"),
    }
    default_for(ctx, user, default_folder, fallback).await
}

/// The folder of `user`'s copy of a message whose default folder is
/// `default_folder`: INBOX and Junk as they are (created when missing by
/// the store), another (a filter's `verdicts.local-folder`) created when
/// the account lacks it; one that cannot be made gives `fallback`.
pub(super) async fn default_for(
    ctx: &ServerContext,
    user: &str,
    default_folder: &str,
    fallback: &str,
) -> String {
    if default_folder == "INBOX" || default_folder == "Junk" {
        return default_folder.to_string();
    }
    match ctx.store.folder(user, default_folder).await {
        Ok(Some(_)) => return default_folder.to_string(),
        Ok(None) => match ctx.store.create_folder(user, default_folder).await {
            Ok(_) => return default_folder.to_string(),
            Err(e) => {
                tracing::warn!(
                    account = user,
                    folder = default_folder,
                    "cannot create the folder: {e}; delivering to {fallback}"
                )
            }
        },
        Err(e) => {
            tracing::warn!(
                account = user,
                folder = default_folder,
                "folder look-up failed: {e}; delivering to {fallback}"
            )
        }
    }
    fallback.to_string()
}

/// Queues what the plan sends, once the message is committed: redirected
/// copies (from the original sender), DSNs for refused recipients, and the
/// plugins' replies and sends (DKIM-signed). `message` is the message as
/// stored (prefix and body), when the plan needs it. Failures are logged:
/// the message itself is already accepted.
pub async fn send_after_commit(
    ctx: &ServerContext,
    plan: LocalPlan,
    envelope: &Envelope<'_>,
    message: Option<&[u8]>,
) {
    let qid = crate::store::format_queue_id(envelope.id);
    if let Some(message) = message {
        for (account, to) in &plan.redirects {
            let mut recipients = Vec::new();
            for a in to {
                recipients.extend(
                    notify::recipients_with(&ctx.config, &ctx.store, &a.to_string(), None).await,
                );
            }
            let client = format!("redirect by {account}");
            let sender = redirect_sender(ctx, &envelope.sender, account);
            match notify::enqueue_generated(ctx, &sender, recipients, message, &client).await {
                Ok(id) => {
                    tracing::info!(queue_id = %qid, %account, to = ?to.iter().map(|a| a.to_string()).collect::<Vec<_>>(), redirect_id = %crate::store::format_queue_id(id), "redirected")
                }
                Err(e) => tracing::error!(queue_id = %qid, %account, "redirect not queued: {e}"),
            }
        }
        let by_dsn: Vec<&Rejected> = plan.rejected.iter().filter(|r| !r.in_reply).collect();
        if !by_dsn.is_empty() {
            reject_dsn(ctx, &by_dsn, envelope, message).await;
        }
    }
    for (account, out) in plan.outgoing {
        let signed = sign(ctx, &out);
        let mut recipients = Vec::new();
        for a in &out.recipients {
            recipients
                .extend(notify::recipients_for(&ctx.config, &ctx.store, &a.to_string()).await);
        }
        let client = format!("delivery plugin for {account}");
        match notify::enqueue_generated(ctx, &out.sender, recipients, &signed, &client).await {
            Ok(id) => {
                tracing::info!(queue_id = %qid, %account, sender = %out.sender, reply_id = %crate::store::format_queue_id(id), "plugin's message queued")
            }
            Err(e) => {
                tracing::error!(queue_id = %qid, %account, "plugin's message not queued: {e}")
            }
        }
    }
}

/// The envelope sender of a copy `account` redirects: with `[relay]
/// srs_secret`, mail from outside leaves from an SRS0 address in the
/// account's domain (so the next hop's SPF check sees us, and bounces come
/// back through `checks::recipient`); our own domains' senders and `<>`
/// stay as they are.
fn redirect_sender(ctx: &ServerContext, sender: &str, account: &str) -> String {
    let Some(secret) = &ctx.config.relay.srs_secret else {
        return sender.to_string();
    };
    let Some((_, domain)) = sender.rsplit_once('@') else {
        return sender.to_string();
    };
    if ctx.config.is_local_domain(&domain.to_ascii_lowercase()) {
        return sender.to_string();
    }
    let ours = account
        .rsplit_once('@')
        .map_or(ctx.config.hostname.as_str(), |(_, d)| d);
    crate::mail::srs::Srs::new(secret).forward(sender, ours, crate::mail::srs::today())
}

/// The message DKIM-signed for its From: domain (or sender's), when that
/// domain has a `[[dkim]]` key; as it is otherwise.
fn sign(ctx: &ServerContext, out: &Outgoing) -> Vec<u8> {
    let signer = ctx.mailauth.signer();
    if signer.is_empty() {
        return out.message.clone();
    }
    let header = crate::queue::dsn::header_section(&out.message);
    let from = (!out.sender.is_empty()).then_some(out.sender.as_str());
    let mut prefix = Vec::new();
    if let Err(e) = signer.sign_submission(&ctx.config, header, from, &mut prefix, &out.message) {
        tracing::warn!("signing a plugin's message failed: {e}");
    }
    prefix.extend_from_slice(&out.message);
    prefix
}

/// A DSN to the sender for the recipients delivery plugins refused.
async fn reject_dsn(
    ctx: &ServerContext,
    rejected: &[&Rejected],
    envelope: &Envelope<'_>,
    message: &[u8],
) {
    let recipients: Vec<QueueRecipient> = rejected
        .iter()
        .map(|r| {
            let mut q = QueueRecipient::new(
                r.address.clone(),
                r.notify.clone(),
                r.orcpt.clone(),
                vec![r.account.clone()],
            );
            q.state = RecipientState::Failed;
            q.status = Some("5.7.1".into());
            q.last_error = Some(format!("550 5.7.1 {}", r.reason));
            q.remote_mta = Some(ctx.config.hostname.clone());
            q
        })
        .collect();
    let which: Vec<usize> = (0..recipients.len()).collect();
    let entry = QueueEntry {
        warned: true,
        ..envelope.queue_entry(message.len() as u64, recipients)
    };
    if let Err(e) = notify::send_about(ctx, &entry, &which, DsnKind::Failed, message).await {
        tracing::error!(queue_id = %entry.queue_id(), "rejection notice not queued: {e}");
    }
}
