//! LIST and LSUB: IMAP4rev1's forms (with CHILDREN and SPECIAL-USE
//! attributes always), and LIST-EXTENDED's (RFC 5258, part of IMAP4rev2):
//! several patterns, the SUBSCRIBED, RECURSIVEMATCH, REMOTE and
//! SPECIAL-USE selections (subscribed names whose folder is gone are
//! `\NonExistent`), CHILDINFO, and RETURN (SUBSCRIBED CHILDREN SPECIAL-USE
//! STATUS (...)) — LIST-STATUS, RFC 5819. Also the LIST line IMAP4rev2's
//! SELECT sends.

use super::names;
use super::rewrite::{ListCommand, ListOptions};
use super::session::{Outcome, Session};
use crate::store::{FolderInfo, SEPARATOR};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use std::io;

/// A name LIST may show: a folder, or a subscription that outlived one.
struct Entry {
    name: String,
    exists: bool,
    subscribed: bool,
    special_use: Option<String>,
}

/// The attributes every LIST shows: children and special use.
fn base_attributes<'a>(
    folders: &[FolderInfo],
    name: &str,
    special: Option<&'a str>,
) -> Vec<&'a str> {
    let below = format!("{name}{SEPARATOR}");
    let children = folders.iter().any(|c| c.name.starts_with(&below));
    let mut attrs = vec![if children {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    }];
    attrs.extend(special);
    attrs
}

impl Session {
    /// The pattern as a UTF-8 name pattern, `INBOX` in canonical case.
    fn full_pattern(&self, reference: &[u8], pattern: &[u8]) -> String {
        let raw = [reference, pattern].concat();
        let full = names::from_wire(&raw, self.rev2)
            .unwrap_or_else(|_| String::from_utf8_lossy(&raw).into_owned());
        if full.len() >= 5 && full.is_char_boundary(5) && full[..5].eq_ignore_ascii_case("INBOX") {
            format!("INBOX{}", &full[5..])
        } else {
            full
        }
    }

    /// `* LIST (attributes) "/" name` for one folder.
    pub fn list_line(&self, out: &mut Vec<u8>, folders: &[FolderInfo], info: &FolderInfo) {
        let attrs = base_attributes(folders, &info.name, info.special_use.as_deref());
        out.extend_from_slice(format!("* LIST ({}) \"/\" ", attrs.join(" ")).as_bytes());
        self.put_mailbox(out, &info.name);
        out.extend_from_slice(b"\r\n");
    }

    /// LIST and LSUB as the codec decoded them (IMAP4rev1's syntax).
    pub async fn list(
        &mut self,
        reference: Mailbox<'static>,
        pattern: ListMailbox<'static>,
        lsub: bool,
    ) -> io::Result<Outcome> {
        let reference = match &reference {
            Mailbox::Inbox => b"INBOX".to_vec(),
            Mailbox::Other(o) => o.as_ref().to_vec(),
        };
        let pattern = match &pattern {
            ListMailbox::Token(t) => t.as_ref().to_vec(),
            ListMailbox::String(s) => s.as_ref().to_vec(),
        };
        let verb = if lsub { "LSUB" } else { "LIST" };
        if pattern.is_empty() {
            let line = format!("* {verb} (\\Noselect) \"/\" \"\"\r\n");
            self.conn.write_buffered(line.as_bytes()).await?;
            return Ok(Outcome::Ok(format!("{verb} completed")));
        }
        let full = self.full_pattern(&reference, &pattern);
        if lsub {
            return self.lsub(&full).await;
        }
        self.list_patterns(&[full], &ListOptions::default(), false)
            .await
    }

    /// LIST with LIST-EXTENDED's syntax.
    pub async fn list_extended(&mut self, cmd: ListCommand) -> io::Result<Outcome> {
        if cmd.patterns.len() == 1 && cmd.patterns[0].is_empty() {
            self.conn
                .write_buffered(b"* LIST (\\Noselect) \"/\" \"\"\r\n")
                .await?;
            return Ok(Outcome::Ok("LIST completed".into()));
        }
        let patterns: Vec<String> = cmd
            .patterns
            .iter()
            .map(|p| self.full_pattern(&cmd.reference, p))
            .collect();
        self.list_patterns(&patterns, &cmd.options, true).await
    }

