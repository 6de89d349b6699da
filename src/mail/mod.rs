//! The mail vocabulary every side of Tern speaks, whatever the protocol:
//! replies with enhanced status codes (`reply.rs`), the MAIL/RCPT
//! parameters of a transaction (`params.rs`), where a recipient routes to
//! (`target.rs`), the trace fields on top of an accepted message
//! (`received.rs`), RFC 3461 xtext (`xtext.rs`), SRS addresses (`srs.rs`) and the line handling shared
//! by the inbound and outbound body codecs (`lines.rs`). Protocol-neutral
//! and pure: it imports no server, session, store or hook, so the SMTP
//! server, LMTP, the hooks, the checks, outbound, the queue and web mail can
//! all use it without importing one another.

pub mod lines;
pub mod params;
pub mod received;
pub mod reply;
pub mod srs;
pub mod target;
pub mod xtext;

pub use params::{Body, MailParams, Notify, RcptParams, Ret};
pub use reply::Reply;
pub use target::{Target, VerifiedTls};
