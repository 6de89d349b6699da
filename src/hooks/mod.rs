//! The hook seams of the mail path: connect, helo, mail-from, rcpt-to (with
//! routing) and data. Each stage of a session makes exactly one call here;
//! the built-in checks of `crate::checks` run first, then the WebAssembly
//! plugins (`[[plugin]]`, in config order; the first verdict other than
//! `Continue` wins). The plugin engine lives in the files beside this one:
//! `engine.rs` (loading, compiling, caching), `bindings.rs` (the WIT types
//! and reply checks), `host.rs` (what plugins may import), `message.rs` (the
//! message resource), `dispatch.rs` (calls, deadlines, failures),
//! `instance.rs` (making an instance), `recording.rs` (what the calls tell
//! the decision trace),
//! `rewrite.rs` (address rewriting), `storage.rs` (mailbox storage),
//! `delivery.rs` and `mailbox.rs` (the per-account delivery hook).
//!
//! The plugin set is swapped atomically on reload; a session takes a
//! snapshot (`Hooks::session`) when it starts and keeps it to the end.

pub mod bindings;
pub mod declared;
pub mod delivery;
pub mod dispatch;
pub mod edits;
pub mod engine;
pub mod filter_call;
pub mod held;
pub mod host;
pub mod http;
pub mod http_grant;
mod instance;
pub mod mailbox;
pub mod memo;
pub mod message;
pub mod network;
mod policy_hooks;
pub mod recording;
pub mod rewrite;
pub mod storage;
pub mod trial;

pub use bindings::{Envelope, EnvelopeRecipient};
pub use delivery::{Account, DeliveryAction, DeliveryDecision};
pub use dispatch::{FilterOutcome, PluginSession, RouteDecision};
pub use engine::{PluginError, PluginSet};
#[doc(hidden)]
pub use instance::Bare;
pub use message::MessageView;
pub use rewrite::RewriteDecision;

use crate::address::{Address, ReversePath};
use crate::checks;
use crate::config::{Config, Protocol};
use crate::dns::Dns;
use crate::mail::{MailParams, RcptParams, Reply, Target, VerifiedTls};
pub use crate::mailauth::AuthResults;
use crate::store::Store;
use crate::trace::{Event, Stage};
use arc_swap::ArcSwap;
use declared::Hook;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the hooks know of a session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub protocol: Protocol,
    pub helo: Option<String>,
    /// TLS version and cipher when TLS is on.
    pub tls: Option<crate::tls::TlsInfo>,
    /// The authenticated account.
    pub user: Option<String>,
    /// The client is in `relay.trusted_networks`.
    pub trusted: bool,
    /// The plugins this session runs with (taken when it started).
    pub plugins: Arc<PluginSession>,
    /// Where the session's decisions are recorded (`crate::trace`).
    pub trace: crate::trace::Recorder,
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Accept,
    Reject(Reply),
    Tempfail(Reply),
    Disconnect(Reply),
}

/// The message at the data seam: the blob being written and what goes in front of it.
pub struct DataMessage<'a> {
    pub blob: crate::store::BlobId,
    /// The blob's end, still in its writer (`BlobWriter::tail`).
    pub tail: crate::store::Tail<'a>,
    /// Header lines Tern puts in front (`Received:` …).
    pub prefix: &'a [u8],
    /// The header section as received.
    pub header: &'a [u8],
    /// What SPF, DKIM, DMARC and ARC found (mail from outside only).
    pub auth: Option<&'a AuthResults>,
    /// Leading bytes of the blob left out (`BlobWriter::skip_leading`).
    pub skip: u64,
}

/// The outcome of the data seam.
#[derive(Debug)]
pub struct DataOutcome {
    pub verdict: Verdict,
    /// Header lines to append to the prefix (after all of Tern's own
    /// fields: ARC set, `Received:`, `Message-ID:`/`Date:`,
    /// `Authentication-Results:`).
    pub add_headers: Vec<u8>,
    /// Header fields filters asked to remove from the header section as
    /// received (see `apply_edits`).
    pub remove_headers: Vec<String>,
    /// Say 250 but keep nothing.
    pub discard: bool,
    /// Keep local copies in `Junk` and relay nothing.
    pub quarantine: Option<String>,
    /// Keep local copies in this folder (`verdicts.local-folder`); relayed
    /// copies are unaffected.
    pub local_folder: Option<String>,
}

