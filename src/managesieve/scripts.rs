//! The script commands of an authenticated ManageSieve session: HAVESPACE,
//! PUTSCRIPT, CHECKSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT, DELETESCRIPT
//! and RENAMESCRIPT over the store's scripts (`store/sieve.rs`), with RFC
//! 5804's response codes: QUOTA/MAXSIZE and QUOTA/MAXSCRIPTS past the
//! `[sieve]` limits, NONEXISTENT, ACTIVE, ALREADYEXISTS, TRYLATER when the
//! store fails. A compile error is the NO text, line:column first. Changes
//! are flushed before their OK.

use super::command::Command;
use super::session::Session;
use super::wire::string;
use crate::store::{SieveError, check_script};
use std::io;

/// The response code and text for a refusal.
fn refusal(e: &SieveError) -> (Option<&'static str>, String) {
    let code = match e {
        SieveError::TooBig { .. } => Some("QUOTA/MAXSIZE"),
        SieveError::TooMany { .. } => Some("QUOTA/MAXSCRIPTS"),
        SieveError::NoSuchScript(_) => Some("NONEXISTENT"),
        SieveError::Active(_) => Some("ACTIVE"),
        SieveError::Exists(_) => Some("ALREADYEXISTS"),
        SieveError::Store(_) => Some("TRYLATER"),
        SieveError::BadName(_) | SieveError::NotUtf8 | SieveError::Compile(_) => None,
    };
    let text = match e {
        SieveError::Compile(c) => {
            format!("line {}, column {}: {}", c.pos.line, c.pos.col, c.message)
        }
        SieveError::Store(_) => "The script store is unavailable, try again later".into(),
        other => other.to_string(),
    };
    (code, text)
}

impl Session {
    /// Answers one script command (the session checked the login).
    pub(super) async fn script_command(&mut self, cmd: Command) -> io::Result<()> {
        let Some(user) = self.user.clone() else {
            return Ok(());
        };
        let limits = self.ctx.config.sieve.clone();
        let store = self.ctx.store.clone();
        let scripts = store.sieve();
        let (result, done, changes): (Result<(), SieveError>, &str, bool) = match cmd {
            Command::HaveSpace(name, size) => (
                scripts.have_space(&user, &name, size, &limits).await,
                "Putscript would succeed",
                false,
            ),
            Command::PutScript(name, text) => (
                scripts.put(&user, &name, &text, &limits).await,
                "Script saved",
                true,
            ),
            Command::CheckScript(text) => (check_script(&text, &limits), "Script is valid", false),
            Command::SetActive(name) => {
                let name = (!name.is_empty()).then_some(name.as_str());
                (
                    scripts.activate(&user, name).await,
                    "Active script set",
                    true,
                )
            }
            Command::DeleteScript(name) => {
                (scripts.delete(&user, &name).await, "Script deleted", true)
            }
            Command::RenameScript(old, new) => (
                scripts.rename(&user, &old, &new).await,
                "Script renamed",
                true,
            ),
            Command::ListScripts => match scripts.list(&user).await {
                Ok(list) => {
                    let mut out = Vec::new();
                    for (name, active) in list {
                        out.extend(string(name.as_bytes()));
                        if active {
                            out.extend_from_slice(b" ACTIVE");
                        }
                        out.extend_from_slice(b"\r\n");
                    }
                    self.conn.write_buffered(&out).await?;
                    (Ok(()), "Listscripts completed", false)
                }
                Err(e) => (Err(e), "", false),
            },
            Command::GetScript(name) => match scripts.get(&user, &name).await {
                Ok(text) => {
                    // Always a literal: scripts have line ends.
                    let mut out = format!("{{{}}}\r\n", text.len()).into_bytes();
                    out.extend_from_slice(&text);
                    out.extend_from_slice(b"\r\n");
                    self.conn.write_buffered(&out).await?;
                    (Ok(()), "Getscript completed", false)
                }
                Err(e) => (Err(e), "", false),
            },
            _ => return Ok(()),
        };
        match result {
            Ok(()) => {
                if changes && let Err(e) = store.flush().await {
                    tracing::error!(user = %user, "managesieve: store flush failed: {e}");
                    return self
                        .no(
                            Some("TRYLATER"),
                            "The change may not be saved, try again later",
                        )
                        .await;
                }
                self.ok(None, done).await
            }
            Err(e) => {
                if let SieveError::Store(inner) = &e {
                    tracing::error!(user = %user, "managesieve: {inner}");
                }
                let (code, text) = refusal(&e);
                self.no(code, &text).await
            }
        }
    }
}
