//! systemd's service notifications (sd_notify(3)): one datagram of
//! `KEY=VALUE` lines to the unix socket named by `$NOTIFY_SOCKET` (a path,
//! or an abstract name written with a leading `@`). `Type=notify` units
//! count the service as started at `READY=1`, sent once every listener is
//! bound; `STOPPING=1` announces a drain, `RELOADING=1` … `READY=1`
//! brackets a SIGHUP reload. Without `$NOTIFY_SOCKET` nothing is sent.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (newline-separated assignments); Ok(false) when not run
/// under a service manager that listens.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET) else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    let socket = UnixDatagram::unbound()?;
    match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        None if target.starts_with('/') => {
            socket.send_to(state.as_bytes(), &target)?;
        }
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{NOTIFY_SOCKET}={target}: neither a path nor an @abstract name"),
            ));
        }
    }
    Ok(true)
}

/// `notify`, with a failure logged rather than returned: a lost
/// notification must not stop the mail server.
pub fn send(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!("cannot notify the service manager ({state:?}): {e}");
    }
}

/// Every listener is bound and the control socket answers.
pub fn ready() {
    send(&format!(
        "READY=1\nSTATUS=serving\nMAINPID={}",
        std::process::id()
    ));
}

/// A drain has begun.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=draining");
}

/// A reload begins (the time tells systemd which reload this is).
pub fn reloading() {
    send(&format!(
        "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={}",
        monotonic_usec()
    ));
}

/// CLOCK_MONOTONIC in microseconds, as systemd reads it.
fn monotonic_usec() -> u64 {
    let mut ts: libc::timespec = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        // SAFETY: this test module is the only one touching NOTIFY_SOCKET.
        unsafe { std::env::set_var(NOTIFY_SOCKET, &path) };
        assert!(notify("READY=1").unwrap());
        unsafe { std::env::remove_var(NOTIFY_SOCKET) };
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(!notify("READY=1").unwrap());
    }
}