impl DataOutcome {
    /// Applies the filters' header edits to a message about to be kept:
    /// added fields go at the end of `prefix`; when fields are to be
    /// removed, the received header section (`header`, up to and including
    /// its blank line) is rewritten without them at the end of `prefix`,
    /// and the returned count of leading body bytes is to be left out of
    /// the stored blob (`BlobWriter::skip_leading`). The fields Tern itself
    /// put in the prefix (`Received:`, `Authentication-Results:`) stay.
    pub fn apply_edits(&self, prefix: &mut Vec<u8>, header: &[u8]) -> u64 {
        prefix.extend_from_slice(&self.add_headers);
        if self.remove_headers.is_empty() {
            return 0;
        }
        match message::remove_fields(header, &self.remove_headers) {
            Some(kept) => {
                prefix.extend_from_slice(&kept);
                // The blank line stays in the blob, in front of the body.
                header.len().saturating_sub(2) as u64
            }
            None => {
                tracing::warn!(fields = ?self.remove_headers, "header section too long to rewrite; fields not removed");
                0
            }
        }
    }
}

/// The hook dispatcher shared by all sessions.
pub struct Hooks {
    config: Arc<Config>,
    store: Store,
    dns: Dns,
    plugins: ArcSwap<PluginSet>,
    /// The config file plugins are reloaded from.
    source: std::sync::Mutex<Option<std::path::PathBuf>>,
}

impl Hooks {
    pub fn new(config: Arc<Config>, store: Store, dns: Dns) -> Hooks {
        Hooks {
            config,
            store,
            dns,
            plugins: ArcSwap::from_pointee(PluginSet::empty()),
            source: std::sync::Mutex::new(None),
        }
    }

    /// Where a reload reads the config from (None: the running config again).
    pub fn set_config_source(&self, path: Option<std::path::PathBuf>) {
        *self.source.lock().unwrap_or_else(|p| p.into_inner()) = path;
    }

