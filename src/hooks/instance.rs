//! Making a plugin's instance: a wasmtime store with the plugin's memory
//! limits and epoch deadline, the component instantiated under the
//! plugin's timeout, and the hook interfaces it exports looked up once
//! (`dispatch.rs` keeps the instance for the session and reuses it).

use super::dispatch::{Failure, GRACE, Live, arm};
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
    let instance = match tokio::time::timeout(
        plugin.timeout + GRACE,
        plugin.pre.instantiate_async(&mut store),
    )
    .await
    {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Err(Failure::Instantiate(format!("{e:#}"))),
        Err(_) => return Err(Failure::Timeout),
    };
    let failed = |e: wasmtime::Error| Failure::Instantiate(format!("{e:#}"));
    let policy = plugin
        .exports
        .policy
        .as_ref()
        .map(|i| i.load(&mut store, &instance))
        .transpose()
        .map_err(failed)?;
    let filter = plugin
        .exports
        .filter
        .as_ref()
        .map(|i| i.load(&mut store, &instance))
        .transpose()
        .map_err(failed)?;
    let router = plugin
        .exports
        .router
        .as_ref()
        .map(|i| i.load(&mut store, &instance))
        .transpose()
        .map_err(failed)?;
    let storage = plugin
        .exports
        .storage
        .as_ref()
        .map(|i| i.load(&mut store, &instance))
        .transpose()
        .map_err(failed)?;
    let rewrite = plugin
        .exports
        .rewrite
        .as_ref()
        .map(|i| i.load(&mut store, &instance))
        .transpose()
        .map_err(failed)?;
    store.data_mut().in_call = false;
    Ok(Live {
        store,
        sessions: 0,
        policy,
        filter,
        router,
        storage,
        rewrite,
    })
}
