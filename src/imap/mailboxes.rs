//! Commands on folders: SELECT/EXAMINE, CREATE, DELETE, RENAME,
//! SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB (with CHILDREN and SPECIAL-USE
//! attributes), STATUS and APPEND (durable before its tagged OK, with
//! UIDPLUS's APPENDUID). Folder names are checked here: a user has one
//! personal namespace, "/" separates levels, and names that try to leave
//! it (`..`, other namespaces, wildcards, control characters) are refused.

use super::session::{Outcome, Session};
use super::view::View;
use super::wire;
use crate::store::{FolderInfo, SEPARATOR, StoreError};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;
use std::io;

/// A folder name from the client, checked and in canonical form.
pub fn folder_name(mailbox: &Mailbox<'_>) -> Result<String, String> {
    let raw = match mailbox {
        Mailbox::Inbox => return Ok("INBOX".to_string()),
        Mailbox::Other(o) => o.as_ref(),
    };
    let name = std::str::from_utf8(raw)
        .map_err(|_| "folder names must be UTF-8 (or modified UTF-7)".to_string())?;
    check_name(name)
}

fn check_name(name: &str) -> Result<String, String> {
    crate::store::check_folder_name(name)
}

/// IMAP LIST pattern matching: `*` matches anything, `%` anything but the separator.
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| matches(rest, &name[i..])),
        Some((b'%', rest)) => {
            let stop = name
                .iter()
                .position(|&b| b == SEPARATOR as u8)
                .unwrap_or(name.len());
            (0..=stop).any(|i| matches(rest, &name[i..]))
        }
        Some((&p, rest)) => name.first().is_some_and(|&n| n == p) && matches(rest, &name[1..]),
    }
}

