//! The `tern` binary's own modules: the argument grammar (`args.rs`) and
//! the subcommands' work (`commands.rs`).

pub mod args;
pub mod commands;
