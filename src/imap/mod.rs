//! The IMAP server (RFC 3501 IMAP4rev1, and RFC 9051 IMAP4rev2 for
//! sessions that ENABLE it, with IDLE, UIDPLUS, MOVE, ENABLE, NAMESPACE,
//! SPECIAL-USE, LITERAL+, ID, UNSELECT, CHILDREN, CONDSTORE, QRESYNC,
//! ESEARCH, SEARCHRES, BINARY, LIST-EXTENDED, LIST-STATUS, STATUS=SIZE,
//! SORT, SORT=DISPLAY, ESORT, THREAD, MULTIAPPEND, CATENATE, QUOTA,
//! COMPRESS=DEFLATE (in `net::Connection`), SASL-IR and STARTTLS) over the built-in mailbox store. Commands are framed by
//! `wire.rs`, turned into commands by `intake.rs` (imap-codec, after the
//! rewrites of `rewrite.rs` and `append_syntax.rs`) and dispatched by
//! `session.rs`; the command groups live in `auth.rs`, `mailboxes.rs`,
//! `catenate.rs`, `list.rs`, `fetch.rs`, `messages.rs`, `qresync.rs`, `search.rs`,
//! `sort.rs`, `thread.rs` (on `subject.rs`'s facts), `quota.rs` and `idle.rs`;
//! `names.rs` converts folder names (UTF-8 in the store, modified UTF-7
//! for IMAP4rev1); `view.rs` is the selected folder as one session sees
//! it, and `render.rs`, `sections.rs` and `binary.rs` compute FETCH data
//! with mail-parser. It never writes to the store except through
//! `Store`'s methods, so POP3, SMTP delivery and other sessions see every
//! change.

mod append_syntax;
mod auth;
mod binary;
mod catenate;
mod fetch;
mod idle;
mod intake;
mod list;
mod mailboxes;
mod messages;
pub(crate) mod names;
mod qresync;
mod quota;
mod render;
mod rewrite;
mod search;
mod sections;
mod session;
mod sort;
mod structures;
mod subject;
mod thread;
mod updates;
mod view;
mod wire;

pub use names::convert_stored_names;
pub use session::run;
pub use structures::Structures;
