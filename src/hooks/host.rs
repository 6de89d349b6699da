//! What a plugin's store holds (`PluginState`) and the host functions it
//! may import: `log`, `config`, `kv` (its private area of the sled store),
//! `dns` (the server's resolver, awaited without blocking the runtime) and
//! `clock`, and `routing` (a router's demand for verified TLS, kept on
//! the state for the `route` call in progress), `verdicts` (a policy
//! verdict the plugin says holds for the client, kept on the state for
//! the policy call in progress; it and the filter's `local-folder` and
//! `so-far` are in `filter_call.rs`); `mailbox` (the delivery
//! hook's account) is in `mailbox.rs`. WASI is linked with an empty context: no environment, no
//! arguments, no stdin, no network, no files, unless the plugin's config
//! grants a `directory`, which is then its only preopened folder, or
//! `connect` addresses, which it may then open TCP connections to
//! (`network.rs`); WASI HTTP is linked too, its requests checked against
//! the plugin's `http` prefixes (`http.rs`). What a
//! plugin writes to stdout or stderr (a Rust panic message, say) goes to
//! the server log, line by line, tagged with its name, up to a bound.

use super::bindings::tern::plugin::{clock, config, dns, kv, log, routing};
use crate::dns::{Dns, DnsError};
use crate::mail::VerifiedTls;
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Longest log line taken from a plugin.
const MAX_LOG_LINE: usize = 2000;

/// What every instance of one plugin shares.
pub struct PluginShared {
    pub name: String,
    pub config: BTreeMap<String, String>,
    pub store: Store,
    pub dns: Dns,
    pub max_memory: usize,
    pub directory: Option<std::path::PathBuf>,
    /// Outgoing connections granted (`connect`).
    pub grants: Arc<super::network::Grants>,
    /// Outgoing HTTP granted (`http`); None: none.
    pub http: Option<Arc<super::http::HttpGate>>,
    /// The connections all its instances hold (`held.rs`); the HTTP
    /// gate has the same.
    pub connections: Arc<tokio::sync::Semaphore>,
    /// The hooks its configuration turns off (`config.skip-hooks`).
    pub skipped: super::declared::Skipped,
}

/// The data of one plugin instance's wasmtime store.
pub struct PluginState {
    pub shared: Arc<PluginShared>,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    wasi: WasiCtx,
    /// When the call in progress must end (checked at each epoch tick).
    pub deadline: Instant,
    /// A call is in progress (set by `arm`, cleared when it returns): an
    /// instance left so (its session dropped mid-call) is never reused.
    pub in_call: bool,
    /// The connection count's permits of its live sockets (`held.rs`);
    /// given back when the guest drops a socket or the store is dropped.
    pub held_sockets: super::held::HeldSockets,
    /// During a `route` call: Some, holding the demand for verified TLS
    /// the plugin made in it, if any; None outside one.
    pub route_tls: Option<Option<VerifiedTls>>,
    /// During a policy call: Some, holding the seconds for which the
    /// plugin said its verdict holds for the client
    /// (`verdicts.same-for-client`), if it did; None outside one.
    pub remember: Option<Option<u32>>,
    /// During an `on-data` call: its trace and the folder the plugin asked
    /// for (`filter_call.rs`); None outside one.
    pub filtering: Option<super::filter_call::FilterCall>,
    /// During a `deliver` call: its account and the mail asked to be
    /// sent (`mailbox.rs`); None outside one.
    pub mailbox: Option<super::mailbox::MailboxCall>,
    http_ctx: WasiHttpCtx,
    http_hooks: super::http::HttpHooks,
}

