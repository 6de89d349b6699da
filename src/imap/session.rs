//! One IMAP session: the states of RFC 3501 section 3 (not authenticated,
//! authenticated, selected, logout), whether IMAP4rev2 is enabled, the
//! command loop, dispatch to the command groups (`auth.rs`,
//! `mailboxes.rs`, `list.rs`, `fetch.rs`, `messages.rs`, `search.rs`, `quota.rs`, `idle.rs`),
//! and the points where changes made elsewhere are reported (before a
//! command that looks at the selected folder, so its answer reflects them,
//! and after every command; expunges are held back during FETCH, STORE and
//! SEARCH as RFC 3501 section 7.4.1 requires). Commands are decoded by `intake.rs`.

use super::intake::Decoded;
use super::view::View;
use super::wire::{Framed, Reader};
use crate::context::ServerContext;
use crate::net::Connection;
use crate::shutdown::Shutdown;
use crate::store::MailboxEvent;
use imap_codec::imap_types::command::{Command, CommandBody};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Bad commands before the server hangs up.
const MAX_ERRORS: u32 = 20;
/// Autologout of an authenticated client (RFC 9051 section 5.4: at least 30 minutes).
const AUTHENTICATED_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How a command ended: the tagged status and its text (with any code).
pub enum Outcome {
    Ok(String),
    No(String),
    Bad(String),
}

/// Whether the session goes on.
pub enum Flow {
    Continue,
    Close,
}

pub struct Session {
    pub conn: Connection,
    pub ctx: Arc<ServerContext>,
    pub reader: Reader,
    /// The logged-in account.
    pub user: Option<String>,
    /// The selected folder.
    pub view: Option<View>,
    /// CONDSTORE enabled (ENABLE, SELECT (CONDSTORE), or a MODSEQ use).
    pub condstore: bool,
    pub events: broadcast::Receiver<MailboxEvent>,
    /// The tag and RETURN options of the SEARCH being run, when the client
    /// asked for ESEARCH (RFC 4731) results.
    pub search_return: Option<(String, Vec<String>)>,
    /// IMAP4rev2 enabled (RFC 9051): ESEARCH for SEARCH, no \Recent,
    /// UTF-8 folder names, LIST in SELECT.
    pub rev2: bool,
    /// QRESYNC enabled (RFC 7162): expunges are reported as VANISHED.
    pub qresync: bool,
    /// SEARCHRES's saved result (RFC 5182), as UIDs.
    pub saved_result: Option<Vec<u32>>,
    errors: u32,
    /// The logged-in user's place in `limits.max_sessions_per_user`.
    pub user_slot: Option<crate::limits::UserSlot>,
    /// Other nodes' changes to the user's folders raise events here.
    pub watch: Option<crate::store::Watch>,
}

pub async fn run(conn: Connection, ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    let events = ctx.store.subscribe();
    let reader = Reader::new(ctx.config.limits.max_message_size.0);
    let mut s = Session {
        conn,
        ctx,
        reader,
        user: None,
        view: None,
        condstore: false,
        events,
        search_return: None,
        rev2: false,
        qresync: false,
        saved_result: None,
        errors: 0,
        user_slot: None,
        watch: None,
    };
    let result = tokio::select! {
        r = s.serve() => r,
        _ = shutdown.recv() => s.conn.write_all(b"* BYE server shutting down\r\n").await,
    };
    if let Err(e) = result {
        tracing::debug!(client = %s.conn.peer, "imap session ended: {e}");
    }
    s.conn.shutdown().await;
}

