//! Commands on the messages of the selected folder (FETCH is in
//! `fetch.rs`): STORE (with UNCHANGEDSINCE), COPY and MOVE
//! (UIDPLUS's COPYUID), EXPUNGE and UID EXPUNGE, CLOSE and UNSELECT.

use super::session::{Outcome, Session};
use super::view::uid_set;
use crate::store::FlagOp;
use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;
use std::io;

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub async fn store_flags(
        &mut self,
        set: SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: Vec<Flag<'static>>,
        uid: bool,
        modifiers: Vec<StoreModifier>,
    ) -> io::Result<Outcome> {
        let unchanged_since = modifiers
            .iter()
            .map(|StoreModifier::UnchangedSince(n)| *n)
            .next();
        if unchanged_since.is_some() {
            self.condstore = true;
        }
        // \Recent belongs to the session and cannot be stored (RFC 3501 2.3.2).
        let flags: Vec<String> = flags
            .iter()
            .map(|f| f.to_string())
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let op = match kind {
            StoreType::Replace => FlagOp::Replace(flags),
            StoreType::Add => FlagOp::Add(flags),
            StoreType::Remove => FlagOp::Remove(flags),
        };
        let user = self.account();
        let store = self.ctx.store.clone();
        let condstore = self.condstore;
        let Some(view) = self.view.as_mut() else {
            return Ok(Outcome::Bad("no folder selected".into()));
        };
        if view.read_only {
            return Ok(Outcome::No("[READ-ONLY] the folder is read-only".into()));
        }
        let positions = match view.resolve(&set, uid) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::Bad(e.to_string())),
        };
        let uids: Vec<u32> = positions.iter().map(|&p| view.messages[p].uid).collect();
        let (done, failed) = match store
            .store_flags(&user, &view.folder, &uids, &op, unchanged_since)
            .await
        {
            Ok(r) => r,
            Err(e) => return Ok(self.store_failure(e)),
        };
        let mut out = Vec::new();
        view.announce_keywords(done.iter().flat_map(|(_, _, f)| f.iter()), &mut out);
        for (uid, modseq, flags) in &done {
            if let Some(p) = view.position(*uid) {
                view.messages[p].flags = flags.clone();
                view.messages[p].modseq = *modseq;
            }
        }
        let silent = matches!(response, StoreResponse::Silent);
        for &p in &positions {
            let m = &view.messages[p];
            if failed.contains(&m.uid) {
                continue;
            }
            if silent && !(unchanged_since.is_some() && done.iter().any(|(u, _, _)| *u == m.uid)) {
                continue;
            }
            out.extend_from_slice(format!("* {} FETCH (", p + 1).as_bytes());
            if !silent {
                view.flags(&mut out, m);
                out.push(b' ');
            }
            out.extend_from_slice(format!("UID {}", m.uid).as_bytes());
            if condstore {
                out.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
            }
            out.extend_from_slice(b")\r\n");
        }
        self.conn.write_buffered(&out).await?;
        if !failed.is_empty() {
            let set = if uid {
                uid_set(&failed)
            } else {
                let seqs: Vec<u32> = failed
                    .iter()
                    .filter_map(|u| view.position(*u))
                    .map(|p| p as u32 + 1)
                    .collect();
                uid_set(&seqs)
            };
            return Ok(Outcome::Ok(format!(
                "[MODIFIED {set}] conditional STORE failed for some messages"
            )));
        }
        Ok(Outcome::Ok("STORE completed".into()))
    }

    pub async fn copy(
        &mut self,
        set: SequenceSet,
        mailbox: Mailbox<'static>,
        uid: bool,
        is_move: bool,
    ) -> io::Result<Outcome> {
        let target = match self.folder_name(&mailbox) {
            Ok(n) => n,
            Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
        };
        let user = self.account();
        let store = self.ctx.store.clone();
        match store.folder(&user, &target).await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Outcome::No("[TRYCREATE] no such folder".into())),
            Err(e) => return Ok(self.store_failure(e)),
        }
        let Some(view) = self.view.as_mut() else {
            return Ok(Outcome::Bad("no folder selected".into()));
        };
        if is_move && view.read_only {
            return Ok(Outcome::No("[READ-ONLY] the folder is read-only".into()));
        }
        let positions = match view.resolve(&set, uid) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::Bad(e.to_string())),
        };
        let uids: Vec<u32> = positions.iter().map(|&p| view.messages[p].uid).collect();
        let verb = if is_move { "MOVE" } else { "COPY" };
        if uids.is_empty() {
            return Ok(Outcome::Ok(format!("{verb} completed (no messages)")));
        }
        let result = match store
            .copy_messages(&user, &view.folder, &uids, &target, is_move)
            .await
        {
            Ok(r) => r,
            Err(e) => return Ok(self.store_failure(e)),
        };
        if let Err(e) = store.flush().await {
            return Ok(self.store_failure(e));
        }
        let src: Vec<u32> = result.pairs.iter().map(|p| p.0).collect();
        let dst: Vec<u32> = result.pairs.iter().map(|p| p.1).collect();
        let code = format!(
            "COPYUID {} {} {}",
            result.uidvalidity,
            uid_set(&src),
            uid_set(&dst)
        );
        if !is_move {
            return Ok(Outcome::Ok(format!("[{code}] COPY completed")));
        }
        let mut out = format!("* OK [{code}] moved\r\n").into_bytes();
        let gone: Vec<usize> = src.iter().filter_map(|u| view.position(*u)).collect();
        view.remove(gone, &mut out);
        self.conn.write_buffered(&out).await?;
        Ok(Outcome::Ok("MOVE completed".into()))
    }

    /// EXPUNGE (all \Deleted messages) or UID EXPUNGE (those in `set`).
    pub async fn expunge(&mut self, set: Option<SequenceSet>) -> io::Result<Outcome> {
        let mut out = Vec::new();
        if let Err(e) = self.expunge_deleted(set, &mut out).await {
            return Ok(e);
        }
        self.conn.write_buffered(&out).await?;
        Ok(Outcome::Ok("EXPUNGE completed".into()))
    }

    async fn expunge_deleted(
        &mut self,
        set: Option<SequenceSet>,
        out: &mut Vec<u8>,
    ) -> Result<(), Outcome> {
        let user = self.account();
        let store = self.ctx.store.clone();
        let Some(view) = self.view.as_mut() else {
            return Err(Outcome::Bad("no folder selected".into()));
        };
        if view.read_only {
            return Err(Outcome::No("[READ-ONLY] the folder is read-only".into()));
        }
        let allowed = match &set {
            Some(s) => Some(
                view.resolve(s, true)
                    .map_err(|e| Outcome::Bad(e.to_string()))?,
            ),
            None => None,
        };
        let positions: Vec<usize> = (0..view.messages.len())
            .filter(|p| allowed.as_ref().is_none_or(|a| a.binary_search(p).is_ok()))
            .filter(|&p| view.messages[p].flags.iter().any(|f| f == "\\Deleted"))
            .collect();
        if positions.is_empty() {
            return Ok(());
        }
        let uids: Vec<u32> = positions.iter().map(|&p| view.messages[p].uid).collect();
        let result = store
            .expunge(&user, &view.folder, &uids)
            .await
            .map_err(|e| Outcome::No(format!("[SERVERBUG] expunge failed: {e}")))?;
        let _ = result;
        view.remove(positions, out);
        if let Err(e) = store.flush().await {
            return Err(Outcome::No(format!("[SERVERBUG] expunge not durable: {e}")));
        }
        Ok(())
    }

    /// CLOSE (expunges silently) and UNSELECT (does not).
    pub async fn close(&mut self, expunge: bool) -> io::Result<Outcome> {
        if expunge && self.view.as_ref().is_some_and(|v| !v.read_only) {
            let mut discarded = Vec::new();
            if let Err(e) = self.expunge_deleted(None, &mut discarded).await {
                return Ok(e);
            }
        }
        self.view = None;
        self.saved_result = None;
        Ok(Outcome::Ok(format!(
            "{} completed",
            if expunge { "CLOSE" } else { "UNSELECT" }
        )))
    }
}
