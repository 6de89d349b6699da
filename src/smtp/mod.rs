//! The inbound SMTP server (RFC 5321), also serving LMTP (RFC 2033): the
//! session state machine, the command parser, the body decoders, and one
//! file per phase of the dialogue. The replies, parameters and routing
//! targets it speaks are the shared vocabulary in `crate::mail`; the end of
//! a message is the shared submission path, `crate::submit`.

mod auth;
pub mod body;
pub mod command;
mod data;
mod ehlo;
mod envelope;
mod events;
pub mod mime;
mod quota;
pub mod session;
mod space;
