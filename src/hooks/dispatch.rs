//! Calling plugins for one session. A `PluginSession` holds the plugin set
//! the session started with and, per plugin, an instance taken at its
//! first call (from the plugin's idle instances, or newly made) and kept
//! for the rest of the session; when the session ends cleanly the instance
//! goes back to the idle list for a later session (a plugin called only at
//! connect gives it back as soon as its on-connect returns). Every call
//! (and every instantiation) has a deadline: the epoch callback yields to
//! tokio at each tick and traps once the plugin's `timeout` has passed,
//! and an outer tokio timeout covers time spent in host calls such as DNS
//! (`within`: armed only for a call that waits, so one that runs straight
//! through registers no timer).
//! A trap, timeout or memory blow-up discards that instance, is logged
//! with the plugin's name, and turns into the plugin's `on_error` verdict;
//! the session and every other session go on. The policy hooks are in
//! `policy_hooks.rs`; the routers and filters here.

use super::bindings::{
    self, Destination, EnvelopeRecipient, delivery, filter, policy, rewrite, router, storage, wit,
};
use super::declared::Hook;
use super::edits::{apply_edits, clean_value};
use super::engine::{LoadedPlugin, PluginSet};
use super::filter_call::FilterCall;
use super::host::PluginState;
use super::instance::instantiate;
use super::message::MessageView;
use super::recording;
use super::{SessionInfo, Verdict};
use crate::config::OnError;
use crate::mail::{Reply, VerifiedTls};
use crate::trace::{Event, Recorder, Stage};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Resource;

/// Slack on top of a plugin's timeout for the outer (tokio) deadline.
const GRACE: Duration = Duration::from_millis(50);

/// `fut`, given until the store's armed deadline (`arm`) plus `GRACE`, as
/// `tokio::time::timeout_at` would; but the timer is registered only if
/// `fut` does not finish on its first poll. Most plugin calls run straight
/// through (no host call of theirs waits), and those need no entry in
/// tokio's timer wheel, added and removed under its lock, nor a clock
/// reading of their own. Past the deadline: `Failure::Timeout`.
pub(super) async fn within<F: std::future::Future>(
    armed: Instant,
    fut: F,
) -> Result<F::Output, Failure> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(out) = first {
        return Ok(out);
    }
    tokio::time::timeout_at((armed + GRACE).into(), fut)
        .await
        .map_err(|_| Failure::Timeout)
}

/// A live instance of one plugin within one session.
pub(super) struct Live {
    pub(super) store: wasmtime::Store<PluginState>,
    /// Sessions this instance has served.
    pub(super) sessions: u32,
    pub(super) policy: Option<policy::Guest>,
    pub(super) filter: Option<filter::Guest>,
    pub(super) router: Option<router::Guest>,
    pub(super) storage: Option<storage::Guest>,
    pub(super) rewrite: Option<rewrite::Guest>,
    pub(super) delivery: Option<delivery::Guest>,
}

/// Why a plugin call failed.
#[derive(Debug)]
pub(super) enum Failure {
    Instantiate(String),
    Trap(wasmtime::Error),
    Timeout,
}

impl Failure {
    /// Counts the failure in the plugin metrics (timeouts, traps).
    pub(super) fn count(&self, plugin: &str) {
        let timed_out = match self {
            Failure::Timeout => true,
            Failure::Trap(e) => matches!(
                e.downcast_ref::<wasmtime::Trap>(),
                Some(wasmtime::Trap::Interrupt)
            ),
            Failure::Instantiate(_) => false,
        };
        let name = if timed_out {
            "tern_plugin_timeouts_total"
        } else {
            "tern_plugin_traps_total"
        };
        crate::metrics::counter(name, &[("plugin", plugin)]);
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Instantiate(e) => write!(f, "cannot instantiate: {e}"),
            Failure::Trap(e) => {
                if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
                    return write!(f, "timed out");
                }
                // One line: the causes without the wasm backtrace.
                let causes: Vec<String> = e
                    .chain()
                    .map(|c| c.to_string().lines().next().unwrap_or("").to_string())
                    .filter(|c| {
                        !c.is_empty() && !c.starts_with("error while executing at wasm backtrace")
                    })
                    .collect();
                write!(f, "trapped: {}", causes.join(": "))
            }
            Failure::Timeout => write!(f, "timed out (in a host call)"),
        }
    }
}

/// A recipient's route chosen by a router plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    Local(String),
    /// Hosts (`host` or `host:port`) to try in order instead of MX.
    Relay(Vec<String>),
    Reject(Reply),
    Tempfail(Reply),
}