fn flag_strings(flags: &[Flag<'_>]) -> Vec<String> {
    let mut out: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    out.sort();
    out.dedup();
    out
}

impl Session {
    pub async fn select(
        &mut self,
        mailbox: Mailbox<'static>,
        condstore: bool,
        read_only: bool,
    ) -> io::Result<Outcome> {
        self.view = None;
        let name = match folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if condstore {
            self.condstore = true;
        }
        let user = self.account();
        let info = match self.ctx.store.folder(&user, &name) {
            Ok(Some(i)) => i,
            Ok(None) => return Ok(Outcome::No("[NONEXISTENT] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        };
        let view = match View::open(&self.ctx.store, &user, &name, read_only) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(Outcome::No("[NONEXISTENT] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        };
        // Changes that happened before this point are in the view already.
        while self.events.try_recv().is_ok() {}
        let mut out = Vec::new();
        view.flag_lines(&mut out);
        out.extend_from_slice(
            format!(
                "* {} EXISTS\r\n* {} RECENT\r\n",
                view.messages.len(),
                view.recent_count()
            )
            .as_bytes(),
        );
        if let Some(p) = view
            .messages
            .iter()
            .position(|m| !m.flags.iter().any(|f| f == "\\Seen"))
        {
            out.extend_from_slice(format!("* OK [UNSEEN {}] first unseen\r\n", p + 1).as_bytes());
        }
        out.extend_from_slice(
            format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", info.uidvalidity).as_bytes(),
        );
        out.extend_from_slice(
            format!("* OK [UIDNEXT {}] predicted next UID\r\n", info.next_uid).as_bytes(),
        );
        out.extend_from_slice(
            format!("* OK [HIGHESTMODSEQ {}] highest\r\n", info.highest_modseq).as_bytes(),
        );
        self.conn.write_buffered(&out).await?;
        self.view = Some(view);
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        Ok(Outcome::Ok(format!(
            "[{mode}] {} completed",
            if read_only { "EXAMINE" } else { "SELECT" }
        )))
    }

    pub fn store_failure(&self, e: StoreError) -> Outcome {
        match e {
            StoreError::NoSuchFolder(_) => Outcome::No("[NONEXISTENT] no such folder".into()),
            StoreError::FolderExists(_) => {
                Outcome::No("[ALREADYEXISTS] folder already exists".into())
            }
            other => {
                tracing::error!(user = ?self.user, "imap store error: {other}");
                Outcome::No("[SERVERBUG] the mail store failed, try again later".into())
            }
        }
    }

    pub fn create(&mut self, mailbox: Mailbox<'static>) -> io::Result<Outcome> {
        // A trailing separator only says the client means to create folders
        // below it (RFC 3501 6.3.3): the name is created without it.
        let name = match &mailbox {
            Mailbox::Other(o) => match std::str::from_utf8(o.as_ref()) {
                Ok(raw) => check_name(raw.strip_suffix(SEPARATOR).unwrap_or(raw)),
                Err(_) => Err("folder names must be UTF-8 (or modified UTF-7)".to_string()),
            },
            Mailbox::Inbox => Ok("INBOX".to_string()),
        };
        let name = match name {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if name == "INBOX" {
            return Ok(Outcome::No("[ALREADYEXISTS] INBOX always exists".into()));
        }
        match self.create_path(&name, false) {
            Ok(()) => {}
            Err(e) => return Ok(self.store_failure(e)),
        }
        Ok(Outcome::Ok("CREATE completed".into()))
    }

    /// Creates a folder and its missing superior levels (RFC 3501 6.3.3);
    /// with `parents_only`, only the levels above `name`.
    fn create_path(&self, name: &str, parents_only: bool) -> Result<(), StoreError> {
        let user = self.account();
        let mut prefix = String::new();
        for (i, part) in name.split(SEPARATOR).enumerate() {
            if i > 0 {
                prefix.push(SEPARATOR);
            }
            prefix.push_str(part);
            let last = prefix.len() == name.len();
            if last && parents_only {
                break;
            }
            match self.ctx.store.create_folder(&user, &prefix) {
                // CREATE does not subscribe (RFC 3501 6.3.3, 6.3.6).
                Ok(_) => self.ctx.store.set_subscribed(&user, &prefix, false)?,
                Err(StoreError::FolderExists(_)) if !last => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn delete(&mut self, mailbox: Mailbox<'static>) -> io::Result<Outcome> {
        let name = match folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if name == "INBOX" {
            return Ok(Outcome::No("[CANNOT] INBOX cannot be deleted".into()));
        }
        if self.view.as_ref().is_some_and(|v| v.folder == name) {
            self.view = None;
        }
        match self.ctx.store.delete_folder(&self.account(), &name) {
            Ok(()) => Ok(Outcome::Ok("DELETE completed".into())),
            Err(e) => Ok(self.store_failure(e)),
        }
    }

    pub fn rename(&mut self, from: Mailbox<'static>, to: Mailbox<'static>) -> io::Result<Outcome> {
        let (from, to) = match (folder_name(&from), folder_name(&to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if to.starts_with(&format!("{from}{SEPARATOR}")) {
            return Ok(Outcome::No(
                "[CANNOT] a folder cannot move below itself".into(),
            ));
        }
        let user = self.account();
        if let Ok(None) = self.ctx.store.folder(&user, &from) {
            return Ok(Outcome::No("[NONEXISTENT] no such folder".into()));
        }
        if let Err(e) = self.create_path(&to, true) {
            return Ok(self.store_failure(e));
        }
        match self.ctx.store.rename_folder(&user, &from, &to) {
            Ok(()) => Ok(Outcome::Ok("RENAME completed".into())),
            Err(e) => Ok(self.store_failure(e)),
        }
    }

    pub fn subscribe(&mut self, mailbox: Mailbox<'static>, on: bool) -> io::Result<Outcome> {
        let name = match folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        match self.ctx.store.set_subscribed(&self.account(), &name, on) {
            Ok(()) => Ok(Outcome::Ok(format!(
                "{} completed",
                if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" }
            ))),
            Err(e) => Ok(self.store_failure(e)),
        }
    }

    pub async fn list(
        &mut self,
        reference: Mailbox<'static>,
        pattern: ListMailbox<'static>,
        lsub: bool,
    ) -> io::Result<Outcome> {
        let verb = if lsub { "LSUB" } else { "LIST" };
        let reference = match &reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        let pattern = match &pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        if pattern.is_empty() {
            self.conn
                .write_buffered(format!("* {verb} (\\Noselect) \"/\" \"\"\r\n").as_bytes())
                .await?;
            return Ok(Outcome::Ok(format!("{verb} completed")));
        }
        let full = format!("{reference}{pattern}");
        let full = if full.len() >= 5 && full[..5].eq_ignore_ascii_case("INBOX") {
            format!("INBOX{}", &full[5..])
        } else {
            full
        };
        let folders: Vec<FolderInfo> = match self.ctx.store.folders(&self.account()) {
            Ok(f) => f,
            Err(e) => return Ok(self.store_failure(e)),
        };
        let mut out = Vec::new();
        if lsub {
            // A subscribed folder's unsubscribed superior that the pattern
            // matches (when the folder itself is not matched, as with `%`)
            // is listed \Noselect (RFC 3501 6.3.9).
            let mut parents: Vec<&str> = Vec::new();
            for f in folders.iter().filter(|f| f.subscribed) {
                if matches(full.as_bytes(), f.name.as_bytes()) {
                    continue;
                }
                for (i, _) in f.name.match_indices(SEPARATOR) {
                    let parent = &f.name[..i];
                    let subscribed = folders.iter().any(|o| o.subscribed && o.name == parent);
                    if !subscribed
                        && matches(full.as_bytes(), parent.as_bytes())
                        && !parents.contains(&parent)
                    {
                        parents.push(parent);
                    }
                }
            }
            for parent in parents {
                out.extend_from_slice(b"* LSUB (\\Noselect) \"/\" ");
                wire::mailbox(&mut out, parent);
                out.extend_from_slice(b"\r\n");
            }
        }
        for f in &folders {
            if lsub && !f.subscribed {
                continue;
            }
            if !matches(full.as_bytes(), f.name.as_bytes()) {
                continue;
            }
            let mut attrs = Vec::new();
            if !lsub {
                let below = format!("{}{SEPARATOR}", f.name);
                let children = folders.iter().any(|c| c.name.starts_with(&below));
                attrs.push(if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                if let Some(s) = &f.special_use {
                    attrs.push(s.as_str());
                }
            }
            out.extend_from_slice(format!("* {verb} ({}) \"/\" ", attrs.join(" ")).as_bytes());
            wire::mailbox(&mut out, &f.name);
            out.extend_from_slice(b"\r\n");
        }
        self.conn.write_buffered(&out).await?;
        Ok(Outcome::Ok(format!("{verb} completed")))
    }

    pub async fn status(
        &mut self,
        mailbox: Mailbox<'static>,
        items: &[StatusDataItemName],
    ) -> io::Result<Outcome> {
        let name = match folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        let user = self.account();
        let (info, messages) = match (
            self.ctx.store.folder(&user, &name),
            self.ctx.store.messages(&user, &name),
        ) {
            (Ok(Some(i)), Ok(m)) => (i, m),
            (Ok(None), _) => return Ok(Outcome::No("[NONEXISTENT] no such folder".into())),
            (Err(e), _) | (_, Err(e)) => return Ok(self.store_failure(e)),
        };
        let mut parts = Vec::new();
        for item in items {
            let has = |flag: &str| {
                messages
                    .iter()
                    .filter(|m| m.flags.iter().any(|f| f == flag))
                    .count()
            };
            parts.push(match item {
                StatusDataItemName::Messages => format!("MESSAGES {}", messages.len()),
                StatusDataItemName::Recent => format!(
                    "RECENT {}",
                    messages
                        .iter()
                        .filter(|m| m.uid >= info.first_recent)
                        .count()
                ),
                StatusDataItemName::UidNext => format!("UIDNEXT {}", info.next_uid),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", info.uidvalidity),
                StatusDataItemName::Unseen => format!("UNSEEN {}", messages.len() - has("\\Seen")),
                StatusDataItemName::Deleted => format!("DELETED {}", has("\\Deleted")),
                StatusDataItemName::HighestModSeq => {
                    format!("HIGHESTMODSEQ {}", info.highest_modseq)
                }
                StatusDataItemName::DeletedStorage => {
                    let size: u64 = messages
                        .iter()
                        .filter(|m| m.flags.iter().any(|f| f == "\\Deleted"))
                        .map(|m| m.size)
                        .sum();
                    format!("DELETED-STORAGE {size}")
                }
            });
        }
        let mut out = b"* STATUS ".to_vec();
        wire::mailbox(&mut out, &info.name);
        out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.conn.write_buffered(&out).await?;
        Ok(Outcome::Ok("STATUS completed".into()))
    }

    pub async fn append(
        &mut self,
        mailbox: Mailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) -> io::Result<Outcome> {
        let name = match folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        let bytes: &[u8] = match &message {
            LiteralOrLiteral8::Literal(l) => l.as_ref(),
            LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
        };
        if bytes.len() as u64 > self.ctx.config.limits.max_message_size.0 {
            return Ok(Outcome::No("[TOOBIG] message too big".into()));
        }
        let user = self.account();
        match self.ctx.store.folder(&user, &name) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Outcome::No("[TRYCREATE] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        }
        let internal = date.map(|d| d.as_ref().timestamp());
        let (uidvalidity, uid) =
            match self
                .ctx
                .store
                .append(&user, &name, bytes, flag_strings(&flags), internal)
            {
                Ok(r) => r,
                Err(e) => return Ok(self.store_failure(e)),
            };
        if let Err(e) = self.ctx.store.flush().await {
            return Ok(self.store_failure(e));
        }
        Ok(Outcome::Ok(format!(
            "[APPENDUID {uidvalidity} {uid}] APPEND completed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_namespace() {
        assert_eq!(check_name("inbox/Sub").unwrap(), "INBOX/Sub");
        for bad in [
            "..",
            "a/../b",
            "#shared/x",
            "~bob",
            "a//b",
            "/a",
            "a*",
            "a%",
            "a\u{0}b",
            "",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_name("Work/2026").unwrap(), "Work/2026");
    }

    #[test]
    fn wildcards() {
        assert!(matches(b"*", b"a/b"));
        assert!(!matches(b"%", b"a/b"));
        assert!(matches(b"a/%", b"a/b"));
        assert!(matches(b"INBOX", b"INBOX"));
        assert!(!matches(b"Sent", b"Sent/x"));
    }
}
