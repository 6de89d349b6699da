//! The policy hooks of one session (`on-connect`, `on-helo`,
//! `on-mail-from`, `on-rcpt-to`): each policy plugin called in config order
//! on its session instance (`dispatch.rs`), the first verdict other than
//! continue winning; a verdict the plugin said holds for the client
//! (`verdicts.same-for-client`, kept in `memo.rs`) is given without a call,
//! and without building the hook's arguments: the records a plugin is
//! handed (client, session, envelope) are built at the hook's first call
//! and shared by the calls after it (`Records`, `LazyEnvelope`).

use super::bindings::{self, LazyEnvelope, wit};
use super::declared::Hook;
use super::dispatch::{Failure, Live, PluginSession, arm, call, give_back, on_error};
use super::engine::LoadedPlugin;
use super::memo::{Hit, Key};
use super::recording::{self, stage_of};
use super::{SessionInfo, Verdict};
use crate::mail::RcptParams;
use crate::trace::Event;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The arguments of one policy hook, as the session has them (the
/// plugins' records are built from them by `Records` and `LazyEnvelope`).
enum PolicyCall<'a> {
    Connect,
    Helo(&'a str),
    MailFrom(&'a str, &'a wit::MailParams),
    RcptTo(&'a LazyEnvelope<'a>, &'a str, &'a RcptParams),
}

/// The session's records for the plugins at one hook: built at the first
/// call, shared by the calls after it; a hook whose every verdict is
/// remembered builds none.
struct Records<'a> {
    info: &'a SessionInfo,
    client: OnceLock<wit::Client>,
    session: OnceLock<wit::Session>,
    rcpt_params: OnceLock<wit::RcptParams>,
}

impl<'a> Records<'a> {
    fn new(info: &'a SessionInfo) -> Records<'a> {
        Records {
            info,
            client: OnceLock::new(),
            session: OnceLock::new(),
            rcpt_params: OnceLock::new(),
        }
    }

    fn client(&self) -> &wit::Client {
        self.client.get_or_init(|| bindings::client(self.info))
    }

    fn session(&self) -> &wit::Session {
        self.session.get_or_init(|| bindings::session(self.info))
    }

    fn rcpt_params(&self, params: &RcptParams) -> &wit::RcptParams {
        self.rcpt_params
            .get_or_init(|| bindings::rcpt_params(params))
    }
}

impl PolicyCall<'_> {
    fn hook(&self) -> Hook {
        match self {
            PolicyCall::Connect => Hook::Connect,
            PolicyCall::Helo(..) => Hook::Helo,
            PolicyCall::MailFrom(..) => Hook::MailFrom,
            PolicyCall::RcptTo(..) => Hook::RcptTo,
        }
    }
}

/// `event` naming the recipient, at `on-rcpt-to`.
fn rcpt_of(event: Event, args: &PolicyCall<'_>) -> Event {
    match args {
        PolicyCall::RcptTo(_, to, _) => event.rcpt(*to),
        _ => event,
    }
}

/// What a verdict at `hook` in this session is remembered under; None for
/// an authenticated session, whose verdicts are neither remembered nor
/// given from memory (a plugin's answer there may depend on the login).
fn memo_key(info: &SessionInfo, hook: Hook) -> Option<Key> {
    info.user.is_none().then(|| Key {
        hook,
        client: info.client.ip(),
        local: info.local,
    })
}

impl PluginSession {
    /// A verdict at `hook` a plugin of the session said holds for this
    /// session's client, if one is remembered (`tern plugin test`
    /// reports it).
    pub fn remembered(&self, info: &SessionInfo, hook: Hook) -> Option<Hit> {
        let key = memo_key(info, hook)?;
        let now = Instant::now();
        self.set.plugins.iter().find_map(|p| p.memo.get(&key, now))
    }

