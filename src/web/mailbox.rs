//! Folders and message lists: the sidebar's unread counts, one page of a
//! folder (newest first) with sender, subject, date, size, attachment mark
//! and unread/flagged state, search over from, to, subject and text, and
//! the actions on selected messages (read/unread, flag, move, delete to
//! Trash, delete for good from Trash), and what the user's mail takes of
//! their quota. Every action is a POST with the session's CSRF token.

use super::layout::{self, FolderView, folder_url, query_escape};
use super::session::User;
use super::{Ctx, WebError};
use crate::config::ByteSize;
use crate::context::ServerContext;
use crate::store::{Flag, MessageMeta, Quota, SPECIAL_FOLDERS, Store};
use axum::Form;
use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use mail_parser::{MessageParser, MimeHeaders};
use maud::html;
use serde::Deserialize;

/// Messages per page.
pub const PAGE_SIZE: usize = 50;
/// Header bytes read for a list line.
const HEADER_LIMIT: usize = 64 * 1024;
/// Bytes of one message searched (larger messages are searched in their start).
const SEARCH_LIMIT: usize = 2 * 1024 * 1024;

/// The sidebar: special folders first in their usual order, then the rest.
pub async fn folder_views(store: &Store, user: &str) -> Result<Vec<FolderView>, WebError> {
    let mut folders = store.folders(user).await?;
    let rank = |n: &str| {
        SPECIAL_FOLDERS
            .iter()
            .position(|(s, _)| *s == n)
            .unwrap_or(SPECIAL_FOLDERS.len())
    };
    folders.sort_by(|a, b| (rank(&a.name), &a.name).cmp(&(rank(&b.name), &b.name)));
    let mut out = Vec::with_capacity(folders.len());
    for f in folders {
        let messages = store.messages(user, &f.name).await?;
        let unread = messages
            .iter()
            .filter(|m| !has_flag(m, Flag::SEEN) && !has_flag(m, Flag::DELETED))
            .count();
        out.push(FolderView {
            name: f.name,
            unread,
            total: messages.len(),
        });
    }
    Ok(out)
}

