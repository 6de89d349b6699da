//! The delivering side: `mx.rs` turns a destination into an ordered list of
//! next hops (MX by preference, implicit MX, null MX, smarthost), `client.rs`
//! speaks SMTP to one hop and reports a result per recipient (the body
//! dot-stuffed by `dot_stuffing.rs`), `tls.rs` holds
//! the opportunistic TLS policy, `wire.rs` reads replies and writes lines.
//! It never touches the store: the queue hands it an envelope and a reader.

pub mod client;
pub mod dot_stuffing;
pub mod mx;
pub mod pool;
pub mod timeouts;
pub mod tls;
pub(crate) mod wire;
