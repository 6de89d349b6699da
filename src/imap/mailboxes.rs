//! Commands on folders: SELECT/EXAMINE (IMAP4rev1's responses, or
//! IMAP4rev2's with LIST and CLOSED, QRESYNC's resync via `qresync.rs`), CREATE, DELETE, RENAME,
//! SUBSCRIBE/UNSUBSCRIBE, STATUS (with SIZE) and APPEND (durable before
//! its tagged OK, with UIDPLUS's APPENDUID; BINARY's literal8 too;
//! MULTIAPPEND's several messages all or none). Folder
//! names are converted and checked by `names.rs`; LIST and LSUB live in
//! `list.rs`.

use super::binary;
use super::names;
use super::session::{Outcome, Session};
use super::view::View;
use crate::store::{SEPARATOR, StoreError};
use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::status::StatusDataItemName;
use std::borrow::Cow;
use std::io;

/// One message of an APPEND: flags, internal date, content.
pub type AppendItem = (
    Vec<Flag<'static>>,
    Option<DateTime>,
    LiteralOrLiteral8<'static>,
);

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
        parameters: Vec<SelectParameter>,
        read_only: bool,
    ) -> io::Result<Outcome> {
        let condstore = !parameters.is_empty();
        let resync = parameters.into_iter().find_map(|p| match p {
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => Some((uid_validity.get(), mod_sequence_value.get(), known_uids)),
            SelectParameter::CondStore => None,
        });
        // RFC 7162 3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
        if resync.is_some() && !self.qresync {
            return Ok(Outcome::Bad("QRESYNC is not enabled".into()));
        }
        // RFC 9051 7.1: CLOSED separates the old folder's responses from
        // the new one's.
        if self.view.take().is_some() && self.rev2 {
            self.conn
                .write_buffered(b"* OK [CLOSED] previous folder closed\r\n")
                .await?;
        }
        self.saved_result = None;
        let name = match self.folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if condstore {
            self.condstore = true;
        }
        let user = self.account();
        let info = match self.ctx.store.folder(&user, &name).await {
            Ok(Some(i)) => i,
            Ok(None) => return Ok(Outcome::No("[NONEXISTENT] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        };
        let mut view = match View::open(&self.ctx.store, &user, &name, read_only).await {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(Outcome::No("[NONEXISTENT] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        };
        // Changes that happened before this point are in the view already.
        while self.events.try_recv().is_ok() {}
        // IMAP4rev2 has no \Recent, no RECENT and no UNSEEN code, and
        // tells the folder's LIST data (RFC 9051 6.3.2).
        view.show_recent = !self.rev2;
        view.vanished = self.qresync;
        let mut out = Vec::new();
        view.flag_lines(&mut out);
        out.extend_from_slice(format!("* {} EXISTS\r\n", view.messages.len()).as_bytes());
        if self.rev2 {
            match self.ctx.store.folders(&user).await {
                Ok(folders) => self.list_line(&mut out, &folders, &info),
                Err(e) => return Ok(self.store_failure(e)),
            }
        } else {
            out.extend_from_slice(format!("* {} RECENT\r\n", view.recent_count()).as_bytes());
            if let Some(p) = view
                .messages
                .iter()
                .position(|m| !m.flags.iter().any(|f| f == "\\Seen"))
            {
                out.extend_from_slice(
                    format!("* OK [UNSEEN {}] first unseen\r\n", p + 1).as_bytes(),
                );
            }
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
        if let Some((uidvalidity, modseq, known)) = resync
            && uidvalidity == info.uidvalidity
        {
            let vanished = self
                .ctx
                .store
                .vanished_since(&user, &name, modseq)
                .await
                .unwrap_or(None);
            super::qresync::resync(&mut out, &view, vanished, modseq, known.as_ref());
        }
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
            StoreError::OverQuota { too_big: true, .. } => {
                Outcome::No("[OVERQUOTA] the message is larger than the whole quota".into())
            }
            StoreError::OverQuota { .. } => {
                Outcome::No("[OVERQUOTA] the mailbox is over its quota".into())
            }
            other => {
                tracing::error!(user = ?self.user, "imap store error: {other}");
                Outcome::No("[SERVERBUG] the mail store failed, try again later".into())
            }
        }
    }

    pub async fn create(&mut self, mailbox: Mailbox<'static>) -> io::Result<Outcome> {
        // A trailing separator only says the client means to create folders
        // below it (RFC 3501 6.3.3): the name is created without it.
        let name = match &mailbox {
            Mailbox::Other(o) => names::from_wire(o.as_ref(), self.rev2)
                .and_then(|n| names::check_name(n.strip_suffix(SEPARATOR).unwrap_or(&n))),
            Mailbox::Inbox => Ok("INBOX".to_string()),
        };
        let name = match name {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if name == "INBOX" {
            return Ok(Outcome::No("[ALREADYEXISTS] INBOX always exists".into()));
        }
        match self.create_path(&name, false).await {
            Ok(()) => {}
            Err(e) => return Ok(self.store_failure(e)),
        }
        Ok(Outcome::Ok("CREATE completed".into()))
    }

    /// Creates a folder and its missing superior levels (RFC 3501 6.3.3);
    /// with `parents_only`, only the levels above `name`.
    async fn create_path(&self, name: &str, parents_only: bool) -> Result<(), StoreError> {
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
            // CREATE does not subscribe (RFC 3501 6.3.3, 6.3.6), but a
            // subscription kept from a deleted folder of the name stays.
            let kept = self.ctx.store.subscription_kept(&user, &prefix).await?;
            match self.ctx.store.create_folder(&user, &prefix).await {
                Ok(_) if kept => {}
                Ok(_) => self.ctx.store.set_subscribed(&user, &prefix, false).await?,
                Err(StoreError::FolderExists(_)) if !last => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub async fn delete(&mut self, mailbox: Mailbox<'static>) -> io::Result<Outcome> {
        let name = match self.folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if name == "INBOX" {
            return Ok(Outcome::No("[CANNOT] INBOX cannot be deleted".into()));
        }
        if self.view.as_ref().is_some_and(|v| v.folder == name) {
            self.view = None;
        }
        match self.ctx.store.delete_folder(&self.account(), &name).await {
            Ok(()) => Ok(Outcome::Ok("DELETE completed".into())),
            Err(e) => Ok(self.store_failure(e)),
        }
    }

    pub async fn rename(
        &mut self,
        from: Mailbox<'static>,
        to: Mailbox<'static>,
    ) -> io::Result<Outcome> {
        let (from, to) = match (self.folder_name(&from), self.folder_name(&to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(e), _) | (_, Err(e)) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        if to.starts_with(&format!("{from}{SEPARATOR}")) {
            return Ok(Outcome::No(
                "[CANNOT] a folder cannot move below itself".into(),
            ));
        }
        let user = self.account();
        if let Ok(None) = self.ctx.store.folder(&user, &from).await {
            return Ok(Outcome::No("[NONEXISTENT] no such folder".into()));
        }
        if let Err(e) = self.create_path(&to, true).await {
            return Ok(self.store_failure(e));
        }
        match self.ctx.store.rename_folder(&user, &from, &to).await {
            Ok(()) => Ok(Outcome::Ok("RENAME completed".into())),
            Err(e) => Ok(self.store_failure(e)),
        }
    }

    pub async fn subscribe(&mut self, mailbox: Mailbox<'static>, on: bool) -> io::Result<Outcome> {
        let name = match self.folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        match self
            .ctx
            .store
            .set_subscribed(&self.account(), &name, on)
            .await
        {
            Ok(()) => Ok(Outcome::Ok(format!(
                "{} completed",
                if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" }
            ))),
            Err(e) => Ok(self.store_failure(e)),
        }
    }

    pub async fn status(
        &mut self,
        mailbox: Mailbox<'static>,
        items: &[StatusDataItemName],
    ) -> io::Result<Outcome> {
        let name = match self.folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        match self.status_response(&name, items).await {
            Ok(out) => {
                self.conn.write_buffered(&out).await?;
                Ok(Outcome::Ok("STATUS completed".into()))
            }
            Err(outcome) => Ok(outcome),
        }
    }

    /// The untagged STATUS response for a folder (also LIST-STATUS's).
    pub async fn status_response(
        &self,
        name: &str,
        items: &[StatusDataItemName],
    ) -> Result<Vec<u8>, Outcome> {
        let user = self.account();
        let (info, messages) = match (
            self.ctx.store.folder(&user, name).await,
            self.ctx.store.messages(&user, name).await,
        ) {
            (Ok(Some(i)), Ok(m)) => (i, m),
            (Ok(None), _) => return Err(Outcome::No("[NONEXISTENT] no such folder".into())),
            (Err(e), _) | (_, Err(e)) => return Err(self.store_failure(e)),
        };
        let has = |flag: &str| {
            messages
                .iter()
                .filter(|m| m.flags.iter().any(|f| f == flag))
                .count()
        };
        let mut parts = Vec::new();
        for item in items {
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
                StatusDataItemName::Size => {
                    format!("SIZE {}", messages.iter().map(|m| m.size).sum::<u64>())
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
        self.put_mailbox(&mut out, &info.name);
        out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(out)
    }

    pub async fn append(
        &mut self,
        mailbox: Mailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
    ) -> io::Result<Outcome> {
        self.append_all(mailbox, vec![(flags, date, message)]).await
    }

    /// APPEND of one message or, MULTIAPPEND (RFC 3502), of several into
    /// one folder: all of them or none (the ones added before a failure
    /// are expunged again), durable before the OK with one APPENDUID.
    pub async fn append_all(
        &mut self,
        mailbox: Mailbox<'static>,
        messages: Vec<AppendItem>,
    ) -> io::Result<Outcome> {
        let name = match self.folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        // Binary content from a literal8 is kept base64-encoded, so that
        // BODY[] never has to send NUL (RFC 3516 4.2).
        let mut prepared = Vec::with_capacity(messages.len());
        for (flags, date, message) in &messages {
            let bytes: Cow<'_, [u8]> = match message {
                LiteralOrLiteral8::Literal(l) => Cow::Borrowed(l.as_ref()),
                LiteralOrLiteral8::Literal8(l) => binary::encode_binary_parts(l.data.as_ref())
                    .map_or(Cow::Borrowed(l.data.as_ref()), Cow::Owned),
            };
            if bytes.len() as u64 > self.ctx.config.limits.max_message_size.0 {
                return Ok(Outcome::No("[TOOBIG] message too big".into()));
            }
            let internal = date.as_ref().map(|d| d.as_ref().timestamp());
            prepared.push((bytes, flag_strings(flags), internal));
        }
        let user = self.account();
        match self.ctx.store.folder(&user, &name).await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Outcome::No("[TRYCREATE] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        }
        let mut uids = Vec::with_capacity(prepared.len());
        let mut uidvalidity = 0;
        for (bytes, flags, internal) in prepared {
            match self
                .ctx
                .store
                .append(&user, &name, &bytes, flags, internal)
                .await
            {
                Ok((v, uid)) => {
                    uidvalidity = v;
                    uids.push(uid);
                }
                Err(e) => {
                    if let Err(undo) = self.ctx.store.expunge(&user, &name, &uids).await {
                        tracing::error!(user = %user, "cannot undo a failed MULTIAPPEND: {undo}");
                    }
                    return Ok(self.store_failure(e));
                }
            }
        }
        if let Err(e) = self.ctx.store.flush().await {
            return Ok(self.store_failure(e));
        }
        Ok(Outcome::Ok(format!(
            "[APPENDUID {uidvalidity} {}] APPEND completed",
            super::view::uid_set(&uids)
        )))
    }
}
