//! The IMAP server (RFC 3501 IMAP4rev1, with IDLE, UIDPLUS, MOVE, ENABLE,
//! NAMESPACE, SPECIAL-USE, LITERAL+, ID, UNSELECT, CHILDREN, CONDSTORE,
//! ESEARCH, SASL-IR and STARTTLS) over the built-in mailbox store. Commands are
//! framed and decoded by imap-codec (`wire.rs`, `session.rs`); the command
//! groups live in `auth.rs`, `mailboxes.rs`, `messages.rs`, `search.rs` and
//! `idle.rs`; `view.rs` is the selected folder as one session sees it, and
//! `render.rs` computes ENVELOPE, BODYSTRUCTURE and body sections with
//! mail-parser. It never writes to the store except through `Store`'s
//! methods, so POP3, SMTP delivery and other sessions see every change.

mod auth;
mod binary;
mod idle;
mod intake;
mod list;
mod mailboxes;
mod messages;
mod names;
mod render;
mod rewrite;
mod search;
mod sections;
mod session;
mod view;
mod wire;

pub use names::convert_stored_names;
pub use session::run;