pub fn has_flag(m: &MessageMeta, flag: &str) -> bool {
    m.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

/// One line of a message list.
struct Summary {
    meta: MessageMeta,
    from: String,
    subject: String,
    date: i64,
    attachment: bool,
}

/// The first bytes of a message, up to the end of its header section.
pub async fn read_head(store: &Store, blob: u64) -> Result<Vec<u8>, WebError> {
    let mut out = Vec::new();
    let mut parts = store.blob_parts(blob).await?;
    while let Some(part) = parts.next_part().await {
        out.extend_from_slice(&part?);
        if out.windows(4).any(|w| w == b"\r\n\r\n") || out.len() >= HEADER_LIMIT {
            break;
        }
    }
    Ok(out)
}

/// The first `limit` bytes of a message.
pub async fn read_start(store: &Store, blob: u64, limit: usize) -> Result<Vec<u8>, WebError> {
    let mut out = Vec::new();
    let mut parts = store.blob_parts(blob).await?;
    while let Some(part) = parts.next_part().await {
        out.extend_from_slice(&part?);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// "Name" or address of the first From.
pub fn display_from(addr: Option<&mail_parser::Address>) -> String {
    addr.and_then(|a| a.first())
        .map(|a| {
            a.name()
                .filter(|n| !n.trim().is_empty())
                .or(a.address())
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

async fn summarise(store: &Store, meta: MessageMeta) -> Result<Summary, WebError> {
    let head = read_head(store, meta.blob).await?;
    let parsed = MessageParser::new().parse_headers(&head[..]);
    let (from, subject, date, attachment) = match &parsed {
        Some(m) => (
            display_from(m.from()),
            m.subject().unwrap_or("").to_string(),
            m.date()
                .map(|d| d.to_timestamp())
                .unwrap_or(meta.internal_date),
            m.content_type().is_some_and(|c| {
                c.ctype().eq_ignore_ascii_case("multipart")
                    && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("mixed"))
            }),
        ),
        None => (String::new(), String::new(), meta.internal_date, false),
    };
    Ok(Summary {
        meta,
        from,
        subject,
        date,
        attachment,
    })
}

/// Does a message match every word of the query (in from, to, cc, subject or text)?
async fn matches(store: &Store, meta: &MessageMeta, words: &[String]) -> Result<bool, WebError> {
    let raw = read_start(store, meta.blob, SEARCH_LIMIT).await?;
    let Some(m) = MessageParser::default().parse(&raw[..]) else {
        return Ok(false);
    };
    let mut hay = String::new();
    for a in [m.from(), m.to(), m.cc()].into_iter().flatten() {
        for addr in a.iter() {
            hay.push_str(addr.name().unwrap_or(""));
            hay.push(' ');
            hay.push_str(addr.address().unwrap_or(""));
            hay.push(' ');
        }
    }
    hay.push_str(m.subject().unwrap_or(""));
    hay.push(' ');
    if let Some(t) = m.body_text(0) {
        hay.push_str(&t);
    }
    let hay = hay.to_lowercase();
    Ok(words.iter().all(|w| hay.contains(w.as_str())))
}

#[derive(Deserialize)]
pub struct FolderQuery {
    #[serde(default = "inbox")]
    name: String,
    #[serde(default)]
    page: usize,
    #[serde(default)]
    q: String,
    #[serde(default)]
    note: String,
}

fn inbox() -> String {
    "INBOX".into()
}

/// What a list page shows, computed off the async runtime.
struct Listing {
    folders: Vec<FolderView>,
    lines: Vec<Summary>,
    total: usize,
}

async fn list(ctx: &ServerContext, user: &str, q: &FolderQuery) -> Result<Listing, WebError> {
    let store = &ctx.store;
    if store.folder(user, &q.name).await?.is_none() {
        return Err(WebError::NotFound);
    }
    let folders = folder_views(store, user).await?;
    let mut metas = store.messages(user, &q.name).await?;
    metas.reverse();
    let words: Vec<String> = q.q.split_whitespace().map(str::to_lowercase).collect();
    if !words.is_empty() {
        let mut found = Vec::new();
        for m in metas {
            if matches(store, &m, &words).await? {
                found.push(m);
            }
        }
        metas = found;
    }
    let total = metas.len();
    let mut lines = Vec::with_capacity(PAGE_SIZE);
    for m in metas
        .into_iter()
        .skip(q.page.saturating_mul(PAGE_SIZE))
        .take(PAGE_SIZE)
    {
        lines.push(summarise(store, m).await?);
    }
    Ok(Listing {
        folders,
        lines,
        total,
    })
}

pub async fn folder_page(
    ctx: Ctx,
    user: User,
    Query(q): Query<FolderQuery>,
) -> Result<Response, WebError> {
    let listing = list(&ctx.0, &user.account, &q).await;
    let quota = ctx.0.store.quota(&user.account).await?;
    let Listing {
        folders,
        lines,
        total,
    } = listing?;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let folder = &q.name;
    let others: Vec<&FolderView> = folders.iter().filter(|f| &f.name != folder).collect();
    let page_url = |p: usize| format!("{}&page={p}&q={}", folder_url(folder), query_escape(&q.q));
    let title = if q.q.is_empty() {
        folder.clone()
    } else {
        format!("Search “{}” in {folder}", q.q)
    };
    let content = html! {
        @if !q.note.is_empty() { p.flash role="status" { (q.note) } }
        form method="post" action="/action" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="folder" value=(folder);
            div.toolbar {
                h1 { (title) " " small.clip { "(" (total) ")" } }
                button type="submit" name="op" value="seen" { "Mark read" }
                button type="submit" name="op" value="unseen" { "Mark unread" }
                button type="submit" name="op" value="flag" { "Flag" }
                select name="target" aria-label="Move to" {
                    @for f in &others { option value=(f.name) { (f.name) } }
                }
                button type="submit" name="op" value="move" { "Move" }
                button.danger type="submit" name="op" value="delete" { "Delete" }
            }
            @if lines.is_empty() {
                p.empty { @if q.q.is_empty() { "No messages in this folder." } @else { "No messages match." } }
            } @else {
                table.messages {
                    @for s in &lines {
                        @let unread = !has_flag(&s.meta, Flag::SEEN);
                        @let url = format!("/message?folder={}&uid={}", query_escape(folder), s.meta.uid);
                        tr class=@if unread { "unread" } @else { "read" } {
                            td.check { input type="checkbox" name="uid" value=(s.meta.uid) aria-label="Select"; }
                            td.from { (if s.from.is_empty() { "(unknown sender)" } else { &s.from }) }
                            td.subject {
                                a href=(url) {
                                    @if has_flag(&s.meta, Flag::FLAGGED) { span.flag title="Flagged" { "★ " } }
                                    (if s.subject.is_empty() { "(no subject)" } else { &s.subject })
                                    @if s.attachment { " " span.tag title="Has attachments" { "attachment" } }
                                }
                            }
                            td.date { (layout::short_date(s.date)) }
                            td.size { (layout::human_size(s.meta.size)) }
                        }
                    }
                }
            }
        }
        div.pager {
            @if q.page > 0 { a.button href=(page_url(q.page - 1)) { "‹ Newer" } }
            span { "Page " (q.page + 1) " of " (pages) }
            @if q.page + 1 < pages { a.button href=(page_url(q.page + 1)) { "Older ›" } }
        }
        (quota_line(&quota))
    };
    Ok(layout::page(&title, &user, &folders, folder, &q.q, content).into_response())
}

/// "Using 12 MiB of 2 GiB (1%)", with a meter; without a limit the usage.
fn quota_line(quota: &Quota) -> maud::Markup {
    let used = ByteSize(quota.usage.bytes);
    html! {
        @match quota.limit {
            Some(limit) => {
                p.quota {
                    "Using " (used) " of " (ByteSize(limit))
                    " (" (quota.usage.bytes.saturating_mul(100) / limit.max(1)) "%) "
                    meter min="0" max=(limit) value=(quota.usage.bytes.min(limit)) aria-label="Quota used" {}
                }
            }
            None => { p.quota { "Using " (used) " (no quota)" } }
        }
    }
}

/// Applies one action to messages of a folder. Returns what to tell the user.
pub async fn apply(
    store: &Store,
    user: &str,
    folder: &str,
    uids: &[u32],
    op: &str,
    target: &str,
) -> Result<String, WebError> {
    if store.folder(user, folder).await?.is_none() {
        return Err(WebError::NotFound);
    }
    let set = async |add: Option<&str>, remove: Option<&str>| -> Result<(), WebError> {
        for &uid in uids {
            if let Some(m) = store.message(user, folder, uid).await? {
                let mut flags = m.flags.clone();
                if let Some(r) = remove {
                    flags.retain(|f| !f.eq_ignore_ascii_case(r));
                }
                if let Some(a) = add
                    && !flags.iter().any(|f| f.eq_ignore_ascii_case(a))
                {
                    flags.push(a.to_string());
                }
                if flags != m.flags {
                    store.set_flags(user, folder, uid, flags).await?;
                }
            }
        }
        Ok(())
    };
    let n = uids.len();
    match op {
        "seen" => set(Some(Flag::SEEN), None)
            .await
            .map(|_| format!("{n} marked read.")),
        "unseen" => set(None, Some(Flag::SEEN))
            .await
            .map(|_| format!("{n} marked unread.")),
        "flag" => set(Some(Flag::FLAGGED), None)
            .await
            .map(|_| format!("{n} flagged.")),
        "unflag" => set(None, Some(Flag::FLAGGED))
            .await
            .map(|_| format!("{n} unflagged.")),
        "move" => {
            if store.folder(user, target).await?.is_none() {
                return Err(WebError::BadRequest("no such folder".into()));
            }
            if target == folder {
                return Ok("Already there.".into());
            }
            store.move_messages(user, folder, uids, target).await?;
            Ok(format!("{n} moved to {target}."))
        }
        "delete" if folder == "Trash" => {
            store.expunge(user, folder, uids).await?;
            Ok(format!("{n} deleted for good."))
        }
        "delete" => {
            store.move_messages(user, folder, uids, "Trash").await?;
            Ok(format!("{n} moved to Trash."))
        }
        other => Err(WebError::BadRequest(format!("unknown action {other:?}"))),
    }
}

pub async fn action(
    ctx: Ctx,
    user: User,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    user.check_csrf(get("csrf"))?;
    let folder = get("folder").to_string();
    let uids: Vec<u32> = fields
        .iter()
        .filter(|(n, _)| n == "uid")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let op = get("op");
    if uids.is_empty() {
        let to = format!(
            "{}&note={}",
            folder_url(&folder),
            query_escape("Select messages first.")
        );
        return Ok(Redirect::to(&to).into_response());
    }
    let note = apply(&ctx.store, &user.account, &folder, &uids, op, get("target")).await?;
    ctx.store.flush().await?;
    let back_to_message = get("back") == "message" && matches!(op, "flag" | "unflag");
    let to = if back_to_message {
        format!("/message?folder={}&uid={}", query_escape(&folder), uids[0])
    } else {
        format!("{}&note={}", folder_url(&folder), query_escape(&note))
    };
    Ok(Redirect::to(&to).into_response())
}
