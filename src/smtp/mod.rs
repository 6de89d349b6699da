//! The inbound SMTP server (RFC 5321), also serving LMTP (RFC 2033): the
//! session state machine, the command parser, replies, and one file per
//! phase of the dialogue.

mod auth;
pub mod body;
pub mod command;
mod data;
mod ehlo;
mod envelope;
pub mod mime;
pub mod reply;
pub mod session;
mod space;
