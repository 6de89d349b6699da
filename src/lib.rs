//! Tern: a mail transfer agent. The library holds every part of the mail
//! path; `main.rs` is only the command line on top of it. ARCHITECTURE.md
//! walks the path through these modules.

pub mod address;
pub mod admin;
pub mod auth;
#[cfg(test)]
mod boundaries;
pub mod checks;
pub mod clock;
pub mod config;
pub mod context;
pub mod control;
pub mod dmarc;
pub mod dns;
pub mod doctor;
pub mod fuzzing;
pub mod hooks;
pub mod imap;
pub mod init;
pub mod limits;
pub mod mail;
pub mod mailauth;
pub mod mailbox_io;
pub mod managesieve;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod pop3;
pub mod queue;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod smtp;
pub mod store;
pub mod submit;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod tls;
pub mod trace;
pub mod web;