    async fn list_patterns(
        &mut self,
        patterns: &[String],
        options: &ListOptions,
        extended: bool,
    ) -> io::Result<Outcome> {
        let user = self.account();
        let (folders, kept) = match (
            self.ctx.store.folders(&user).await,
            self.ctx.store.kept_subscriptions(&user).await,
        ) {
            (Ok(f), Ok(k)) => (f, k),
            (Err(e), _) | (_, Err(e)) => return Ok(self.store_failure(e)),
        };
        let mut entries: Vec<Entry> = folders
            .iter()
            .map(|f| Entry {
                name: f.name.clone(),
                exists: true,
                subscribed: f.subscribed,
                special_use: f.special_use.clone(),
            })
            .collect();
        if extended {
            entries.extend(kept.into_iter().map(|name| Entry {
                name,
                exists: false,
                subscribed: true,
                special_use: None,
            }));
        }
        // RECURSIVEMATCH may name parents that do not exist.
        if options.recursive {
            let mut parents = Vec::new();
            for e in &entries {
                for (i, _) in e.name.match_indices(SEPARATOR) {
                    let parent = &e.name[..i];
                    if !entries.iter().any(|o| o.name == parent) && !parents.contains(&parent) {
                        parents.push(parent);
                    }
                }
            }
            let parents: Vec<String> = parents.into_iter().map(str::to_string).collect();
            entries.extend(parents.into_iter().map(|name| Entry {
                name,
                exists: false,
                subscribed: false,
                special_use: None,
            }));
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let matched = |name: &str| {
            patterns
                .iter()
                .any(|p| names::matches(p.as_bytes(), name.as_bytes()))
        };
        let selected = |e: &Entry| {
            (if options.subscribed {
                e.subscribed
            } else {
                e.exists
            }) && (!options.special_use || e.special_use.is_some())
        };
        let show_subscribed = options.subscribed || options.return_subscribed;
        let mut out = Vec::new();
        for e in entries.iter().filter(|e| matched(&e.name)) {
            let childinfo = if selected(e) {
                false
            } else if options.recursive && options.subscribed {
                // A parent whose selected descendant the patterns miss.
                let below = format!("{}{SEPARATOR}", e.name);
                let hidden = entries
                    .iter()
                    .any(|d| d.name.starts_with(&below) && selected(d) && !matched(&d.name));
                if !hidden {
                    continue;
                }
                true
            } else {
                continue;
            };
            let mut attrs = base_attributes(&folders, &e.name, e.special_use.as_deref());
            if !e.exists {
                attrs.push("\\NonExistent");
            }
            if show_subscribed && e.subscribed {
                attrs.push("\\Subscribed");
            }
            out.extend_from_slice(format!("* LIST ({}) \"/\" ", attrs.join(" ")).as_bytes());
            self.put_mailbox(&mut out, &e.name);
            if childinfo {
                out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            out.extend_from_slice(b"\r\n");
            if let (Some(items), true) = (&options.status, e.exists) {
                // A folder deleted meanwhile simply has no STATUS.
                if let Ok(status) = self.status_response(&e.name, items).await {
                    out.extend_from_slice(&status);
                }
            }
        }
        self.conn.write_buffered(&out).await?;
        Ok(Outcome::Ok("LIST completed".into()))
    }

    /// LSUB: subscribed names matching `full`; a subscribed name's
    /// unsubscribed superior that the pattern matches (when the name
    /// itself is not matched, as with `%`) is listed \Noselect (RFC 3501
    /// 6.3.9).
    async fn lsub(&mut self, full: &str) -> io::Result<Outcome> {
        let user = self.account();
        let (folders, kept) = match (
            self.ctx.store.folders(&user).await,
            self.ctx.store.kept_subscriptions(&user).await,
        ) {
            (Ok(f), Ok(k)) => (f, k),
            (Err(e), _) | (_, Err(e)) => return Ok(self.store_failure(e)),
        };
        let mut subscribed: Vec<&str> = folders
            .iter()
            .filter(|f| f.subscribed)
            .map(|f| f.name.as_str())
            .chain(kept.iter().map(String::as_str))
            .collect();
        subscribed.sort_unstable();
        let mut parents: Vec<&str> = Vec::new();
        for name in &subscribed {
            if names::matches(full.as_bytes(), name.as_bytes()) {
                continue;
            }
            for (i, _) in name.match_indices(SEPARATOR) {
                let parent = &name[..i];
                if !subscribed.contains(&parent)
                    && names::matches(full.as_bytes(), parent.as_bytes())
                    && !parents.contains(&parent)
                {
                    parents.push(parent);
                }
            }
        }
        let mut out = Vec::new();
        for parent in parents {
            out.extend_from_slice(b"* LSUB (\\Noselect) \"/\" ");
            self.put_mailbox(&mut out, parent);
            out.extend_from_slice(b"\r\n");
        }
        for name in subscribed {
            if names::matches(full.as_bytes(), name.as_bytes()) {
                out.extend_from_slice(b"* LSUB () \"/\" ");
                self.put_mailbox(&mut out, name);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.conn.write_buffered(&out).await?;
        Ok(Outcome::Ok("LSUB completed".into()))
    }
}
