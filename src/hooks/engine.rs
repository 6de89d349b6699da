//! Loading plugins: one wasmtime `Engine` per plugin set (async calls,
//! epoch interruption, the pooling allocator), the `Linker` set up once,
//! and per plugin a compiled component (cached in `data_dir` by hash) and
//! an `InstancePre` whose exports tell which interfaces it implements
//! (and its `tern:hooks` section which of their hooks, `declared.rs`). A set is
//! immutable: a reload builds a new one and sessions keep the one they
//! started with. Nothing here runs plugin code.

use super::bindings::{Plugin, delivery, filter, policy, rewrite, router, storage};
use super::declared::{Declared, Hook};
use super::host::{PluginShared, PluginState};
use crate::config::{Config, OnError, PluginConfig};
use crate::dns::Dns;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; call deadlines are checked this often.
pub const TICK: Duration = Duration::from_millis(5);

/// Most plugin instances alive at once (each session keeps one per plugin it called).
const MAX_POOLED_INSTANCES: u32 = 4000;

/// Why a plugin could not be loaded. Each names the plugin and its file.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {name:?}: cannot read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin {name:?}: {path} is not a WebAssembly component: {message}")]
    NotComponent {
        name: String,
        path: PathBuf,
        message: String,
    },
    #[error(
        "plugin {name:?}: {path} needs imports Tern does not provide ({message}); a plugin may import tern:plugin/{{log,config,kv,dns,clock,routing,verdicts,mailbox}}@0.1.0 and WASI 0.2 (without capabilities)"
    )]
    Link {
        name: String,
        path: PathBuf,
        message: String,
    },
    #[error(
        "plugin {name:?}: {path} exports no hook (policy, filter, router, rewrite, storage or delivery of tern:plugin@0.1.0): {message}"
    )]
    NoHooks {
        name: String,
        path: PathBuf,
        message: String,
    },
    #[error("plugin {name:?}: directory {path}: {message}")]
    Directory {
        name: String,
        path: PathBuf,
        message: String,
    },
    #[error("plugin {name:?}: {path}: {message}")]
    Network {
        name: String,
        path: PathBuf,
        message: String,
    },
    #[error("plugin engine: {0}")]
    Engine(String),
}

/// The hook interfaces a plugin exports, resolved once.
pub struct Exports {
    pub policy: Option<policy::GuestIndices>,
    pub filter: Option<filter::GuestIndices>,
    pub router: Option<router::GuestIndices>,
    pub storage: Option<storage::GuestIndices>,
    pub rewrite: Option<rewrite::GuestIndices>,
    pub delivery: Option<delivery::GuestIndices>,
}

impl Exports {
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.policy.is_some() {
            v.push("policy");
        }
        if self.filter.is_some() {
            v.push("filter");
        }
        if self.router.is_some() {
            v.push("router");
        }
        if self.storage.is_some() {
            v.push("storage");
        }
        if self.rewrite.is_some() {
            v.push("rewrite");
        }
        if self.delivery.is_some() {
            v.push("delivery");
        }
        v
    }
}

/// One loaded plugin, ready to instantiate.
pub struct LoadedPlugin {
    pub name: String,
    pub path: PathBuf,
    pub on_error: OnError,
    pub timeout: Duration,
    pub shared: Arc<PluginShared>,
    pub pre: InstancePre<PluginState>,
    pub exports: Exports,
    /// The hooks the component declared (`tern:hooks`).
    pub declared: Declared,
    pub engine: Engine,
    /// Instances whose session ended cleanly, ready for the next session.
    pub(super) idle: std::sync::Mutex<Vec<super::dispatch::Live>>,
    /// `tern_plugin_calls_total` for this plugin.
    pub(super) calls: crate::metrics::Counter,
    /// Policy verdicts it said hold for a client (`verdicts.same-for-client`).
    pub(super) memo: super::memo::Memo,
    /// `tern_plugin_remembered_total`: policy calls answered from `memo`.
    pub(super) remembered: crate::metrics::Counter,
}

