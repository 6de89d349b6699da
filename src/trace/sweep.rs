//! Forgetting traces: at start and then every so often, the running server
//! removes refused attempts older than `[trace] keep` and the traces of
//! messages that left the store longer ago than that
//! (`Store::expire_traces`). Both bounds are in the store, so a restart
//! loses nothing and several nodes sweeping at once do no harm. At its
//! start it indexes by client the traces of a store from before that
//! index (`Store::index_traces_by_client`, once per store).

use crate::context::ServerContext;
use crate::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// Time between sweeps: a tenth of `keep`, between a second and an hour.
pub fn period(keep: Duration) -> Duration {
    (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Sweeps until shutdown.
pub async fn run(ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    let keep = ctx.config.trace.keep.0;
    // A store from before the client index gets it (once).
    if let Err(e) = ctx.store.index_traces_by_client().await {
        tracing::warn!("indexing decision traces by client: {e}");
    }
    loop {
        let cutoff = crate::clock::now_ms() - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        match ctx.store.expire_traces(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(forgotten = n, "expired decision traces"),
            Err(e) => tracing::warn!("expiring decision traces: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(period(keep)) => {}
            _ = shutdown.recv() => return,
        }
    }
}
