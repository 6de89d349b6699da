//! The control socket (`data_dir/control.sock`), like Postfix's `postqueue`
//! talking to the queue manager: while the server runs it owns the store, so
//! `tern user …` and `tern queue …` send their request here, one JSON line,
//! and read one JSON line back (`tern backup` reads a stream of frames
//! instead: `store::backend::dump::stream`). Only the owner of `data_dir`
//! can connect.

use crate::admin::{self, AdminRequest};
use crate::context::ServerContext;
use crate::shutdown::Shutdown;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

pub const SOCKET_NAME: &str = "control.sock";

#[derive(Debug, Serialize, Deserialize)]
pub struct ControlResponse {
    pub ok: bool,
    pub output: String,
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Binds the socket (replacing a stale one), owner-only. `data_dir` is
/// made if missing: on PostgreSQL with a configured certificate nothing
/// else has made it.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    std::fs::create_dir_all(data_dir)?;
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the socket until shutdown.
pub async fn serve(listener: UnixListener, ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    let path = socket_path(&ctx.config.data_dir);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("control socket: {e}");
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(ctx, stream).await {
                tracing::warn!("control socket: {e}");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn handle(ctx: Arc<ServerContext>, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    // Room for a Sieve script at its largest (`[sieve] max_script_size`).
    BufReader::new(tokio::io::AsyncReadExt::take(read, 64 * 1024 * 1024))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<AdminRequest>(&line) {
        Ok(AdminRequest::PluginReload) => {
            let (ok, output) = ctx.reload_plugins().await;
            ControlResponse {
                ok,
                output: output + "\n",
            }
        }
        Ok(AdminRequest::TlsReload) => {
            let (ok, output) = ctx.reload_certificates().await;
            ControlResponse {
                ok,
                output: output + "\n",
            }
        }
        Ok(AdminRequest::Backup) => {
            use crate::store::backend::dump::{self, stream::StreamSink};
            let mut sink = StreamSink::new(write);
            match dump::snapshot_into(ctx.store.backend(), &mut sink).await {
                Ok(m) => tracing::info!(
                    keys = m.spaces.iter().map(|s| s.keys).sum::<u64>(),
                    "backup: snapshot sent over the control socket"
                ),
                Err(e) => {
                    tracing::warn!("backup: {e}");
                    sink.fail(&e.to_string()).await;
                }
            }
            return Ok(());
        }
        Ok(AdminRequest::ExportStream { user }) => {
            let user = admin::existing_user(&ctx.store, &ctx.config, &user)
                .await
                .unwrap_or(user);
            match crate::mailbox_io::stream_export(&ctx.store, &user, write).await {
                Ok(tally) => {
                    tracing::info!("export of {user}: {tally} sent over the control socket")
                }
                Err(e) => tracing::warn!("export of {user}: {e}"),
            }
            return Ok(());
        }
        Ok(AdminRequest::DmarcReport { dry_run }) => {
            let send = (!dry_run).then_some(&*ctx);
            match crate::dmarc::report_now(&ctx.store, &ctx.config, &ctx.mailauth, send).await {
                Ok(output) => ControlResponse { ok: true, output },
                Err(e) => ControlResponse {
                    ok: false,
                    output: e.to_string(),
                },
            }
        }
        Ok(request) => {
            let store = ctx.store.clone();
            let config = ctx.config.clone();
            let queue = ctx.queue.clone();
            // On a task of its own, so a request the client gave up on
            // still runs to its end.
            let result = tokio::spawn(async move {
                admin::execute(&store, &config, Some(&queue), request).await
            })
            .await;
            let _ = ctx.store.flush().await;
            match result {
                Ok(Ok(output)) => ControlResponse { ok: true, output },
                Ok(Err(e)) => ControlResponse {
                    ok: false,
                    output: e.to_string(),
                },
                Err(e) => ControlResponse {
                    ok: false,
                    output: format!("internal error: {e}"),
                },
            }
        }
        Err(e) => ControlResponse {
            ok: false,
            output: format!("bad request: {e}"),
        },
    };
    let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

/// Client side: sends `request` and hands back the connection, for a
/// reply that is a stream (`tern backup`). None when no server listens.
pub async fn open(
    data_dir: &Path,
    request: &AdminRequest,
) -> std::io::Result<Option<tokio::net::unix::OwnedReadHalf>> {
    let stream = match UnixStream::connect(socket_path(data_dir)).await {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    let (read, mut write) = stream.into_split();
    let mut bytes = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    // Closing our sending side is harmless: the server has its line.
    drop(write);
    Ok(Some(read))
}

/// Client side: sends a request to a running server. `Ok(None)` when no
/// server is listening (the caller then works on the store directly).
pub async fn request(
    data_dir: &Path,
    request: &AdminRequest,
) -> std::io::Result<Option<ControlResponse>> {
    let Some(read) = open(data_dir, request).await? else {
        return Ok(None);
    };
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    serde_json::from_str(&line)
        .map(Some)
        .map_err(std::io::Error::other)
}