impl LoadedPlugin {
    /// Whether a hook is to be called: its interface is exported, the
    /// component declares it, and the plugin's configuration has not
    /// turned it off.
    pub fn calls(&self, hook: Hook) -> bool {
        let exported = match hook {
            Hook::Connect | Hook::Helo | Hook::MailFrom | Hook::RcptTo => {
                self.exports.policy.is_some()
            }
            Hook::Data => self.exports.filter.is_some(),
            Hook::Route => self.exports.router.is_some(),
            Hook::RewriteRecipient => self.exports.rewrite.is_some(),
            Hook::Deliver => self.exports.delivery.is_some(),
        };
        exported && self.declared.calls(hook) && !self.shared.skipped.skips(hook)
    }

    /// Whether a session has nothing more for this plugin once its
    /// on-connect returned: no other hook is called, and it keeps no
    /// mailboxes. (Hooks are only ever turned off, never on, within one
    /// plugin set.)
    pub fn only_at_connect(&self) -> bool {
        self.exports.storage.is_none()
            && Hook::ALL
                .into_iter()
                .all(|h| h == Hook::Connect || !self.calls(h))
    }
}

/// The plugins of one configuration, in config order.
pub struct PluginSet {
    pub plugins: Vec<Arc<LoadedPlugin>>,
}

impl PluginSet {
    /// No plugins (and no engine).
    pub fn empty() -> PluginSet {
        PluginSet {
            plugins: Vec::new(),
        }
    }

    /// Compiles (or takes from the cache) and links every `[[plugin]]`.
    pub fn load(config: &Config, store: &Store, dns: &Dns) -> Result<PluginSet, PluginError> {
        if config.plugin.is_empty() {
            return Ok(PluginSet::empty());
        }
        let max_memory = config
            .plugin
            .iter()
            .map(|p| p.max_memory.0)
            .max()
            .unwrap_or(0)
            .max(1 << 20);
        let per_plugin = u32::try_from(config.limits.max_connections)
            .unwrap_or(u32::MAX)
            .saturating_add(8);
        let instances = per_plugin
            .saturating_mul(config.plugin.len() as u32)
            .min(MAX_POOLED_INSTANCES);
        let engine = new_engine(max_memory, instances)?;
        let linker = linker(&engine)?;
        let cache = config.data_dir.join("plugin-cache");
        let mut plugins = Vec::new();
        for p in &config.plugin {
            let (component, declared) = compile(&engine, p, Some(&cache))?;
            let mut plugin = link(
                &engine,
                &linker,
                component,
                p,
                store,
                dns,
                config.relay.tls_ca.as_deref(),
            )?;
            plugin.declared = declared;
            plugins.push(Arc::new(plugin));
        }
        Ok(PluginSet { plugins })
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Drops every idle instance (benchmarks of fresh instantiation).
    pub fn drain_idle(&self) {
        for p in &self.plugins {
            p.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

/// The engine: async, epoch interruption, pooling allocator sized for
/// `instances` instances of at most `max_memory` bytes of linear memory.
pub fn new_engine(max_memory: u64, instances: u32) -> Result<Engine, PluginError> {
    let max_memory = max_memory.next_multiple_of(64 * 1024);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
        // A slot reused by the next session keeps its first pages mapped
        // (reset by memset, not by page faults): cheaper instantiation.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10);
    let mut c = wasmtime::Config::new();
    c.epoch_interruption(true)
        .memory_reservation(max_memory)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&c).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    start_ticker(&engine);
    Ok(engine)
}

/// A thread advancing the engine's epoch every `TICK` while it lives.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("tern-plugin-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(
            "cannot start the plugin epoch thread ({e}); plugin calls will only end by the async timeout"
        );
    }
}

/// The linker: WASI with whatever context each store has, and the host imports.
pub fn linker(engine: &Engine) -> Result<Linker<PluginState>, PluginError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    super::held::add_to_linker(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    Plugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
        .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    Ok(linker)
}

