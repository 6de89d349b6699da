//! The ManageSieve server (RFC 5804) on its own listener: users put, list,
//! check, activate, fetch, rename and delete their Sieve scripts.
//! `wire.rs` frames commands (atoms, quoted strings, `{N+}`/`{N}` literals,
//! with line and literal limits) and renders strings; `command.rs` turns a
//! frame into a `Command`; `session.rs` runs the connection (greeting with
//! capabilities, STARTTLS, AUTHENTICATE PLAIN, states, timeouts);
//! `scripts.rs` answers the script commands from the store
//! (`store/sieve.rs`), with RFC 5804's response codes.

pub(crate) mod command;
mod scripts;
mod session;
pub(crate) mod wire;

pub use session::run;
