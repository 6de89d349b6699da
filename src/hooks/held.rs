//! The bound on the connections a plugin holds: at most its
//! `max_connections` (default `DEFAULT_MAX_HELD`) at once per plugin (its
//! `[[plugin]]` entry), across all its instances,
//! TCP sockets and HTTP requests together. The count is a semaphore every
//! instance of the plugin shares (`PluginShared::connections`).
//!
//! A TCP socket takes a permit when the guest creates it
//! (`wasi:sockets/tcp-create-socket`; a socket is where a connection
//! lives, and one not yet connected already holds a descriptor) and gives
//! it back when the guest drops it: this module puts its own
//! `create-tcp-socket` and `tcp-socket` destructor in the linker over
//! wasmtime-wasi's, each calling wasmtime-wasi's and then counting. The
//! socket's streams are its children in the resource table, so the
//! socket cannot be dropped before them: its drop is the connection's
//! end. Past the bound, creating a socket fails with `new-socket-limit`.
//! The permits of an instance's sockets live in its store's data
//! (`HeldSockets`), so an instance thrown away (a trap, a timeout, its
//! sessions served) gives back all it held. An HTTP request holds a
//! permit from the moment the guest hands it over until its connection
//! ends (`http.rs`).

use super::host::PluginState;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::TcpSocket;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{tcp, tcp_create_socket};
use wasmtime_wasi::sockets::WasiSocketsView;

/// Most connections (TCP sockets and HTTP requests) one plugin holds at
/// once, all its instances together, unless its `max_connections` says.
pub const DEFAULT_MAX_HELD: usize = 64;

/// The largest `max_connections` a plugin entry may set.
pub const MAX_HELD_LIMIT: usize = 4096;

/// The names wasmtime-wasi gives the interfaces whose definitions are
/// replaced here (the version of its WIT; guests importing any 0.2.x
/// are linked to them).
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const TCP_CREATE_SOCKET: &str = "wasi:sockets/tcp-create-socket@0.2.12";

/// A new plugin's count of connections held, `max` at most.
pub fn budget(max: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(max))
}

/// The permits of one instance's live sockets, by resource rep.
#[derive(Default)]
pub struct HeldSockets(HashMap<u32, OwnedSemaphorePermit>);

/// Replaces `create-tcp-socket` and the `tcp-socket` destructor of
/// wasmtime-wasi (already in `linker`) with the counting ones.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    // Only replacements: were wasmtime-wasi to name these differently (a
    // new WIT version), the count would never see a socket; refuse then.
    linker.allow_shadowing(false);
    let taken = linker
        .instance(TCP_CREATE_SOCKET)?
        .func_wrap("create-tcp-socket", |_, (): ()| Ok(()))
        .is_err()
        && linker
            .instance(TCP)?
            .resource("tcp-socket", ResourceType::host::<()>(), |_, _| Ok(()))
            .is_err();
    if !taken {
        wasmtime::bail!(
            "wasmtime-wasi does not define {TCP_CREATE_SOCKET} and {TCP}: hooks/held.rs must follow its WIT version"
        );
    }
    linker.allow_shadowing(true);
    linker.instance(TCP_CREATE_SOCKET)?.func_wrap(
        "create-tcp-socket",
        |mut store: StoreContextMut<'_, PluginState>, (family,): (IpAddressFamily,)| {
            Ok((create(store.data_mut(), family)?,))
        },
    )?;
    linker.instance(TCP)?.resource(
        "tcp-socket",
        ResourceType::host::<TcpSocket>(),
        |mut store: StoreContextMut<'_, PluginState>, rep| {
            let state = store.data_mut();
            tcp::HostTcpSocket::drop(&mut state.sockets(), Resource::new_own(rep))?;
            state.held_sockets.0.remove(&rep);
            Ok(())
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A socket, if the plugin holds fewer than its `max_connections` (and
/// wasmtime-wasi creates it: TCP is allowed only with a `connect` grant).
fn create(
    state: &mut PluginState,
    family: IpAddressFamily,
) -> wasmtime::Result<Result<Resource<TcpSocket>, ErrorCode>> {
    let Ok(permit) = state.shared.connections.clone().try_acquire_owned() else {
        tracing::warn!(
            plugin = %state.shared.name,
            "socket refused: the plugin holds its max_connections already"
        );
        return Ok(Err(ErrorCode::NewSocketLimit));
    };
    match tcp_create_socket::Host::create_tcp_socket(&mut state.sockets(), family) {
        Ok(socket) => {
            state.held_sockets.0.insert(socket.rep(), permit);
            Ok(Ok(socket))
        }
        Err(e) => Ok(Err(e.downcast()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_wasmtime_wasi_defines_is_replaced() {
        let engine = wasmtime::Engine::default();
        let e = add_to_linker(&mut Linker::new(&engine)).unwrap_err();
        assert!(e.to_string().contains(TCP_CREATE_SOCKET), "{e}");
        assert!(super::super::engine::linker(&engine).is_ok());
    }
}