/// Compiles a plugin file, through the cache in `cache` when given; with
/// the hooks it declares.
pub fn compile(
    engine: &Engine,
    p: &PluginConfig,
    cache: Option<&Path>,
) -> Result<(Component, Declared), PluginError> {
    let bytes = std::fs::read(&p.path).map_err(|source| PluginError::Read {
        name: p.name.clone(),
        path: p.path.clone(),
        source,
    })?;
    let not_component = |message: String| PluginError::NotComponent {
        name: p.name.clone(),
        path: p.path.clone(),
        message,
    };
    if !is_component(&bytes) {
        let what = if bytes.starts_with(b"\0asm") {
            "a core WebAssembly module, not a component"
        } else {
            "not WebAssembly"
        };
        return Err(not_component(what.to_string()));
    }
    let declared = Declared::of_component(&bytes).map_err(not_component)?;
    let cached = cache.map(|dir| dir.join(format!("{}.cwasm", cache_key(engine, &bytes))));
    if let Some(path) = &cached
        && path.exists()
    {
        // SAFETY: the file is an artefact this server serialised itself
        // into its own data_dir; wasmtime checks that it was made by a
        // compatible engine and refuses it otherwise (then we recompile).
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok((c, declared)),
            Err(e) => {
                tracing::warn!(plugin = %p.name, cache = %path.display(), "cached component unusable, recompiling: {e}")
            }
        }
    }
    let started = std::time::Instant::now();
    let component = Component::new(engine, &bytes).map_err(|e| not_component(format!("{e:#}")))?;
    tracing::info!(plugin = %p.name, path = %p.path.display(), elapsed_ms = started.elapsed().as_millis() as u64, "plugin compiled");
    if let Some(path) = &cached
        && let Err(e) = write_cache(path, &component)
    {
        tracing::warn!(plugin = %p.name, cache = %path.display(), "cannot cache the compiled plugin: {e}");
    }
    Ok((component, declared))
}

/// A component's preamble: `\0asm`, then version 0x0d and layer 1.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    use blake2::Digest;
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let mut d = blake2::Blake2b512::new();
    d.update(bytes);
    d.update(h.finish().to_be_bytes());
    d.update(env!("CARGO_PKG_VERSION").as_bytes());
    d.finalize()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_cache(path: &Path, component: &Component) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Links a compiled plugin and finds its hooks; `tls_ca`: the trust
/// anchors for its https requests (None: the system's).
pub fn link(
    engine: &Engine,
    linker: &Linker<PluginState>,
    component: Component,
    p: &PluginConfig,
    store: &Store,
    dns: &Dns,
    tls_ca: Option<&Path>,
) -> Result<LoadedPlugin, PluginError> {
    let grants =
        super::network::Grants::parse(&p.connect).map_err(|message| PluginError::Network {
            name: p.name.clone(),
            path: p.path.clone(),
            message,
        })?;
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let network = |message| PluginError::Network {
        name: p.name.clone(),
        path: p.path.clone(),
        message,
    };
    if let Some(message) =
        super::network::ungranted_import(imports.iter().map(String::as_str), &grants)
    {
        return Err(network(message));
    }
    let http = super::http_grant::HttpGrants::parse(&p.http).map_err(network)?;
    if let Some(message) =
        super::network::ungranted_http_import(imports.iter().map(String::as_str), &http)
    {
        return Err(network(message));
    }
    let connections = super::held::budget(p.max_connections);
    let http = (!http.is_empty()).then(|| {
        Arc::new(super::http::HttpGate::new(
            &p.name,
            http,
            dns.clone(),
            tls_ca,
            p.timeout.0,
            connections.clone(),
        ))
    });
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| PluginError::Link {
            name: p.name.clone(),
            path: p.path.clone(),
            message: format!("{e:#}"),
        })?;
    let mut problems = Vec::new();
    let mut found = |r: wasmtime::Result<()>| {
        if let Err(e) = r {
            problems.push(format!("{e:#}"));
        }
    };
    let mut exports = Exports {
        policy: None,
        filter: None,
        router: None,
        storage: None,
        rewrite: None,
        delivery: None,
    };
    found(policy::GuestIndices::new(&pre).map(|g| exports.policy = Some(g)));
    found(filter::GuestIndices::new(&pre).map(|g| exports.filter = Some(g)));
    found(router::GuestIndices::new(&pre).map(|g| exports.router = Some(g)));
    found(storage::GuestIndices::new(&pre).map(|g| exports.storage = Some(g)));
    found(rewrite::GuestIndices::new(&pre).map(|g| exports.rewrite = Some(g)));
    found(delivery::GuestIndices::new(&pre).map(|g| exports.delivery = Some(g)));
    if exports.names().is_empty() {
        return Err(PluginError::NoHooks {
            name: p.name.clone(),
            path: p.path.clone(),
            message: problems.join("; "),
        });
    }
    if let Some(dir) = &p.directory
        && !dir.is_dir()
    {
        return Err(PluginError::Directory {
            name: p.name.clone(),
            path: dir.clone(),
            message: "not a folder".into(),
        });
    }
    let shared = Arc::new(PluginShared {
        name: p.name.clone(),
        config: p.config.clone(),
        store: store.clone(),
        dns: dns.clone(),
        max_memory: usize::try_from(p.max_memory.0).unwrap_or(usize::MAX),
        directory: p.directory.clone(),
        grants: Arc::new(grants),
        http,
        connections,
        skipped: Default::default(),
    });
    Ok(LoadedPlugin {
        name: p.name.clone(),
        path: p.path.clone(),
        on_error: p.on_error,
        timeout: p.timeout.0,
        shared,
        pre,
        exports,
        declared: Declared::default(),
        engine: engine.clone(),
        idle: std::sync::Mutex::new(Vec::new()),
        calls: crate::metrics::Counter::new("tern_plugin_calls_total", &[("plugin", &p.name)]),
        memo: super::memo::Memo::default(),
        remembered: crate::metrics::Counter::new(
            "tern_plugin_remembered_total",
            &[("plugin", &p.name)],
        ),
    })
}