/// What the filters decided about a message.
#[derive(Debug, Default)]
pub struct FilterOutcome {
    /// The first verdict other than continue (discard and quarantine aside).
    pub verdict: Option<Verdict>,
    /// Header lines (`Name: value\r\n`) to put after Tern's own fields
    /// (`DataOutcome::apply_edits`).
    pub add_headers: Vec<u8>,
    /// Header names filters asked to remove (applied by `DataOutcome::apply_edits`).
    pub remove_headers: Vec<String>,
    pub discard: bool,
    /// Quarantine reason.
    pub quarantine: Option<String>,
    /// The folder for the local copies a filter asked for
    /// (`verdicts.local-folder`; relayed copies are unaffected). With
    /// `quarantine`: the folder the quarantining filter named, if any.
    pub local_folder: Option<String>,
}

/// One session's view of the plugins.
pub struct PluginSession {
    pub(super) set: Arc<PluginSet>,
    pub(super) slots: tokio::sync::Mutex<Vec<Option<Live>>>,
}

impl std::fmt::Debug for PluginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.set.plugins.iter().map(|p| p.name.as_str()).collect();
        f.debug_struct("PluginSession")
            .field("plugins", &names)
            .finish()
    }
}

pub(super) fn arm(store: &mut wasmtime::Store<PluginState>, timeout: Duration) {
    store.data_mut().deadline = Instant::now() + timeout;
    store.data_mut().in_call = true;
    store.set_epoch_deadline(1);
}

/// Most idle instances kept per plugin for later sessions.
const MAX_IDLE: usize = 32;
/// Sessions one instance serves before it is thrown away (bounds what a
/// plugin's memory can accumulate: leaks, fragmentation).
const MAX_SESSIONS_PER_INSTANCE: u32 = 1000;

impl Drop for PluginSession {
    /// Instances that ended their last call cleanly go back to their
    /// plugin's idle list for the next session; the rest are dropped.
    fn drop(&mut self) {
        let slots = std::mem::take(self.slots.get_mut());
        for (slot, plugin) in slots.into_iter().zip(&self.set.plugins) {
            if let Some(live) = slot {
                give_back(live, plugin);
            }
        }
    }
}

/// Puts an instance whose session is done with it on its plugin's idle
/// list, unless it stopped inside a call or has served its share of
/// sessions.
pub(super) fn give_back(mut live: Live, plugin: &LoadedPlugin) {
    live.sessions += 1;
    if live.store.data().in_call || live.sessions >= MAX_SESSIONS_PER_INSTANCE {
        return;
    }
    let mut idle = plugin.idle.lock().unwrap_or_else(|p| p.into_inner());
    if idle.len() < MAX_IDLE {
        idle.push(live);
    }
}

/// The verdict standing for a failed call.
pub(super) fn on_error(plugin: &LoadedPlugin) -> Verdict {
    match plugin.on_error {
        OnError::Continue => Verdict::Continue,
        OnError::Tempfail => Verdict::Tempfail(Reply::new(
            451,
            "4.7.1",
            "Temporary local problem, please try again later",
        )),
        OnError::Reject => Verdict::Reject(Reply::new(550, "5.7.1", "Rejected by local policy")),
    }
}