impl PluginState {
    pub fn new(shared: Arc<PluginShared>) -> Result<PluginState, std::io::Error> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(shared.max_memory)
            .instances(64)
            .tables(64)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        let mut wasi = WasiCtxBuilder::new();
        let output = GuestOutput::new(&shared.name);
        wasi.stdout(output.clone()).stderr(output);
        if !shared.grants.is_empty() {
            wasi.allow_tcp(true)
                .socket_addr_check(super::network::socket_check(
                    shared.grants.clone(),
                    shared.dns.clone(),
                ));
        }
        if let Some(dir) = &shared.directory {
            wasi.preopened_dir(dir, ".", FsPerms::ReadWrite)
                .map_err(|e| {
                    std::io::Error::other(format!("cannot open {}: {e}", dir.display()))
                })?;
        }
        Ok(PluginState {
            table: ResourceTable::new(),
            limits,
            wasi: wasi.build(),
            deadline: Instant::now(),
            in_call: false,
            held_sockets: Default::default(),
            route_tls: None,
            remember: None,
            filtering: None,
            mailbox: None,
            http_ctx: WasiHttpCtx::new(),
            http_hooks: super::http::HttpHooks::new(shared.http.clone()),
            shared,
        })
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl log::Host for PluginState {
    fn log(&mut self, level: log::Level, message: String) {
        let plugin = self.shared.name.as_str();
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let message = message.replace(['\r', '\n'], " ");
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl config::Host for PluginState {
    fn get(&mut self, key: String) -> Option<String> {
        self.shared.config.get(&key).cloned()
    }

    fn all(&mut self) -> Vec<(String, String)> {
        self.shared
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn skip_hooks(&mut self, hooks: Vec<String>) {
        let newly = self.shared.skipped.add(hooks.iter().map(String::as_str));
        if !newly.is_empty() {
            let plugin = self.shared.name.as_str();
            tracing::info!(plugin, hooks = ?newly, "the plugin's configuration turns these hooks off; they are not called");
        }
    }
}

impl kv::Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        self.shared
            .store
            .kv_get(&self.shared.name, &key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u64>,
    ) -> Result<(), String> {
        self.shared
            .store
            .kv_set(&self.shared.name, &key, &value, ttl_seconds)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        self.shared
            .store
            .kv_delete(&self.shared.name, &key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
        ttl_seconds: Option<u64>,
    ) -> Result<i64, String> {
        self.shared
            .store
            .kv_increment(&self.shared.name, &key, delta, ttl_seconds)
            .await
            .map_err(|e| e.to_string())
    }
}

fn dns_error(e: DnsError) -> dns::DnsError {
    match e {
        DnsError::NotFound => dns::DnsError::NotFound,
        other => dns::DnsError::Temporary(other.to_string()),
    }
}

/// A or AAAA records of `name` (an IP literal is not a name: not found).
async fn addresses(dns: Dns, name: String, v4: bool) -> Result<Vec<String>, dns::DnsError> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(dns::DnsError::NotFound);
    }
    let found = dns.addresses(&name, v4).await.map_err(dns_error)?;
    Ok(found.into_iter().map(|ip| ip.to_string()).collect())
}

impl dns::Host for PluginState {
    async fn a(&mut self, name: String) -> Result<Vec<String>, dns::DnsError> {
        addresses(self.shared.dns.clone(), name, true).await
    }

    async fn aaaa(&mut self, name: String) -> Result<Vec<String>, dns::DnsError> {
        addresses(self.shared.dns.clone(), name, false).await
    }

    async fn txt(&mut self, name: String) -> Result<Vec<String>, dns::DnsError> {
        let dns = self.shared.dns.clone();
        dns.txt(&name).await.map_err(dns_error)
    }

    async fn mx(&mut self, name: String) -> Result<Vec<dns::MxRecord>, dns::DnsError> {
        let dns = self.shared.dns.clone();
        let list = dns.mx(&name).await.map_err(dns_error)?;
        Ok(list
            .into_iter()
            .map(|(preference, exchange)| dns::MxRecord {
                preference,
                exchange,
            })
            .collect())
    }
}

impl routing::Host for PluginState {
    fn require_verified_tls(&mut self, name: Option<String>) {
        let plugin = self.shared.name.clone();
        let Some(demand) = self.route_tls.as_mut() else {
            tracing::warn!(plugin, "require-verified-tls called outside route: ignored");
            return;
        };
        let name = name
            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty());
        if let Some(n) = &name
            && rustls::pki_types::ServerName::try_from(n.as_str()).is_err()
        {
            tracing::warn!(
                plugin,
                name = n,
                "require-verified-tls: not a host name; the hop's own name is checked"
            );
            *demand = Some(VerifiedTls { plugin, name: None });
            return;
        }
        *demand = Some(VerifiedTls { plugin, name });
    }
}

impl clock::Host for PluginState {
    fn now_ms(&mut self) -> u64 {
        crate::clock::now_ms_unsigned()
    }
}

/// Most bytes of a plugin instance's stdout/stderr that reach the log.
const MAX_GUEST_OUTPUT: usize = 16 * 1024;

/// A plugin's stdout and stderr: complete lines go to the server log.
#[derive(Clone)]
struct GuestOutput {
    plugin: Arc<str>,
    state: Arc<std::sync::Mutex<(Vec<u8>, usize)>>,
}

impl GuestOutput {
    fn new(plugin: &str) -> GuestOutput {
        GuestOutput {
            plugin: plugin.into(),
            state: Arc::new(std::sync::Mutex::new((Vec::new(), 0))),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (line, total) = &mut *state;
        let room = MAX_GUEST_OUTPUT.saturating_sub(*total);
        *total += bytes.len().min(room);
        for &b in &bytes[..bytes.len().min(room)] {
            if b == b'\n' || line.len() >= MAX_LOG_LINE {
                let text = String::from_utf8_lossy(line).trim_end().to_string();
                if !text.is_empty() {
                    tracing::warn!(plugin = %self.plugin, "plugin output: {text}");
                }
                line.clear();
            }
            if b != b'\n' {
                line.push(b);
            }
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
