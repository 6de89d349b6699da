//! The `tern` binary's own modules: the argument grammar (`args.rs`), the
//! subcommands' work (`commands.rs`) and the server's log format
//! (`logging.rs`).

pub mod args;
pub mod commands;
pub mod logging;