    /// Runs a policy hook over every policy plugin in order. A plugin whose
    /// verdict for this client is remembered (`memo.rs`) is not called.
    async fn policy(&self, info: &SessionInfo, args: PolicyCall<'_>) -> Verdict {
        let hook = args.hook();
        let key = memo_key(info, hook);
        let records = Records::new(info);
        let mut slots = self.slots.lock().await;
        for (i, plugin) in self.set.plugins.iter().enumerate() {
            if !plugin.calls(hook) {
                continue;
            }
            let (verdict, event) = match key.and_then(|k| plugin.memo.get(&k, Instant::now())) {
                Some(hit) => {
                    plugin.remembered.add_one();
                    let event = recording::verdict(
                        stage_of(hook),
                        recording::plugin(&plugin.name),
                        &hit.verdict,
                        Duration::ZERO,
                    )
                    .detail(format!(
                        "remembered: the plugin gave this verdict for this client {} s ago, to hold {} s",
                        hit.at.elapsed().as_secs(),
                        hit.lasts.as_secs()
                    ));
                    (hit.verdict, event)
                }
                None => {
                    self.call_policy(&mut slots, i, plugin, &records, &args, key)
                        .await
                }
            };
            info.trace.record(rcpt_of(event, &args));
            if verdict != Verdict::Continue {
                tracing::info!(plugin = %plugin.name, hook = hook.wit_name(), verdict = ?verdict, "plugin verdict");
                return verdict;
            }
        }
        Verdict::Continue
    }

    /// Calls one plugin's policy hook on the session's instance: its
    /// verdict (its `on_error` one if the call failed) and the trace event
    /// for it. A verdict it said holds for the client is remembered under
    /// `key`.
    async fn call_policy(
        &self,
        slots: &mut [Option<Live>],
        i: usize,
        plugin: &LoadedPlugin,
        records: &Records<'_>,
        args: &PolicyCall<'_>,
        key: Option<Key>,
    ) -> (Verdict, Event) {
        let hook = args.hook();
        let started = Instant::now();
        let result = call!(
            self,
            slots,
            i,
            plugin,
            policy,
            hook.wit_name(),
            |g, s| async {
                s.data_mut().remember = Some(None);
                match args {
                    PolicyCall::Connect => g.call_on_connect(s, records.client()).await,
                    PolicyCall::Helo(n) => g.call_on_helo(s, records.session(), n).await,
                    PolicyCall::MailFrom(from, p) => {
                        g.call_on_mail_from(s, records.session(), from, p).await
                    }
                    PolicyCall::RcptTo(e, to, p) => {
                        let p = records.rcpt_params(p);
                        g.call_on_rcpt_to(s, records.session(), e.get(), to, p)
                            .await
                    }
                }
            }
        );
        let took = started.elapsed();
        // What the plugin asked to be remembered (a failed call's
        // instance is gone, and with it the request).
        let asked = slots[i]
            .as_mut()
            .and_then(|live| live.store.data_mut().remember.take().flatten());
        if hook == Hook::Connect
            && plugin.only_at_connect()
            && let Some(live) = slots[i].take()
        {
            // Nothing else of this session calls it (a DNSBL refusing at
            // connect): the next session takes it while it is warm, rather
            // than this one keeping it to its end.
            give_back(live, plugin);
        }
        let (verdict, failed) = match result {
            Ok(Some(v)) => (bindings::verdict(&plugin.name, &v), false),
            Ok(None) => (Verdict::Continue, false),
            Err(v) => (v, true),
        };
        let event = recording::verdict(
            stage_of(hook),
            recording::plugin(&plugin.name),
            &verdict,
            took,
        );
        if failed {
            return (verdict, event.detail("the plugin failed: on_error"));
        }
        match (asked, key) {
            (Some(seconds), Some(k))
                if plugin.memo.put(k, verdict.clone(), seconds, Instant::now()) =>
            {
                let event = event.detail(format!(
                    "the plugin says this verdict holds for this client for {seconds} s"
                ));
                (verdict, event)
            }
            _ => (verdict, event),
        }
    }

    pub async fn connect(&self, info: &SessionInfo) -> Verdict {
        if !self.calls(Hook::Connect) {
            return Verdict::Continue;
        }
        self.policy(info, PolicyCall::Connect).await
    }

    pub async fn helo(&self, info: &SessionInfo, name: &str) -> Verdict {
        if !self.calls(Hook::Helo) {
            return Verdict::Continue;
        }
        self.policy(info, PolicyCall::Helo(name)).await
    }

    pub async fn mail_from(
        &self,
        info: &SessionInfo,
        from: &str,
        params: &wit::MailParams,
    ) -> Verdict {
        if !self.calls(Hook::MailFrom) {
            return Verdict::Continue;
        }
        self.policy(info, PolicyCall::MailFrom(from, params)).await
    }

    pub async fn rcpt_to(
        &self,
        info: &SessionInfo,
        envelope: &LazyEnvelope<'_>,
        to: &str,
        params: &RcptParams,
    ) -> Verdict {
        if !self.calls(Hook::RcptTo) {
            return Verdict::Continue;
        }
        self.policy(info, PolicyCall::RcptTo(envelope, to, params))
            .await
    }
}