/// What a component file imports and exports, and which hooks Tern would call.
pub struct Inspection {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub hooks: Vec<&'static str>,
    /// The hooks it declares in `tern:hooks` (None: every hook of `hooks`).
    pub declared: Option<Vec<&'static str>>,
    /// Why it would not load in Tern, if it would not.
    pub problem: Option<String>,
    /// The file's size in bytes.
    pub size: u64,
    /// How long compiling it took (what a server pays at its first load;
    /// later loads take the compiled code from `data_dir/plugin-cache`).
    pub compile_time: Duration,
}

/// Inspects a component without running it (`tern plugin inspect`,
/// `tern check-config`); `name` is the plugin's name in error messages.
pub fn inspect(path: &Path, name: &str) -> Result<Inspection, PluginError> {
    let p = PluginConfig {
        name: name.to_string(),
        path: path.to_path_buf(),
        config: Default::default(),
        max_memory: crate::config::ByteSize(64 << 20),
        timeout: crate::config::ConfigDuration(Duration::from_secs(1)),
        on_error: OnError::Tempfail,
        directory: None,
        connect: Vec::new(),
        http: Vec::new(),
        max_connections: super::held::DEFAULT_MAX_HELD,
    };
    let engine = Engine::new(wasmtime::Config::new().epoch_interruption(true))
        .map_err(|e| PluginError::Engine(format!("{e:#}")))?;
    let started = std::time::Instant::now();
    let (component, declared) = compile(&engine, &p, None)?;
    let compile_time = started.elapsed();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let ty = component.component_type();
    let imports = ty
        .imports(&engine)
        .map(|(name, item)| describe(name, &item.ty))
        .collect();
    let exports = ty
        .exports(&engine)
        .map(|(name, item)| describe(name, &item.ty))
        .collect();
    let linker = linker(&engine)?;
    let (hooks, problem) = match linker.instantiate_pre(&component) {
        Ok(pre) => {
            let mut hooks = Vec::new();
            if policy::GuestIndices::new(&pre).is_ok() {
                hooks.push("policy");
            }
            if filter::GuestIndices::new(&pre).is_ok() {
                hooks.push("filter");
            }
            if router::GuestIndices::new(&pre).is_ok() {
                hooks.push("router");
            }
            if storage::GuestIndices::new(&pre).is_ok() {
                hooks.push("storage");
            }
            if rewrite::GuestIndices::new(&pre).is_ok() {
                hooks.push("rewrite");
            }
            if delivery::GuestIndices::new(&pre).is_ok() {
                hooks.push("delivery");
            }
            let problem = hooks
                .is_empty()
                .then(|| "exports no tern:plugin@0.1.0 hook".to_string());
            (hooks, problem)
        }
        Err(e) => (
            Vec::new(),
            Some(format!("needs imports Tern does not provide: {e:#}")),
        ),
    };
    Ok(Inspection {
        imports,
        exports,
        hooks,
        declared: declared.names(),
        problem,
        size,
        compile_time,
    })
}

fn describe(name: &str, item: &ComponentItem) -> String {
    let kind = match item {
        ComponentItem::ComponentInstance(_) => "instance",
        ComponentItem::ComponentFunc(_) => "func",
        ComponentItem::CoreFunc(_) => "core func",
        ComponentItem::Module(_) => "module",
        ComponentItem::Component(_) => "component",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    };
    format!("{name} ({kind})")
}