impl Session {
    async fn serve(&mut self) -> io::Result<()> {
        let greeting = format!(
            "* OK [CAPABILITY {}] {} Tern IMAP server ready\r\n",
            self.capabilities(),
            self.ctx.config.hostname
        );
        self.conn.write_all(greeting.as_bytes()).await?;
        loop {
            let timeout = self.timeout();
            match self.reader.read(&mut self.conn, timeout).await? {
                Framed::Eof => return Ok(()),
                Framed::TimedOut => {
                    return self
                        .conn
                        .write_all(b"* BYE autologout: idle too long\r\n")
                        .await;
                }
                Framed::Complete => {}
            }
            let cmd = match self.decode_framed() {
                Decoded::Command(cmd) => cmd,
                Decoded::List(list) => {
                    let tag = list.tag.clone();
                    let outcome = if self.user.is_none() {
                        Outcome::Bad("LIST is not valid before login".into())
                    } else {
                        self.list_extended(list).await?
                    };
                    if let Flow::Close = self.finish(&tag, outcome, true, self.condstore).await? {
                        return Ok(());
                    }
                    continue;
                }
                Decoded::MultiAppend { tag, parts } => {
                    let outcome = if self.user.is_none() {
                        Outcome::Bad("APPEND is not valid before login".into())
                    } else {
                        self.multi_append(parts).await?
                    };
                    if let Flow::Close = self.finish(&tag, outcome, true, self.condstore).await? {
                        return Ok(());
                    }
                    continue;
                }
                Decoded::Answer { tag, outcome } => {
                    if let Flow::Close = self.finish(&tag, outcome, true, self.condstore).await? {
                        return Ok(());
                    }
                    continue;
                }
                Decoded::Failed { tag, too_big } => {
                    let line = if too_big {
                        format!("{tag} NO [TOOBIG] literal too big\r\n")
                    } else {
                        self.errors += 1;
                        format!("{tag} BAD syntax error in command\r\n")
                    };
                    self.conn.write_buffered(line.as_bytes()).await?;
                    if self.errors >= MAX_ERRORS {
                        return self.conn.write_all(b"* BYE too many errors\r\n").await;
                    }
                    continue;
                }
            };
            if let Flow::Close = self.execute(cmd).await? {
                return Ok(());
            }
        }
    }

    fn timeout(&self) -> Duration {
        let base = self.ctx.config.limits.command_timeout.0;
        if self.user.is_some() {
            base.max(AUTHENTICATED_TIMEOUT)
        } else {
            base
        }
    }

    /// Whether passwords may cross this connection.
    pub fn plaintext_ok(&self) -> bool {
        self.conn.is_tls() || self.ctx.config.tls.allow_plaintext_auth
    }

