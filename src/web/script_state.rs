//! The user's active Sieve script as the Filters, Vacation and script pages
//! see it: read from the same per-user storage ManageSieve and `tern sieve`
//! use (`Store::sieve()`), with a version token the forms carry back, so a
//! save made from a page shown before a change elsewhere (another window,
//! a Sieve client) is refused instead of undoing that change. Saving
//! compiles the script (the store's `check_script`, as PUTSCRIPT does),
//! stores it and makes it the active one.

use super::WebError;
use super::rules::{self, Read, WebScript};
use crate::config::SieveConfig;
use crate::store::{SieveError, Store, StoreError};
use sha2::{Digest, Sha256};

/// The name the pages save under when the user has no script of theirs.
pub const SCRIPT_NAME: &str = "webmail";

/// The active script, or its absence.
pub struct Current {
    /// The active script's name and text.
    pub active: Option<(String, Vec<u8>)>,
    /// What the pages make of it.
    pub read: Read,
    /// Names the state the page was shown in (see `check_base`).
    pub base: String,
}

impl Current {
    /// The rules and vacation the pages start from: none for a foreign
    /// script (which is not parsed, only replaced when the user agrees).
    pub fn web(&self) -> WebScript {
        match &self.read {
            Read::Ours(w) => w.clone(),
            Read::None | Read::Foreign => WebScript::default(),
        }
    }

    /// The active script's name, if it is not the pages' own.
    pub fn foreign_name(&self) -> Option<&str> {
        match (&self.read, &self.active) {
            (Read::Foreign, Some((name, _))) => Some(name),
            _ => None,
        }
    }

    /// The name a save writes: the active script's own if the pages wrote
    /// it, else [`SCRIPT_NAME`].
    pub fn target(&self) -> String {
        match (&self.read, &self.active) {
            (Read::Ours(_), Some((name, _))) => name.clone(),
            _ => SCRIPT_NAME.to_string(),
        }
    }
}

fn version(active: &Option<(String, Vec<u8>)>) -> String {
    let mut h = Sha256::new();
    match active {
        Some((name, text)) => {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(text);
        }
        None => h.update(b"none"),
    }
    h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the user's active script.
pub async fn current(store: &Store, user: &str) -> Result<Current, Refused> {
    let active = store.sieve().active(user).await.map_err(refusal)?;
    let read = match &active {
        None => Read::None,
        Some((_, text)) => rules::read(text),
    };
    let base = version(&active);
    Ok(Current { active, read, base })
}

/// A refusal in words for the page, or a failure of the store.
pub enum Refused {
    User(String),
    Store(StoreError),
}

impl From<Refused> for WebError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::User(e) => WebError::BadRequest(e),
            Refused::Store(e) => WebError::Store(e),
        }
    }
}

fn refusal(e: SieveError) -> Refused {
    match e {
        SieveError::Store(e) => Refused::Store(e),
        SieveError::Compile(c) => Refused::User(format!(
            "line {}, column {}: {}",
            c.pos.line, c.pos.col, c.message
        )),
        other => Refused::User(other.to_string()),
    }
}

/// Refuses a form shown before the script last changed.
pub fn check_base(cur: &Current, base: &str) -> Result<(), Refused> {
    if cur.base == base {
        Ok(())
    } else {
        Err(Refused::User(
            "your filters changed since this page was shown (in another window or a Sieve \
             client); here they are as they are now: try again"
                .into(),
        ))
    }
}

/// Refuses to replace a script the pages did not write unless the user
/// ticked "replace".
pub fn check_replace(cur: &Current, replace: bool) -> Result<(), Refused> {
    match cur.foreign_name() {
        Some(name) if !replace => Err(Refused::User(format!(
            "your active script {name:?} was not written by web mail; tick \"Replace it\" to \
             replace it with the one written here"
        ))),
        _ => Ok(()),
    }
}

/// Compiles `text`, stores it as `name` and makes it the active script.
pub async fn save_text(
    store: &Store,
    limits: &SieveConfig,
    user: &str,
    name: &str,
    text: &[u8],
) -> Result<(), Refused> {
    let scripts = store.sieve();
    scripts
        .put(user, name, text, limits)
        .await
        .map_err(refusal)?;
    scripts.activate(user, Some(name)).await.map_err(refusal)?;
    store.flush().await.map_err(Refused::Store)
}

/// What a form sent beside its change: the version of the script it was
/// shown on and whether "Replace it" was ticked.
pub struct Guard<'a> {
    pub base: &'a str,
    pub replace: bool,
}

/// Changes the rules and vacation with `change` and writes them out as the
/// user's active script, after checking the form was shown on the current
/// script and, for a foreign one, that the user agreed to replace it.
/// Returns `change`'s note for the page.
pub async fn update(
    store: &Store,
    limits: &SieveConfig,
    user: &str,
    guard: Guard<'_>,
    change: impl FnOnce(&mut WebScript) -> Result<String, Refused>,
) -> Result<String, Refused> {
    let cur = current(store, user).await?;
    check_base(&cur, guard.base)?;
    check_replace(&cur, guard.replace)?;
    let mut web = cur.web();
    let note = change(&mut web)?;
    let text = web.to_sieve();
    save_text(store, limits, user, &cur.target(), text.as_bytes()).await?;
    Ok(note)
}
