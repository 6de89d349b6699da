//! Reloading the certificates while the server runs: on SIGHUP (with the
//! plugins) and for `tern tls reload` through the control socket. The
//! config file is read again, so changed or added `[tls]` certificates
//! take effect; one that does not load leaves the serving set in place, and
//! the log (and the admin's command) says why.

use super::TlsError;
use crate::config::Config;
use crate::context::ServerContext;
use std::sync::Arc;

/// Reloads the certificates; returns success and what to tell the operator.
pub async fn reload(ctx: &Arc<ServerContext>) -> (bool, String) {
    let ctx = ctx.clone();
    let result = tokio::task::spawn_blocking(move || {
        let config = match ctx.hooks.config_source() {
            Some(p) => Config::from_file(&p).map_err(|e| TlsError::Config(e.to_string()))?,
            None => (*ctx.config).clone(),
        };
        ctx.tls.reload(&config)
    })
    .await;
    let failed = |e: &dyn std::fmt::Display| {
        let message = format!("reload failed, the certificates in use stay: {e}");
        tracing::warn!("TLS {message}");
        (false, message)
    };
    match result {
        Ok(Ok((n, warnings))) => {
            let mut message = format!("reloaded: {n} certificate(s)");
            tracing::info!("TLS certificates {message}");
            for w in warnings {
                tracing::warn!("TLS: {w}");
                message.push_str(&format!("\nwarning: {w}"));
            }
            (true, message)
        }
        Ok(Err(e)) => failed(&e),
        Err(e) => failed(&e),
    }
}