    pub fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev1",
            "IMAP4rev2",
            "SASL-IR",
            "LITERAL+",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MULTIAPPEND",
            "CATENATE",
            "MOVE",
            "ESEARCH",
        ];
        caps.extend([
            "CHILDREN",
            "SPECIAL-USE",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "SEARCHRES",
        ]);
        caps.extend(["LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE"]);
        caps.extend([
            "SORT",
            "SORT=DISPLAY",
            "ESORT",
            "CONTEXT=SEARCH",
            "CONTEXT=SORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "COMPRESS=DEFLATE",
        ]);
        if self.user.is_none() {
            if !self.conn.is_tls() {
                caps.push("STARTTLS");
            }
            if self.plaintext_ok() {
                caps.push("AUTH=PLAIN");
            } else {
                caps.push("LOGINDISABLED");
            }
        }
        caps.join(" ")
    }

    async fn execute(&mut self, cmd: Command<'static>) -> io::Result<Flow> {
        let tag = cmd.tag.inner().to_string();
        let name = cmd.body.name();
        // Expunges may not be reported during FETCH, STORE and SEARCH by
        // sequence number (the client could not tell which message is which).
        let expunge_ok = !matches!(
            cmd.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
                | CommandBody::Sort { uid: false, .. }
                | CommandBody::Thread { uid: false, .. }
        );
        // Changes other sessions committed before this command are reported
        // before its answer, so the answer reflects them (RFC 9051 7.5.1:
        // flag updates may be sent at any time; expunges only where allowed).
        let touches_view = !matches!(
            cmd.body,
            CommandBody::Select { .. }
                | CommandBody::Examine { .. }
                | CommandBody::Close
                | CommandBody::Unselect
                | CommandBody::Logout
                | CommandBody::Idle
        );
        if touches_view && self.view.is_some() {
            self.notice_elsewhere().await;
            self.report_changes(expunge_ok).await?;
        }
        let condstore_before = self.condstore
            || matches!(
                cmd.body,
                CommandBody::Select { .. } | CommandBody::Examine { .. }
            );
        let outcome = match cmd.body {
            CommandBody::Capability => {
                let line = format!("* CAPABILITY {}\r\n", self.capabilities());
                self.conn.write_buffered(line.as_bytes()).await?;
                Outcome::Ok("CAPABILITY completed".into())
            }
            CommandBody::Noop | CommandBody::Check => Outcome::Ok(format!("{name} completed")),
            CommandBody::Logout => {
                self.conn.write_buffered(b"* BYE logging out\r\n").await?;
                self.conn
                    .write_all(format!("{tag} OK LOGOUT completed\r\n").as_bytes())
                    .await?;
                return Ok(Flow::Close);
            }
            CommandBody::StartTLS => return self.starttls(&tag).await,
            CommandBody::Id { .. } => {
                self.conn
                    .write_buffered(b"* ID (\"name\" \"Tern\" \"vendor\" \"Tern\")\r\n")
                    .await?;
                Outcome::Ok("ID completed".into())
            }
            CommandBody::Login { username, password } => {
                self.login(
                    std::str::from_utf8(username.as_ref()).unwrap_or(""),
                    password.declassify().as_ref(),
                )
                .await?
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let initial = initial_response.map(|r| r.declassify().to_vec());
                self.authenticate(&tag, mechanism.as_ref(), initial).await?
            }
            body if self.user.is_none() => {
                Outcome::Bad(format!("{} is not valid before login", body.name()))
            }
            CommandBody::Compress { .. } => return self.compress(&tag).await,
            CommandBody::Enable { capabilities } => self.enable(capabilities.into_inner()).await?,
            CommandBody::Namespace => {
                self.conn
                    .write_buffered(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n")
                    .await?;
                Outcome::Ok("NAMESPACE completed".into())
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(mailbox, parameters, false).await?,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(mailbox, parameters, true).await?,
            CommandBody::Create { mailbox } => self.create(mailbox).await?,
            CommandBody::Delete { mailbox } => self.delete(mailbox).await?,
            CommandBody::Rename { from, to } => self.rename(from, to).await?,
            CommandBody::Subscribe { mailbox } => self.subscribe(mailbox, true).await?,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(mailbox, false).await?,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self.list(reference, mailbox_wildcard, false).await?,
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(reference, mailbox_wildcard, true).await?,
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(mailbox, &item_names).await?,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(mailbox, flags, date, message).await?,
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(mailbox).await?,
            CommandBody::GetQuota { root } => self.get_quota(root).await?,
            CommandBody::SetQuota { .. } => {
                Outcome::No("[NOPERM] quotas are set by the administrator".into())
            }
            CommandBody::Idle => return self.idle(&tag).await,
            body if self.view.is_none() => {
                Outcome::Bad(format!("{} needs a selected mailbox", body.name()))
            }
            CommandBody::Close => self.close(true).await?,
            CommandBody::Unselect => self.close(false).await?,
            CommandBody::Expunge => self.expunge(None).await?,
            CommandBody::ExpungeUid { sequence_set } => self.expunge(Some(sequence_set)).await?,
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                self.search(charset, criteria.into_inner(), uid, &tag)
                    .await?
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(
                    sort_criteria.into_inner(),
                    charset,
                    search_criteria.into_inner(),
                    uid,
                    &tag,
                )
                .await?
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(algorithm, charset, search_criteria.into_inner(), uid)
                    .await?
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(sequence_set, macro_or_item_names, uid, modifiers)
                    .await?
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                self.store_flags(sequence_set, kind, response, flags, uid, modifiers)
                    .await?
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(sequence_set, mailbox, uid, false).await?,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(sequence_set, mailbox, uid, true).await?,
        };
        self.finish(&tag, outcome, expunge_ok, condstore_before)
            .await
    }

    /// Ends a command: HIGHESTMODSEQ if it enabled CONDSTORE, the changes
    /// made elsewhere, and the tagged status.
    async fn finish(
        &mut self,
        tag: &str,
        outcome: Outcome,
        expunge_ok: bool,
        condstore_before: bool,
    ) -> io::Result<Flow> {
        if !condstore_before && self.condstore {
            self.announce_highest_modseq().await?;
        }
        self.report_changes(expunge_ok).await?;
        self.update_live_searches().await?;
        let line = match outcome {
            Outcome::Ok(text) => format!("{tag} OK {text}\r\n"),
            Outcome::No(text) => format!("{tag} NO {text}\r\n"),
            Outcome::Bad(text) => {
                self.errors += 1;
                format!("{tag} BAD {text}\r\n")
            }
        };
        self.conn.write_buffered(line.as_bytes()).await?;
        if self.errors >= MAX_ERRORS {
            self.conn.write_all(b"* BYE too many errors\r\n").await?;
            return Ok(Flow::Close);
        }
        Ok(Flow::Continue)
    }

    async fn starttls(&mut self, tag: &str) -> io::Result<Flow> {
        if self.conn.is_tls() || self.user.is_some() {
            self.conn
                .write_all(
                    format!("{tag} BAD TLS is already active or not allowed now\r\n").as_bytes(),
                )
                .await?;
            return Ok(Flow::Continue);
        }
        self.conn
            .write_all(format!("{tag} OK Begin TLS negotiation now\r\n").as_bytes())
            .await?;
        if let Err(e) = self.conn.start_tls(&self.ctx.tls).await {
            tracing::info!(client = %self.conn.peer, "IMAP STARTTLS handshake failed: {e}");
            return Ok(Flow::Close);
        }
        self.reader.reset();
        Ok(Flow::Continue)
    }

    /// COMPRESS DEFLATE (RFC 4978): the OK goes out uncompressed, then
    /// everything is deflated both ways. Only after login (the password
    /// never shares the compressed stream) and once per connection.
    async fn compress(&mut self, tag: &str) -> io::Result<Flow> {
        if self.conn.is_compressed() {
            let line = format!("{tag} NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n");
            self.conn.write_all(line.as_bytes()).await?;
            return Ok(Flow::Continue);
        }
        self.conn
            .write_all(format!("{tag} OK DEFLATE active\r\n").as_bytes())
            .await?;
        self.conn.start_deflate()?;
        Ok(Flow::Continue)
    }

    /// Notes which folders changed since the last look.
    fn drain_events(&mut self) {
        let (Some(user), Some(view)) = (self.user.as_deref(), self.view.as_mut()) else {
            while self.events.try_recv().is_ok() {}
            return;
        };
        loop {
            match self.events.try_recv() {
                Ok(e) if e.user == user && e.folder == view.folder => view.dirty = true,
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(_)) => view.dirty = true,
                Err(_) => break,
            }
        }
    }

    /// Marks the view dirty if another node changed its folder (a shared
    /// store; nothing with sled).
    pub async fn notice_elsewhere(&mut self) {
        let (Some(user), Some(view)) = (self.user.as_deref(), self.view.as_mut()) else {
            return;
        };
        if let Err(e) = view.notice_elsewhere(&self.ctx.store, user).await {
            tracing::error!(user = %user, "cannot read the selected folder: {e}");
        }
    }

    /// Sends the untagged EXISTS / EXPUNGE / FETCH FLAGS that describe
    /// changes made by other sessions, SMTP delivery and POP3.
    pub async fn report_changes(&mut self, expunge_ok: bool) -> io::Result<()> {
        self.drain_events();
        let (Some(user), Some(view)) = (self.user.clone(), self.view.as_mut()) else {
            return Ok(());
        };
        let mut out = Vec::new();
        if let Err(e) = view
            .sync(&self.ctx.store, &user, expunge_ok, self.condstore, &mut out)
            .await
        {
            tracing::error!(user = %user, "cannot refresh the selected folder: {e}");
        }
        if !out.is_empty() {
            self.conn.write_buffered(&out).await?;
        }
        Ok(())
    }

    /// A command that enabled CONDSTORE in the selected state is answered
    /// with the folder's HIGHESTMODSEQ too (RFC 7162 3.1).
    async fn announce_highest_modseq(&mut self) -> io::Result<()> {
        let (Some(user), Some(view)) = (self.user.as_deref(), self.view.as_ref()) else {
            return Ok(());
        };
        if let Ok(Some(info)) = self.ctx.store.folder(user, &view.folder).await {
            let line = format!("* OK [HIGHESTMODSEQ {}] modseq\r\n", info.highest_modseq);
            self.conn.write_buffered(line.as_bytes()).await?;
        }
        Ok(())
    }

    /// The account, once logged in (callers checked the state).
    pub fn account(&self) -> String {
        self.user.clone().unwrap_or_default()
    }
}
