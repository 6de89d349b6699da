//! The running server: opens the store, builds the shared context
//! (`context.rs`), binds every listener, accepts connections under the
//! connection limit, hands each to its protocol's session (with the state
//! only that protocol keeps, such as POP3's maildrop locks), and on shutdown
//! stops accepting and waits for the sessions in flight. Only `main.rs`
//! imports it; no protocol does.

use crate::config::{Config, Listen, Protocol};
use crate::context::ServerContext;
use crate::metrics;
use crate::net::{Connection, proxy};
use crate::pop3::MaildropLocks;
use crate::service::notify;
use crate::service::privileges::Privileges;
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use crate::store::Store;
use crate::store::backend::{Backend, EngineSettings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address} ({protocol}): {source}")]
    Bind {
        protocol: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plugin(#[from] crate::hooks::PluginError),
    #[error("cannot install the signal handlers")]
    Signals,
    #[error(transparent)]
    Privileges(#[from] crate::service::privileges::PrivilegeError),
}

/// File in `data_dir` listing the addresses actually bound, one
/// `protocol address` per line (tests bind port 0 and read it).
pub const LISTENERS_FILE: &str = "listeners";

/// Connections the kernel holds for a listener before Tern accepts them
/// (capped by `net.core.somaxconn`, 4096 on current Linux). The standard
/// library's 128 is too few for a burst: two hundred clients connecting at
/// once overflowed it whenever the accept loop fell a moment behind, and each
/// dropped SYN left its client waiting 1, 3, 7 seconds to try again.
const LISTEN_BACKLOG: u32 = 4096;

/// How long a draining server waits for sessions in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Every TCP listener of the config, bound: the protocols' and the
/// metrics endpoint's, with the `protocol address` lines of the
/// listeners file. Bound before privileges are dropped.
pub struct Bound {
    listeners: Vec<(Listen, TcpListener)>,
    metrics: Option<TcpListener>,
    lines: Vec<String>,
}

/// Binds every listener of `config`.
pub async fn bind(config: &Config) -> Result<Bound, ServerError> {
    let mut lines = Vec::new();
    let mut listeners = Vec::new();
    for l in &config.listen {
        let bind_error = |source| ServerError::Bind {
            protocol: l.protocol.name(),
            address: l.address,
            source,
        };
        let listener = listen(l.address).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        tracing::info!(
            protocol = l.protocol.name(),
            address = %addr,
            proxy_protocol = l.proxy_protocol,
            "listening"
        );
        lines.push(format!("{} {}", l.protocol.name(), addr));
        listeners.push((l.clone(), listener));
    }
    let metrics = match config.metrics.address {
        Some(address) => {
            let bind_error = |source| ServerError::Bind {
                protocol: "metrics",
                address,
                source,
            };
            let listener = listen(address).map_err(bind_error)?;
            let addr = listener.local_addr().map_err(bind_error)?;
            tracing::info!(address = %addr, "metrics endpoint at /metrics");
            lines.push(format!("metrics {addr}"));
            Some(listener)
        }
        None => None,
    };
    Ok(Bound {
        listeners,
        metrics,
        lines,
    })
}

/// A listener on `address` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`,
/// as `TcpListener::bind` sets it).
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs on the bound listeners until `stop` fires, then drains.
pub async fn run(
    ctx: Arc<ServerContext>,
    bound: Bound,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
) -> Result<(), ServerError> {
    let limit = Arc::new(Semaphore::new(ctx.config.limits.max_connections));
    let Bound {
        listeners,
        metrics: metrics_listener,
        lines: bound,
    } = bound;
    let metrics_task = metrics_listener.map(|l| {
        tokio::spawn(crate::metrics::serve(
            ctx.store.clone(),
            ctx.config.node_id.clone(),
            l,
            shutdown.clone(),
        ))
    });
    let queue_task = tokio::spawn(crate::queue::run(ctx.clone(), shutdown.clone()));
    let dmarc_task = tokio::spawn(crate::dmarc::run(ctx.clone(), shutdown.clone()));
    let trace_task = tokio::spawn(crate::trace::sweep::run(ctx.clone(), shutdown.clone()));
    let control =
        crate::control::bind(&ctx.config.data_dir).map_err(|source| ServerError::Write {
            path: crate::control::socket_path(&ctx.config.data_dir),
            source,
        })?;
    let control_task = tokio::spawn(crate::control::serve(
        control,
        ctx.clone(),
        shutdown.clone(),
    ));
    // Written last: once it exists, every listener and the control socket answer.
    let path = ctx.config.data_dir.join(LISTENERS_FILE);
    std::fs::write(&path, bound.join("\n") + "\n")
        .map_err(|source| ServerError::Write { path, source })?;
    crate::service::notify::ready();
    let pop3_locks = MaildropLocks::new(&ctx.store);
    let mut tasks = Vec::new();
    for (listen, listener) in listeners {
        tasks.push(tokio::spawn(accept_loop(
            ctx.clone(),
            listen,
            listener,
            limit.clone(),
            pop3_locks.clone(),
            shutdown.clone(),
        )));
    }
    drop(shutdown);
    for t in tasks {
        let _ = t.await;
    }
    let _ = queue_task.await;
    let _ = dmarc_task.await;
    let _ = trace_task.await;
    let _ = control_task.await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    tracing::info!("listeners closed; waiting for sessions in flight");
    if tokio::time::timeout(DRAIN_TIMEOUT, trigger.all_stopped())
        .await
        .is_err()
    {
        tracing::warn!("sessions still open after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    ctx.store.flush().await?;
    Ok(())
}

async fn accept_loop(
    ctx: Arc<ServerContext>,
    listen: Listen,
    listener: TcpListener,
    limit: Arc<Semaphore>,
    pop3_locks: MaildropLocks,
    mut shutdown: Shutdown,
) {
    let protocol = listen.protocol;
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.recv() => return,
        };
        let (mut tcp, real_peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                tracing::warn!(protocol = protocol.name(), "accept failed: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let real_local = tcp.local_addr().unwrap_or(real_peer);
        let permit = limit.clone().try_acquire_owned();
        let ctx = ctx.clone();
        let session_shutdown = shutdown.clone();
        let pop3_locks = pop3_locks.clone();
        tokio::spawn(async move {
            // Behind a load balancer the client is the one its PROXY header
            // names: from here on, for every protocol, limit and log.
            let (peer, local) = if listen.proxy_protocol {
                let sources = &ctx.config.relay.proxy_sources;
                match proxy::admit(&mut tcp, real_peer, real_local, sources).await {
                    Ok(addresses) => addresses,
                    Err(e) => {
                        tracing::warn!(peer = %real_peer, protocol = protocol.name(), "closed: {e}");
                        metrics::counter(
                            "tern_connections_refused_total",
                            &[("reason", "proxy_protocol")],
                        );
                        return;
                    }
                }
            } else {
                (real_peer, real_local)
            };
            let mut conn = Connection::new(tcp, peer, local);
            let Ok(_permit) = permit else {
                let limit = ("max_connections", "limits.max_connections");
                return refuse(&ctx, protocol, &mut conn, limit, "too many connections").await;
            };
            let Some(_slot) = ctx.limits.client(peer.ip()) else {
                let limit = ("per_client", "limits.max_connections_per_client");
                let why = "too many connections from this address";
                return refuse(&ctx, protocol, &mut conn, limit, why).await;
            };
            metrics::counter("tern_connections_total", &[("protocol", protocol.name())]);
            let _gauge = metrics::SessionGauge::open();
            if protocol.implicit_tls()
                && let Err(e) = conn.start_tls(&ctx.tls).await
            {
                tracing::info!(client = %peer, protocol = protocol.name(), "TLS handshake failed: {e}");
                return;
            }
            match protocol {
                Protocol::Smtp | Protocol::Submission | Protocol::Submissions | Protocol::Lmtp => {
                    crate::smtp::session::run(conn, ctx, protocol, session_shutdown).await
                }
                Protocol::Pop3 | Protocol::Pop3s => {
                    crate::pop3::run(conn, ctx, pop3_locks, session_shutdown).await
                }
                Protocol::Imap | Protocol::Imaps => {
                    crate::imap::run(conn, ctx, session_shutdown).await
                }
                Protocol::Http | Protocol::Https => {
                    crate::web::serve(conn, ctx, protocol == Protocol::Https, session_shutdown)
                        .await
                }
                Protocol::Managesieve => crate::managesieve::run(conn, ctx, session_shutdown).await,
            }
        });
    }
}

/// Turns a connection away at a connection limit: logged, counted under
/// `reason`, and answered in the protocol's "too busy" form. A mail
/// client's refusal (SMTP, submission, LMTP) is traced as a refused
/// attempt, decided by the `setting` that was reached; it is written
/// after the answer, so the client is not kept waiting for the store.
async fn refuse(
    ctx: &ServerContext,
    protocol: Protocol,
    conn: &mut Connection,
    (reason, setting): (&'static str, &str),
    why: &str,
) {
    tracing::warn!(client = %conn.peer, protocol = protocol.name(), "refused: {why}");
    metrics::counter("tern_connections_refused_total", &[("reason", reason)]);
    let line = too_busy(protocol, conn).await;
    if matches!(
        protocol,
        Protocol::Smtp | Protocol::Submission | Protocol::Submissions | Protocol::Lmtp
    ) {
        let trace = crate::trace::Recorder::new(conn.peer.ip());
        let reply = String::from_utf8_lossy(line).trim_end().to_string();
        let e = crate::trace::Event::new(crate::trace::Stage::Connect, setting, "tempfail");
        trace.record(e.reply(reply).detail(why));
        if let Some(t) = trace.refused() {
            crate::trace::keep_refused(&ctx.store, t).await;
        }
    }
}

/// The reply to a client over the connection limit; returns the line sent.
async fn too_busy(protocol: Protocol, conn: &mut Connection) -> &'static [u8] {
    let line: &[u8] = match protocol {
        Protocol::Pop3 | Protocol::Pop3s => {
            b"-ERR [SYS/TEMP] too many connections, try again later\r\n"
        }
        Protocol::Imap | Protocol::Imaps => b"* BYE too many connections, try again later\r\n",
        Protocol::Managesieve => b"BYE (TRYLATER) \"too many connections, try again later\"\r\n",
        Protocol::Http | Protocol::Https => {
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
        _ => b"421 4.7.0 Too many connections, try again later\r\n",
    };
    let _ = conn.write_all(line).await;
    conn.shutdown().await;
    line
}

/// Starts the server with signal handling: SIGTERM/SIGINT drain and stop.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    serve_with_reload(config, None).await
}

/// `serve`, with SIGHUP reloading the plugins and the TLS certificates from
/// `config_path` (the file the config came from; None: the config as given).
pub async fn serve_with_reload(
    config: Config,
    config_path: Option<std::path::PathBuf>,
) -> Result<(), ServerError> {
    // Ports below 1024 need root (or CAP_NET_BIND_SERVICE): bind first,
    // then become `user`, before anything in data_dir is opened or made.
    let bound = bind(&config).await?;
    let privileges = crate::service::privileges::drop_privileges(&config)?;
    match &privileges {
        Privileges::RootByDefault => tracing::warn!(
            "running as root; set user = \"tern\" (an account of its own, owning data_dir) \
             to run unprivileged once the listeners are bound"
        ),
        Privileges::Dropped(a) => {
            tracing::info!(user = %a.user, group = %a.group, uid = a.uid, "privileges dropped")
        }
        _ => {}
    }
    if let Some(account) = privileges.account() {
        crate::service::privileges::check_data_dir(&config.data_dir, account)?;
    }
    let engine = EngineSettings::from_config(&config);
    let backend = Backend::open(&engine)
        .await
        .map_err(|e| ServerError::Store(crate::store::StoreError::from(e)))?;
    tracing::info!("store: {}", engine.describe());
    let store = Store::on(backend).await?;
    let converted = crate::imap::convert_stored_names(&store).await?;
    if converted > 0 {
        tracing::info!("{converted} folder names converted from modified UTF-7 to UTF-8");
    }
    let ctx = ServerContext::new(config, store)?;
    ctx.hooks.load_plugins(&ctx.config)?;
    ctx.hooks.set_config_source(config_path);
    let (trigger, shutdown) = shutdown::channel();
    let signals = trigger.clone();
    let signal_ctx = ctx.clone();
    // Registered here, before any listener is announced: a SIGTERM that
    // comes right after start-up must drain, not kill the process.
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return Err(ServerError::Signals);
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: draining"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: draining"); break; }
                _ = hup.recv() => {
                    notify::reloading();
                    signal_ctx.reload_plugins().await;
                    signal_ctx.reload_certificates().await;
                    notify::ready();
                }
            }
        }
        notify::stopping();
        signals.trigger();
    });
    run(ctx, bound, trigger, shutdown).await
}
