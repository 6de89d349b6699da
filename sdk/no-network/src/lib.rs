//! wasi:sockets that refuse everything. Creating a TCP or UDP socket and
//! looking up a name fail with `access-denied`, so no socket or lookup
//! stream ever exists: their resource types are uninhabited and their
//! methods cannot be called (each is an empty `match`). The one value it
//! hands out is the `network` of `instance-network`, which grants nothing.
//! Plugged into a plugin (`wac plug PLUGIN --plug no_network.wasm`), it
//! answers the plugin's socket imports, so the result imports no
//! wasi:sockets and Tern loads it without a `connect` grant. It never
//! touches the host.

wit_bindgen::generate!({
    path: "wit",
    world: "no-network",
    generate_all,
});

/// The network `instance-network` returns: access to nothing.
pub struct NoNetwork;

/// A socket or stream, of which there are none.
pub enum Never {}

struct Refuse;

/// Every interface of wasi:sockets, refusing.
mod sockets {
    use super::{Never, NoNetwork, Refuse};
    use crate::exports::wasi::sockets::{
        instance_network, ip_name_lookup, network, tcp, tcp_create_socket, udp, udp_create_socket,
    };
    use crate::wasi::clocks::monotonic_clock::Duration;
    use crate::wasi::io::poll::Pollable;
    use crate::wasi::io::streams::{InputStream, OutputStream};
    use network::{ErrorCode, IpAddressFamily, IpSocketAddress, NetworkBorrow};

    impl network::GuestNetwork for NoNetwork {}

    impl network::Guest for Refuse {
        type Network = NoNetwork;
    }

    impl instance_network::Guest for Refuse {
        fn instance_network() -> network::Network {
            network::Network::new(NoNetwork)
        }
    }

    impl ip_name_lookup::Guest for Refuse {
        type ResolveAddressStream = Never;
        fn resolve_addresses(
            _: NetworkBorrow<'_>,
            _: String,
        ) -> Result<ip_name_lookup::ResolveAddressStream, ErrorCode> {
            Err(ErrorCode::AccessDenied)
        }
    }

    impl ip_name_lookup::GuestResolveAddressStream for Never {
        fn resolve_next_address(&self) -> Result<Option<network::IpAddress>, ErrorCode> {
            match *self {}
        }
        fn subscribe(&self) -> Pollable {
            match *self {}
        }
    }

    impl tcp_create_socket::Guest for Refuse {
        fn create_tcp_socket(_: IpAddressFamily) -> Result<tcp::TcpSocket, ErrorCode> {
            Err(ErrorCode::AccessDenied)
        }
    }

    impl tcp::Guest for Refuse {
        type TcpSocket = Never;
    }

    impl tcp::GuestTcpSocket for Never {
        fn start_bind(&self, _: NetworkBorrow<'_>, _: IpSocketAddress) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn finish_bind(&self) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn start_connect(&self, _: NetworkBorrow<'_>, _: IpSocketAddress) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn finish_connect(&self) -> Result<(InputStream, OutputStream), ErrorCode> {
            match *self {}
        }
        fn start_listen(&self) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn finish_listen(&self) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn accept(&self) -> Result<(tcp::TcpSocket, InputStream, OutputStream), ErrorCode> {
            match *self {}
        }
        fn local_address(&self) -> Result<IpSocketAddress, ErrorCode> {
            match *self {}
        }
        fn remote_address(&self) -> Result<IpSocketAddress, ErrorCode> {
            match *self {}
        }
        fn is_listening(&self) -> bool {
            match *self {}
        }
        fn address_family(&self) -> IpAddressFamily {
            match *self {}
        }
        fn set_listen_backlog_size(&self, _: u64) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn keep_alive_enabled(&self) -> Result<bool, ErrorCode> {
            match *self {}
        }
        fn set_keep_alive_enabled(&self, _: bool) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn keep_alive_idle_time(&self) -> Result<Duration, ErrorCode> {
            match *self {}
        }
        fn set_keep_alive_idle_time(&self, _: Duration) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn keep_alive_interval(&self) -> Result<Duration, ErrorCode> {
            match *self {}
        }
        fn set_keep_alive_interval(&self, _: Duration) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn keep_alive_count(&self) -> Result<u32, ErrorCode> {
            match *self {}
        }
        fn set_keep_alive_count(&self, _: u32) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn hop_limit(&self) -> Result<u8, ErrorCode> {
            match *self {}
        }
        fn set_hop_limit(&self, _: u8) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn receive_buffer_size(&self) -> Result<u64, ErrorCode> {
            match *self {}
        }
        fn set_receive_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn send_buffer_size(&self) -> Result<u64, ErrorCode> {
            match *self {}
        }
        fn set_send_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn subscribe(&self) -> Pollable {
            match *self {}
        }
        fn shutdown(&self, _: tcp::ShutdownType) -> Result<(), ErrorCode> {
            match *self {}
        }
    }

    impl udp_create_socket::Guest for Refuse {
        fn create_udp_socket(_: IpAddressFamily) -> Result<udp::UdpSocket, ErrorCode> {
            Err(ErrorCode::AccessDenied)
        }
    }

    impl udp::Guest for Refuse {
        type UdpSocket = Never;
        type IncomingDatagramStream = Never;
        type OutgoingDatagramStream = Never;
    }

    impl udp::GuestUdpSocket for Never {
        fn start_bind(&self, _: NetworkBorrow<'_>, _: IpSocketAddress) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn finish_bind(&self) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn stream(
            &self,
            _: Option<IpSocketAddress>,
        ) -> Result<(udp::IncomingDatagramStream, udp::OutgoingDatagramStream), ErrorCode> {
            match *self {}
        }
        fn local_address(&self) -> Result<IpSocketAddress, ErrorCode> {
            match *self {}
        }
        fn remote_address(&self) -> Result<IpSocketAddress, ErrorCode> {
            match *self {}
        }
        fn address_family(&self) -> IpAddressFamily {
            match *self {}
        }
        fn unicast_hop_limit(&self) -> Result<u8, ErrorCode> {
            match *self {}
        }
        fn set_unicast_hop_limit(&self, _: u8) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn receive_buffer_size(&self) -> Result<u64, ErrorCode> {
            match *self {}
        }
        fn set_receive_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn send_buffer_size(&self) -> Result<u64, ErrorCode> {
            match *self {}
        }
        fn set_send_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
            match *self {}
        }
        fn subscribe(&self) -> Pollable {
            match *self {}
        }
    }

    impl udp::GuestIncomingDatagramStream for Never {
        fn receive(&self, _: u64) -> Result<Vec<udp::IncomingDatagram>, ErrorCode> {
            match *self {}
        }
        fn subscribe(&self) -> Pollable {
            match *self {}
        }
    }

    impl udp::GuestOutgoingDatagramStream for Never {
        fn check_send(&self) -> Result<u64, ErrorCode> {
            match *self {}
        }
        fn send(&self, _: Vec<udp::OutgoingDatagram>) -> Result<u64, ErrorCode> {
            match *self {}
        }
        fn subscribe(&self) -> Pollable {
            match *self {}
        }
    }
}

export!(Refuse);
