//! Loopback ports for the outside servers tests start (PostgreSQL,
//! Dovecot, nsd, HAProxy…), which must be told a port before they bind.
//!
//! A port the kernel hands out for `bind(0)` lies in its ephemeral range,
//! where every outgoing connection and every other `bind(0)` on the machine
//! may take it before the server binds it. Ports are therefore drawn at
//! random from below that range, which the kernel never hands out by
//! itself, and checked free for TCP and UDP before they are returned.
//! Another test may still draw the same port in the instant before its
//! server binds: `start_on_free_port` starts such a server again on
//! another port when it says its address was in use.

use std::net::{TcpListener, UdpSocket};

/// How many ports below the ephemeral range are drawn from.
const SPAN: u16 = 16_384;

/// A loopback port nothing listens on now, for TCP and UDP alike.
pub fn free_port() -> u16 {
    let Some(low) = ephemeral_low() else {
        return kernel_port();
    };
    let floor = low.saturating_sub(SPAN).max(1024);
    if floor >= low {
        return kernel_port();
    }
    for _ in 0..1000 {
        let port = rand::random_range(floor..low);
        if is_free(port) {
            return port;
        }
    }
    kernel_port()
}

/// How many ports `start_on_free_port` tries.
const TRIES: usize = 5;

/// Runs `start` on a free port, and again on another while it fails
/// saying "Address already in use" (the port was taken between the draw
/// and the server's bind), up to five ports. Panics with the failure if it
/// names another cause, or if every port was taken.
pub fn start_on_free_port<T>(mut start: impl FnMut(u16) -> Result<T, String>) -> T {
    let mut failure = String::new();
    for _ in 0..TRIES {
        match start(free_port()) {
            Ok(started) => return started,
            Err(f) if f.contains("Address already in use") => failure = f,
            Err(f) => panic!("{f}"),
        }
    }
    panic!("no free port in {TRIES} tries; the last failure:\n{failure}")
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

/// The first port of the kernel's ephemeral range (Linux only).
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// The kernel's choice for port 0, free for UDP too.
fn kernel_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = tcp.local_addr().expect("a bound socket's address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_and_bindable() {
        let port = free_port();
        if let Some(low) = ephemeral_low() {
            assert!(port < low, "{port} is in the ephemeral range from {low}");
        }
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free for TCP");
        UdpSocket::bind(("127.0.0.1", port)).expect("the port is free for UDP");
    }

    #[test]
    fn a_taken_port_is_given_up_for_another() {
        let mut ports = Vec::new();
        let started = start_on_free_port(|port| {
            ports.push(port);
            match ports.len() {
                1 | 2 => Err(format!("could not bind {port}: Address already in use")),
                _ => Ok(port),
            }
        });
        assert_eq!(ports.len(), 3);
        assert_eq!(started, ports[2]);
    }

    #[test]
    #[should_panic(expected = "no free port in 5 tries")]
    fn every_port_taken_fails() {
        start_on_free_port(|_| Err::<(), _>("Address already in use".into()));
    }

    #[test]
    #[should_panic(expected = "the data folder is damaged")]
    fn another_failure_is_not_tried_again() {
        let mut tries = 0;
        start_on_free_port(|_| {
            tries += 1;
            assert_eq!(tries, 1, "tried again after a failure of another cause");
            Err::<(), _>("the data folder is damaged".into())
        });
    }

    #[test]
    fn a_port_in_use_for_either_protocol_is_not_free() {
        let tcp = TcpListener::bind(("127.0.0.1", free_port())).expect("bind TCP");
        assert!(!is_free(tcp.local_addr().expect("addr").port()));
        let udp = UdpSocket::bind(("127.0.0.1", free_port())).expect("bind UDP");
        assert!(!is_free(udp.local_addr().expect("addr").port()));
    }
}