    pub fn config_source(&self) -> Option<std::path::PathBuf> {
        self.source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    /// Loads the plugins of `config` (the server's, or a reloaded one) and
    /// makes them the set new sessions get. On error the old set stays.
    pub fn load_plugins(&self, config: &Config) -> Result<usize, PluginError> {
        let set = PluginSet::load(config, &self.store, &self.dns)?;
        let n = set.plugins.len();
        for p in &set.plugins {
            tracing::info!(plugin = %p.name, path = %p.path.display(), hooks = ?p.exports.names(), declared = ?p.declared.names(), "plugin loaded");
        }
        let sieve_served = config
            .listen
            .iter()
            .any(|l| l.protocol == Protocol::Managesieve);
        if sieve_served && !set.plugins.iter().any(|p| p.calls(Hook::Deliver)) {
            tracing::warn!(
                "users' Sieve scripts are kept (ManageSieve) but not run: no plugin exports the delivery hook; add the shipped sieve plugin (plugins/sieve/README.md)"
            );
        }
        self.plugins.store(Arc::new(set));
        Ok(n)
    }

    /// The current plugin set.
    pub fn plugins(&self) -> Arc<PluginSet> {
        self.plugins.load_full()
    }

    /// A new session's view of the plugins: the set as it is now.
    pub fn session(&self) -> Arc<PluginSession> {
        Arc::new(PluginSession::new(self.plugins.load_full()))
    }

    pub async fn connect(&self, session: &SessionInfo) -> Verdict {
        session.plugins.connect(session).await
    }

    pub async fn helo(&self, session: &SessionInfo, name: &str) -> Verdict {
        session.plugins.helo(session, name).await
    }

    pub async fn mail_from(
        &self,
        session: &SessionInfo,
        from: &ReversePath,
        params: &MailParams,
    ) -> Verdict {
        let started = std::time::Instant::now();
        let checked = checks::sender::check(&self.config, &self.store, &self.dns, session, from)
            .await
            .map_or(Verdict::Continue, refusal);
        let shown = match &checked {
            Verdict::Continue => &Verdict::Accept,
            refused => refused,
        };
        let e = recording::verdict(Stage::Mail, "sender check", shown, started.elapsed());
        session.trace.record(e);
        if checked != Verdict::Continue {
            return checked;
        }
        if !session.plugins.calls(Hook::MailFrom) {
            return Verdict::Continue;
        }
        session
            .plugins
            .mail_from(session, &from.to_string(), &bindings::mail_params(params))
            .await
    }

    /// Validates and routes one recipient: the targets it delivers to, or
    /// the refusal (a `Disconnect` closes the session). Rewriting plugins
    /// (virtual domains, aliases) come first and stand in for the built-in
    /// recipient checks when they rewrite; then the policy plugins see the
    /// address the client gave; then routers route each address.
    pub async fn rcpt_to(
        &self,
        session: &SessionInfo,
        envelope: &Envelope<'_>,
        to: &Address,
        params: &RcptParams,
    ) -> Result<Vec<Target>, Verdict> {
        let routed = self.rcpt_to_routed(session, envelope, to, params).await;
        if let Ok(targets) = &routed {
            session
                .trace
                .record(recording::route(&to.to_string(), targets));
        }
        routed
    }

    /// The built-in recipient check, recorded.
    async fn check_recipient(
        &self,
        session: &SessionInfo,
        to: &Address,
    ) -> Result<Vec<Target>, Verdict> {
        let started = std::time::Instant::now();
        let checked = checks::recipient::check(&self.config, &self.store, &self.dns, session, to)
            .await
            .map_err(refusal);
        let took = started.elapsed();
        let by = "recipient check";
        let e = match &checked {
            Ok(_) => recording::verdict(Stage::Rcpt, by, &Verdict::Accept, took),
            Err(v) => recording::verdict(Stage::Rcpt, by, v, took),
        };
        session.trace.record(e.rcpt(to.to_string()));
        checked
    }

    async fn rcpt_to_routed(
        &self,
        session: &SessionInfo,
        envelope: &Envelope<'_>,
        to: &Address,
        params: &RcptParams,
    ) -> Result<Vec<Target>, Verdict> {
        let plugins = &session.plugins;
        if ![Hook::RewriteRecipient, Hook::RcptTo, Hook::Route]
            .into_iter()
            .any(|h| plugins.calls(h))
        {
            return self.check_recipient(session, to).await;
        }
        let env = bindings::LazyEnvelope::new(envelope);
        let address = to.to_string();
        let rcpt = EnvelopeRecipient {
            address: address.clone(),
            params,
        };
        let rewritten = if session.plugins.has_rewrite() {
            session.plugins.rewrite(env.get(), &rcpt).await
        } else {
            None
        };
        let rewriter = |word: &str| Event::new(Stage::Rcpt, "rewrite plugins", word).rcpt(&address);
        let addresses = match rewritten {
            None => None,
            Some(RewriteDecision::Reject(r)) => {
                session.trace.record(rewriter("reject").reply(&r));
                return Err(Verdict::Reject(r));
            }
            Some(RewriteDecision::Tempfail(r)) => {
                session.trace.record(rewriter("tempfail").reply(&r));
                return Err(Verdict::Tempfail(r));
            }
            Some(RewriteDecision::Addresses(list)) => {
                let to: Vec<String> = list.iter().map(|a| a.to_string()).collect();
                session
                    .trace
                    .record(rewriter("rewrite").detail(to.join(", ")));
                Some(list)
            }
        };
        let targets = match &addresses {
            None => self.check_recipient(session, to).await?,
            Some(_) => Vec::new(),
        };
        match session
            .plugins
            .rcpt_to(session, &env, &address, params)
            .await
        {
            Verdict::Continue | Verdict::Accept => {}
            other => return Err(other),
        }
        let Some(addresses) = addresses else {
            let (chosen, tls) = self.route(session, &env, to, params).await?;
            return Ok(chosen
                .unwrap_or(targets)
                .into_iter()
                .map(|t| t.demanding(tls.as_ref()))
                .collect());
        };
        let mut all = Vec::new();
        for a in &addresses {
            let (chosen, tls) = self.route(session, &env, a, params).await?;
            let chosen = match chosen {
                Some(t) => t,
                None => {
                    let (t, unknown) =
                        checks::expand(&self.config, &self.store, &a.to_lowercase_key()).await;
                    if !unknown.is_empty() {
                        tracing::warn!(rcpt = %to, unknown = ?unknown, "rewritten to unknown local users; they are skipped");
                    }
                    t
                }
            };
            for t in chosen.into_iter().map(|t| t.demanding(tls.as_ref())) {
                if !all.contains(&t) {
                    all.push(t);
                }
            }
        }
        if all.is_empty() {
            let reply = Reply::new(
                550,
                "5.1.1",
                format!("<{to}>: Recipient address rejected: User unknown"),
            );
            let e = Event::new(Stage::Rcpt, "recipient check", "reject").rcpt(&address);
            session
                .trace
                .record(e.reply(&reply).detail("rewritten to unknown users only"));
            return Err(Verdict::Reject(reply));
        }
        Ok(all)
    }

    /// What the router plugins say about one address: its targets, or None
    /// for the built-in route; and their demand for verified TLS, if any.
    async fn route(
        &self,
        session: &SessionInfo,
        env: &bindings::LazyEnvelope<'_>,
        to: &Address,
        params: &RcptParams,
    ) -> Result<(Option<Vec<Target>>, Option<VerifiedTls>), Verdict> {
        if !session.plugins.calls(Hook::Route) {
            return Ok((None, None));
        }
        let rcpt = EnvelopeRecipient {
            address: to.to_string(),
            params,
        };
        let (decision, tls) = session
            .plugins
            .route(&session.trace, env.get(), &rcpt)
            .await;
        let targets = match decision {
            None => None,
            Some(RouteDecision::Local(user)) => match self.store.user_exists(&user).await {
                Ok(true) => Some(vec![Target::Local(user)]),
                _ => {
                    tracing::warn!(rcpt = %to, user, "a router chose a local mailbox that does not exist");
                    let reply = Reply::new(
                        550,
                        "5.1.1",
                        format!("<{to}>: Recipient address rejected: User unknown"),
                    );
                    let e = Event::new(Stage::Rcpt, "router", "reject").rcpt(to.to_string());
                    session
                        .trace
                        .record(e.reply(&reply).detail(format!("no mailbox {user}")));
                    return Err(Verdict::Reject(reply));
                }
            },
            Some(RouteDecision::Relay(hosts)) => Some(vec![Target::Relay {
                address: to.to_lowercase_key(),
                hosts,
                tls: None,
            }]),
            Some(RouteDecision::Reject(r)) => return Err(Verdict::Reject(r)),
            Some(RouteDecision::Tempfail(r)) => return Err(Verdict::Tempfail(r)),
        };
        Ok((targets, tls))
    }

    /// Runs after the message is read, before it is committed: the built-in
    /// header checks, then the filters.
    pub async fn data(
        &self,
        session: &SessionInfo,
        envelope: &Envelope<'_>,
        message: &DataMessage<'_>,
    ) -> DataOutcome {
        let mut outcome = DataOutcome {
            verdict: Verdict::Continue,
            add_headers: Vec::new(),
            remove_headers: Vec::new(),
            discard: false,
            quarantine: None,
            local_folder: None,
        };
        if let Some(reply) = checks::sender::check_header_from(
            &self.config,
            &self.store,
            session,
            envelope.from,
            message.header,
        )
        .await
        {
            outcome.verdict = refusal(reply);
            let e = recording::verdict(
                Stage::Data,
                "From: check",
                &outcome.verdict,
                Default::default(),
            );
            session.trace.record(e);
            return outcome;
        }
        if !session.plugins.calls(Hook::Data) {
            return outcome;
        }
        let view = self.view(session, message);
        let mut wit_envelope = bindings::envelope(envelope);
        wit_envelope.auth = message.auth.map(bindings::auth_results);
        let f = session.plugins.data(session, &wit_envelope, &view).await;
        outcome.verdict = f.verdict.unwrap_or(Verdict::Continue);
        outcome.add_headers = f.add_headers;
        outcome.remove_headers = f.remove_headers;
        outcome.discard = f.discard;
        outcome.quarantine = f.quarantine;
        outcome.local_folder = f.local_folder;
        outcome
    }
}

impl Hooks {
    /// Mail for local users whose mailbox a storage plugin claims goes to
    /// that plugin, before the 250 and instead of the built-in store.
    /// Returns the users so served, or the reply when a plugin could not
    /// keep the message (nothing is acknowledged then; a retry may give a
    /// plugin that did keep it a second copy).
    pub async fn deliver_to_storage(
        &self,
        session: &SessionInfo,
        users: &[String],
        message: &DataMessage<'_>,
    ) -> Result<Vec<String>, Reply> {
        if !session.plugins.has_storage() {
            return Ok(Vec::new());
        }
        let view = self.view(session, message);
        let mut served = Vec::new();
        for user in users {
            let Some(i) = session.plugins.storage_claim(user).await else {
                continue;
            };
            match session.plugins.storage_deliver(i, user, &view).await {
                Ok(id) => {
                    tracing::info!(user = %user, id = %id, "delivered by a storage plugin");
                    served.push(user.clone());
                }
                Err(e) => {
                    tracing::warn!(user = %user, "storage plugin delivery failed: {e}");
                    let reply = Reply::new(
                        451,
                        "4.3.0",
                        "Error: mailbox storage problem, try again later",
                    );
                    let name = session.plugins.set.plugins.get(i).map(|p| p.name.as_str());
                    let by = recording::plugin(name.unwrap_or("storage"));
                    let event = Event::new(Stage::Store, by, "tempfail")
                        .users(vec![user.clone()])
                        .reply(&reply)
                        .detail(e);
                    session.trace.record(event);
                    return Err(reply);
                }
            }
        }
        Ok(served)
    }
}

impl Hooks {
    /// The plugins' view of `message`, before or after the header edits.
    fn view(&self, session: &SessionInfo, message: &DataMessage<'_>) -> MessageView {
        MessageView::of(self.store.clone(), message, bindings::arrival(session))
    }

