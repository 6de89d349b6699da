//! The shared server context: everything a session of any protocol needs
//! (config, store, TLS acceptor, authenticator, hooks, mail authentication,
//! the queue's wake-up handle, connection and session limits), built once
//! at start and shared behind an `Arc`. The protocols (SMTP/LMTP, POP3,
//! IMAP, web mail), the queue, the control socket and the metrics endpoint
//! take it from here; none of them imports the accept loop (`server.rs`),
//! and this module imports no protocol. State that belongs to one protocol
//! (POP3's maildrop locks) lives in that protocol. The reloads (plugins,
//! certificates) read the config file again from here.

use crate::auth::Authenticator;
use crate::config::Config;
use crate::hooks::Hooks;
use crate::queue::QueueHandle;
use crate::store::Store;
use std::sync::Arc;

/// Everything a session needs, shared by all of them.
pub struct ServerContext {
    pub config: Arc<Config>,
    pub store: Store,
    /// The acceptor, and the certificates behind it that a reload replaces.
    pub tls: crate::tls::ServerTls,
    pub auth: Authenticator,
    pub hooks: Hooks,
    /// SPF/DKIM/DMARC/ARC checks and DKIM signing.
    pub mailauth: crate::mailauth::MailAuth,
    pub queue: QueueHandle,
    /// Connections per client address, sessions per user.
    pub limits: Arc<crate::limits::Limits>,
}

/// Why the context could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Dns(#[from] crate::dns::DnsError),
    #[error(transparent)]
    MailAuth(#[from] crate::mailauth::MailAuthError),
}

impl ServerContext {
    pub fn new(config: Config, store: Store) -> Result<Arc<ServerContext>, ContextError> {
        let config = Arc::new(config);
        store.set_node(&config.node_id);
        store.set_queue_lease(config.queue.lease.0);
        store.set_default_quota(config.users.default_quota.map(|q| q.0));
        let tls = crate::tls::acceptor(&config)?;
        let default_domain = config
            .local_domains
            .first()
            .cloned()
            .unwrap_or_else(|| config.hostname.clone());
        let dns = crate::dns::Dns::from_config(&config.dns)?;
        let hooks = Hooks::new(config.clone(), store.clone(), dns.clone());
        let queue = QueueHandle::new();
        let mailauth = crate::mailauth::MailAuth::new(&config)?;
        Ok(Arc::new(ServerContext {
            mailauth,
            auth: Authenticator::new(
                store.clone(),
                default_domain,
                config.limits.auth_failure_delay.0,
                config.limits.max_auth_failures,
            )
            .with_cache(
                config.limits.auth_cache_size,
                config.limits.auth_cache_ttl.0,
            ),
            limits: crate::limits::Limits::new(
                config.limits.max_connections_per_client,
                config.limits.max_sessions_per_user,
                config.relay.trusted_networks.clone(),
                Some(store.clone()),
            ),
            config,
            store,
            tls,
            hooks,
            queue,
        }))
    }

    /// Re-reads the config file and swaps in its plugins (SIGHUP, `tern plugin
    /// reload`): sessions that started before keep the set they have; new
    /// sessions get the new one. Other config changes need a restart. On any
    /// error the old set stays. Returns success and what to tell the operator.
    pub async fn reload_plugins(self: &Arc<Self>) -> (bool, String) {
        let ctx = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let config = ctx.config_again()?;
            ctx.hooks.load_plugins(&config).map_err(|e| e.to_string())
        })
        .await;
        let (ok, message) = match result {
            Ok(Ok(n)) => (true, format!("reloaded: {n} plugin(s)")),
            Ok(Err(e)) => (false, format!("reload failed, plugins unchanged: {e}")),
            Err(e) => (false, format!("reload failed, plugins unchanged: {e}")),
        };
        tracing::info!("plugins {message}");
        (ok, message)
    }

    /// Re-reads the config file and loads its TLS certificates (SIGHUP,
    /// `tern tls reload`): new handshakes get them, sessions already
    /// encrypted go on. If one does not load (or does not match its key),
    /// the set in use stays and the log and the answer say why. Returns
    /// success and what to tell the operator.
    pub async fn reload_certificates(self: &Arc<Self>) -> (bool, String) {
        let ctx = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let config = ctx.config_again()?;
            ctx.tls.reload(&config).map_err(|e| e.to_string())
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

    /// The config file read again (a reload's source); the running config
    /// when the server was started without a file.
    fn config_again(&self) -> Result<Config, String> {
        match self.hooks.config_source() {
            Some(p) => Config::from_file(&p).map_err(|e| e.to_string()),
            None => Ok((*self.config).clone()),
        }
    }
}