/// Runs one call on a plugin's live instance under its deadlines:
/// `call!(self, slots, i, plugin, hook-field, |guest, store| future)`.
/// Evaluates to `Result<Option<T>, Verdict>` (None: the plugin lacks the hook;
/// Err: the call failed and this is the `on_error` verdict).
macro_rules! call {
    ($this:expr, $slots:expr, $i:expr, $plugin:expr, $hook:ident, $name:expr, |$g:ident, $s:ident| $call:expr) => {{
        let plugin: &LoadedPlugin = $plugin;
        let outcome = match $this.live(&mut $slots[$i], plugin).await {
            Err(f) => Err(f),
            Ok(live) => {
                match live.$hook.as_ref() {
                    None => Ok(None),
                    Some($g) => {
                        plugin.calls.add_one();
                        arm(&mut live.store, plugin.timeout);
                        let armed = live.store.data().deadline;
                        let $s = &mut live.store;
                        match $crate::hooks::dispatch::within(armed, $call).await {
                            Ok(Ok(v)) => {
                                live.store.data_mut().in_call = false;
                                Ok(Some(v))
                            }
                            Ok(Err(e)) => Err(Failure::Trap(e)),
                            Err(f) => Err(f),
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(v) => Ok(v),
            Err(f) => {
                $slots[$i] = None;
                f.count(&plugin.name);
                tracing::warn!(plugin = %plugin.name, hook = $name, on_error = ?plugin.on_error, "plugin failed: {f}");
                Err(on_error(plugin))
            }
        }
    }};
}
pub(super) use call;

impl PluginSession {
    pub fn new(set: Arc<PluginSet>) -> PluginSession {
        let slots = set.plugins.iter().map(|_| None).collect();
        PluginSession {
            set,
            slots: tokio::sync::Mutex::new(slots),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Whether any plugin of the session is called at `hook` (exports it,
    /// declares it, has not turned it off): without one, the hook's
    /// arguments are not even built.
    pub fn calls(&self, hook: Hook) -> bool {
        self.set.plugins.iter().any(|p| p.calls(hook))
    }

    /// Whether a plugin's configuration has turned `hook` off
    /// (`config.skip-hooks`; `tern plugin test` reports it).
    pub fn turned_off(&self, hook: Hook) -> bool {
        self.set
            .plugins
            .iter()
            .any(|p| p.shared.skipped.skips(hook))
    }

    /// The plugin's live instance, created on first use.
    pub(super) async fn live<'a>(
        &self,
        slot: &'a mut Option<Live>,
        plugin: &LoadedPlugin,
    ) -> Result<&'a mut Live, Failure> {
        if slot.is_none() {
            let warm = plugin.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            *slot = Some(match warm {
                Some(live) => live,
                None => instantiate(plugin).await?,
            });
        }
        slot.as_mut()
            .ok_or_else(|| Failure::Instantiate("no instance".into()))
    }

    /// Asks the routers in order: the route (None: the built-in router
    /// decides) and the first demand for verified TLS a router made on the
    /// way (`routing.require-verified-tls`, which a router may make and
    /// still answer `default`).
    pub async fn route(
        &self,
        trace: &Recorder,
        envelope: &wit::Envelope,
        recipient: &EnvelopeRecipient<'_>,
    ) -> (Option<RouteDecision>, Option<VerifiedTls>) {
        let rcpt = wit::Recipient {
            address: recipient.address.clone(),
            params: bindings::rcpt_params(recipient.params),
        };
        let mut tls: Option<VerifiedTls> = None;
        let mut slots = self.slots.lock().await;
        for (i, plugin) in self.set.plugins.iter().enumerate() {
            if !plugin.calls(Hook::Route) {
                continue;
            }
            let started = Instant::now();
            let answer = call!(self, slots, i, plugin, router, "route", |g, s| async {
                s.data_mut().route_tls = Some(None);
                let destination = g.call_route(&mut *s, envelope, &rcpt).await;
                let demand = s.data_mut().route_tls.take().flatten();
                destination.map(|d| (d, demand))
            });
            let decision = match answer {
                Ok(Some((d, demand))) => {
                    if tls.is_none() {
                        tls = demand;
                    }
                    d
                }
                Ok(None) => continue,
                Err(v) => {
                    let e = recording::verdict(
                        Stage::Rcpt,
                        recording::plugin(&plugin.name),
                        &v,
                        started.elapsed(),
                    );
                    trace.record(
                        e.rcpt(&recipient.address)
                            .detail("the router failed: on_error"),
                    );
                    match v {
                        Verdict::Continue => continue,
                        Verdict::Reject(r) => return (Some(RouteDecision::Reject(r)), tls),
                        v => return (Some(RouteDecision::Tempfail(reply_of(v))), tls),
                    }
                }
            };
            let name = plugin.name.as_str();
            let chosen = match decision {
                Destination::Default => continue,
                Destination::Local(user) => RouteDecision::Local(user.to_ascii_lowercase()),
                Destination::Relay(hosts) if !hosts.is_empty() => RouteDecision::Relay(hosts),
                Destination::Relay(_) => continue,
                Destination::Smarthost(host) => RouteDecision::Relay(vec![host]),
                Destination::Reject(r) => RouteDecision::Reject(bindings::checked_reply(
                    name,
                    &r,
                    bindings::ReplyKind::Reject,
                )),
            };
            tracing::info!(plugin = name, rcpt = %recipient.address, route = ?chosen, tls = ?tls, "plugin route");
            let e =
                Event::new(Stage::Rcpt, recording::plugin(name), "route").took(started.elapsed());
            trace.record(e.rcpt(&recipient.address).detail(format!("{chosen:?}")));
            return (Some(chosen), tls);
        }
        if let Some(demand) = &tls {
            tracing::info!(rcpt = %recipient.address, "{demand}; built-in route");
        }
        (None, tls)
    }

    /// Runs the filters in order over the message.
    pub async fn data(
        &self,
        info: &SessionInfo,
        envelope: &wit::Envelope,
        message: &MessageView,
    ) -> FilterOutcome {
        let session = bindings::session(info);
        let mut out = FilterOutcome::default();
        let mut slots = self.slots.lock().await;
        for (i, plugin) in self.set.plugins.iter().enumerate() {
            if !plugin.calls(Hook::Data) {
                continue;
            }
            let started = Instant::now();
            let pushed = self.live(&mut slots[i], plugin).await.and_then(|live| {
                live.store
                    .data_mut()
                    .table
                    .push(message.clone())
                    .map_err(|e| Failure::Instantiate(e.to_string()))
            });
            let own = match pushed {
                Ok(r) => r,
                Err(f) => {
                    slots[i] = None;
                    f.count(&plugin.name);
                    tracing::warn!(plugin = %plugin.name, hook = "on-data", "plugin failed: {f}");
                    let v = on_error(plugin);
                    let e = recording::verdict(
                        Stage::Data,
                        recording::plugin(&plugin.name),
                        &v,
                        started.elapsed(),
                    );
                    info.trace
                        .record(e.detail(format!("the plugin failed: {f}; on_error")));
                    out.verdict = Some(v).filter(|v| *v != Verdict::Continue);
                    if out.verdict.is_some() {
                        return out;
                    }
                    continue;
                }
            };
            let rep = own.rep();
            let result = call!(self, slots, i, plugin, filter, "on-data", |g, s| async {
                s.data_mut().filtering = Some(FilterCall {
                    trace: info.trace.clone(),
                    folder: None,
                });
                let message = Resource::<MessageView>::new_borrow(rep);
                let fv = g.call_on_data(&mut *s, &session, envelope, message).await;
                let asked = s.data_mut().filtering.take().and_then(|c| c.folder);
                fv.map(|fv| (fv, asked))
            });
            if let Some(live) = slots[i].as_mut() {
                let _ = live.store.data_mut().table.delete(own);
            }
            let (fv, asked) = match result {
                Ok(Some(answer)) => answer,
                Ok(None) => continue,
                Err(v) => {
                    let e = recording::verdict(
                        Stage::Data,
                        recording::plugin(&plugin.name),
                        &v,
                        started.elapsed(),
                    );
                    info.trace.record(e.detail("the plugin failed: on_error"));
                    if v == Verdict::Continue {
                        continue;
                    }
                    out.verdict = Some(v);
                    return out;
                }
            };
            apply_edits(&plugin.name, &fv.edits, &mut out);
            let name = plugin.name.as_str();
            let files = match fv.action {
                wit::FilterAction::Continue | wit::FilterAction::Accept => true,
                // A quarantine keeps the local copies in the folder this
                // filter named in the same call, else Junk.
                wit::FilterAction::Quarantine(_) => {
                    out.local_folder = None;
                    true
                }
                _ => false,
            };
            if files && let Some(folder) = asked {
                local_folder(name, folder, &mut out, &info.trace);
            }
            let event = recording::filter(name, &fv, started.elapsed());
            let verdict =
                match fv.action {
                    wit::FilterAction::Continue => {
                        info.trace.record(event);
                        continue;
                    }
                    wit::FilterAction::Accept => Verdict::Accept,
                    wit::FilterAction::Reject(r) => Verdict::Reject(bindings::checked_reply(
                        name,
                        &r,
                        bindings::ReplyKind::Reject,
                    )),
                    wit::FilterAction::Tempfail(r) => Verdict::Tempfail(bindings::checked_reply(
                        name,
                        &r,
                        bindings::ReplyKind::Tempfail,
                    )),
                    wit::FilterAction::Disconnect(r) => Verdict::Disconnect(
                        bindings::checked_reply(name, &r, bindings::ReplyKind::Disconnect),
                    ),
                    wit::FilterAction::Discard => {
                        out.discard = true;
                        Verdict::Accept
                    }
                    wit::FilterAction::Quarantine(reason) => {
                        out.quarantine = Some(clean_value(&reason));
                        Verdict::Accept
                    }
                };
            tracing::info!(plugin = name, hook = "on-data", verdict = ?verdict, discard = out.discard, quarantine = ?out.quarantine, "plugin verdict");
            info.trace.record(recording::with_reply(event, &verdict));
            out.verdict = Some(verdict);
            return out;
        }
        out
    }
}

/// A filter's `verdicts.local-folder`: the first one asked decides.
fn local_folder(plugin: &str, folder: String, out: &mut FilterOutcome, trace: &Recorder) {
    if let Some(first) = &out.local_folder {
        tracing::info!(plugin, folder, first = %first, "local-folder: an earlier filter chose the folder; ignored");
        return;
    }
    tracing::info!(plugin, folder, "plugin files local copies");
    let e = Event::new(Stage::Data, recording::plugin(plugin), "local folder");
    trace.record(e.detail(folder.clone()));
    out.local_folder = Some(folder);
}

pub(super) fn reply_of(v: Verdict) -> Reply {
    match v {
        Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) => r,
        _ => Reply::new(
            451,
            "4.7.1",
            "Temporary local problem, please try again later",
        ),
    }
}
