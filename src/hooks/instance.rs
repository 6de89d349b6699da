//! Making a plugin's instance: a wasmtime store with the plugin's memory
//! limits and epoch deadline, the component instantiated under the
//! plugin's timeout, and the hook interfaces it exports looked up once
//! (`dispatch.rs` keeps the instance for the session and reuses it).
//! Also `Bare`, such an instance called without the dispatch around it:
//! the baseline of the hooks benchmark.

use super::dispatch::{Failure, Live, arm, within};
use super::engine::LoadedPlugin;
use super::host::PluginState;
use std::time::Instant;
use wasmtime::UpdateDeadline;

/// Creates a plugin's instance under its deadline.
pub(super) async fn instantiate(plugin: &LoadedPlugin) -> Result<Live, Failure> {
    let state =
        PluginState::new(plugin.shared.clone()).map_err(|e| Failure::Instantiate(e.to_string()))?;
    let mut store = wasmtime::Store::new(&plugin.engine, state);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    arm(&mut store, plugin.timeout);
    let armed = store.data().deadline;
    let instance = match within(armed, plugin.pre.instantiate_async(&mut store)).await {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Err(Failure::Instantiate(format!("{e:#}"))),
        Err(f) => return Err(f),
    };
    let failed = |e: wasmtime::Error| Failure::Instantiate(format!("{e:#}"));
    // Each exported hook interface's functions, looked up once.
    macro_rules! load {
        ($hook:ident) => {
            plugin
                .exports
                .$hook
                .as_ref()
                .map(|i| i.load(&mut store, &instance))
                .transpose()
                .map_err(failed)?
        };
    }
    let (policy, filter, router) = (load!(policy), load!(filter), load!(router));
    let (storage, rewrite, delivery) = (load!(storage), load!(rewrite), load!(delivery));
    store.data_mut().in_call = false;
    Ok(Live {
        store,
        sessions: 0,
        policy,
        filter,
        router,
        storage,
        rewrite,
        delivery,
    })
}

/// The baseline of `cargo bench -p tern-bench` (`bench/benches/hooks.rs`):
/// a plugin's warm instance called straight through wasmtime's generated
/// bindings, without what a session's dispatch adds around each call (the
/// deadline armed and the tokio timeout, the calls counter, the trace
/// event, the session's instance slots). Not for serving mail: it has one
/// deadline, an hour, set once.
#[doc(hidden)]
pub struct Bare {
    live: Live,
}

impl Bare {
    /// An instance of the set's `index`th plugin.
    pub async fn new(set: &super::PluginSet, index: usize) -> Result<Bare, String> {
        let plugin = set.plugins.get(index).ok_or("no such plugin")?;
        let mut live = instantiate(plugin).await.map_err(|e| e.to_string())?;
        arm(&mut live.store, std::time::Duration::from_secs(3600));
        Ok(Bare { live })
    }

    /// `on-rcpt-to`; whether the plugin answered (it has the hook and did
    /// not trap).
    pub async fn rcpt_to(
        &mut self,
        session: &super::bindings::wit::Session,
        envelope: &super::bindings::wit::Envelope,
        to: &str,
        params: &super::bindings::wit::RcptParams,
    ) -> bool {
        let Some(guest) = self.live.policy.as_ref() else {
            return false;
        };
        guest
            .call_on_rcpt_to(&mut self.live.store, session, envelope, to, params)
            .await
            .is_ok()
    }
}