    /// What the delivery plugins are shown of a message: built once, for
    /// all its local accounts.
    pub fn delivering(
        &self,
        session: &SessionInfo,
        envelope: &Envelope<'_>,
        message: &DataMessage<'_>,
    ) -> Delivering {
        let mut wit_envelope = bindings::envelope(envelope);
        wit_envelope.auth = message.auth.map(bindings::auth_results);
        Delivering {
            envelope: wit_envelope,
            view: self.view(session, message),
        }
    }

    /// Asks the delivery plugins what becomes of `account`'s copy; None:
    /// deliver it as usual.
    pub async fn deliver(
        &self,
        session: &SessionInfo,
        message: &Delivering,
        account: &Account<'_>,
    ) -> Option<DeliveryDecision> {
        if !session.plugins.has_delivery() {
            return None;
        }
        session
            .plugins
            .deliver(&message.envelope, account, &message.view)
            .await
    }
}

/// A message as the delivery plugins see it (`Hooks::delivering`).
pub struct Delivering {
    envelope: bindings::wit::Envelope,
    view: MessageView,
}

/// A built-in refusal as a verdict: 4xx tempfails, 5xx rejects.
fn refusal(reply: Reply) -> Verdict {
    if reply.is_transient() {
        Verdict::Tempfail(reply)
    } else {
        Verdict::Reject(reply)
    }
}
