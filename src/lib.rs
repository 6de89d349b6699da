//! Tern: a mail transfer agent. The library holds every part of the mail path;
//! `main.rs` is only the command line on top of it.

pub mod smtp;
