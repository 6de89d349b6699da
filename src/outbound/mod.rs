//! The delivering side: `mx.rs` turns a destination into an ordered list of
//! next hops (MX by preference, implicit MX, null MX, smarthost),
//! `policy.rs` says what each hop must offer of TLS (the smarthost's
//! settings, MTA-STS from `mta_sts/`, else opportunistic), `handshake.rs`
//! opens a session accordingly (`tls.rs`: the handshake and the certificate
//! check), `client.rs` runs transactions and reports a result per
//! recipient (the body dot-stuffed by `dot_stuffing.rs`), `wire.rs` reads
//! replies and writes lines; `tls_rpt/` tallies TLS results and sends
//! RFC 8460 reports, `https.rs` makes the HTTPS requests both need. It
//! never touches the queue's records: the queue hands it an envelope and a
//! reader (the store keeps MTA-STS policies and TLS-RPT tallies).

pub mod client;
pub mod dot_stuffing;
pub mod handshake;
pub mod https;
pub mod mta_sts;
pub mod mx;
pub mod policy;
pub mod pool;
pub mod timeouts;
pub mod tls;
pub mod tls_rpt;
pub(crate) mod wire;
