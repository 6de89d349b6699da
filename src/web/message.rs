//! Reading one message. The page shows the headers, the attachments and
//! the actions; a plain-text body is put in the page as (escaped) text, an
//! HTML body is cleaned (`sanitize.rs`) and served on its own route,
//! `/message/body`, to an `<iframe sandbox>` under a CSP of its own that
//! allows no script, no remote loads (unless the reader clicked "load
//! images") and framing only by our pages. Attachments are always
//! downloads (`Content-Disposition: attachment`, `nosniff`).
//! Opening a message marks it `\Seen`, which IMAP sessions see.

use super::layout::{self, query_escape};
use super::mailbox::{folder_views, has_flag};
use super::sanitize::{INLINE_IMAGE_TYPES, InlineImages, sanitize_html};
use super::security::OwnFraming;
use super::session::User;
use super::{Ctx, WebError};
use crate::store::{Flag, MessageMeta, Store};
use axum::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use maud::{Markup, html};
use serde::Deserialize;

/// Largest inline image embedded in a body.
const INLINE_IMAGE_LIMIT: usize = 5 * 1024 * 1024;

#[derive(Deserialize)]
pub struct MessageQuery {
    pub folder: String,
    pub uid: u32,
    #[serde(default)]
    pub images: u8,
    #[serde(default)]
    pub n: usize,
}

/// A message of the logged-in user with its bytes.
pub async fn load(
    store: &Store,
    user: &str,
    folder: &str,
    uid: u32,
) -> Result<(MessageMeta, Vec<u8>), WebError> {
    let meta = store
        .message(user, folder, uid)
        .await?
        .ok_or(WebError::NotFound)?;
    let bytes = store.read_blob(meta.blob).await?;
    Ok((meta, bytes))
}

pub fn parse(bytes: &[u8]) -> Result<Message<'_>, WebError> {
    MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| WebError::BadRequest("the message cannot be parsed".into()))
}

/// The first HTML body, if the message has a real one.
fn html_body<'a>(m: &'a Message<'a>) -> Option<&'a str> {
    m.html_bodies().find_map(|p| match &p.body {
        PartType::Html(h) => Some(h.as_ref()),
        _ => None,
    })
}

/// The plain text to show when there is no HTML body.
pub fn text_body(m: &Message<'_>) -> String {
    m.body_text(0).map(|t| t.into_owned()).unwrap_or_default()
}

fn inline_images(m: &Message<'_>) -> InlineImages {
    let mut out = InlineImages::new();
    for part in &m.parts {
        let Some(cid) = part.content_id() else {
            continue;
        };
        let ctype = content_type(part);
        let data = part.contents();
        if INLINE_IMAGE_TYPES.contains(&ctype.as_str()) && data.len() <= INLINE_IMAGE_LIMIT {
            let b64 = base64::engine::general_purpose::STANDARD.encode(data);
            let key = cid
                .trim_matches(|c| c == '<' || c == '>')
                .to_ascii_lowercase();
            out.insert(key, format!("data:{ctype};base64,{b64}"));
        }
    }
    out
}

/// `type/subtype` of a part, lower-case, only token characters; else
/// `application/octet-stream`.
pub fn content_type<'x>(part: &impl MimeHeaders<'x>) -> String {
    let t = part
        .content_type()
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match t.split_once('/') {
        Some((a, b)) if token(a) && token(b) => t,
        _ => "application/octet-stream".into(),
    }
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> String {
    a.map(|a| {
        a.iter()
            .map(|x| match (x.name(), x.address()) {
                (Some(n), Some(ad)) if !n.trim().is_empty() => format!("{n} <{ad}>"),
                (_, Some(ad)) => ad.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

fn frame_url(q: &MessageQuery, images: bool) -> String {
    format!(
        "/message/body?folder={}&uid={}{}",
        query_escape(&q.folder),
        q.uid,
        if images { "&images=1" } else { "" }
    )
}

pub async fn message_page(
    ctx: Ctx,
    user: User,
    Query(q): Query<MessageQuery>,
) -> Result<Response, WebError> {
    let store = &ctx.store;
    let (meta, bytes) = load(store, &user.account, &q.folder, q.uid).await?;
    if !has_flag(&meta, Flag::SEEN) {
        let mut flags = meta.flags.clone();
        flags.push(Flag::SEEN.into());
        store
            .set_flags(&user.account, &q.folder, q.uid, flags)
            .await?;
    }
    let m = parse(&bytes)?;
    let folders = folder_views(store, &user.account).await?;
    let subject = m.subject().unwrap_or("(no subject)").to_string();
    let load_images = q.images == 1;
    let html = html_body(&m);
    let blocked = html
        .map(|h| sanitize_html(h, &inline_images(&m), false).blocked_images)
        .unwrap_or(0);
    let base = format!("folder={}&uid={}", query_escape(&q.folder), q.uid);
    let flagged = has_flag(&meta, Flag::FLAGGED);
    let body: Markup = match html {
        Some(_) => html! {
            @if blocked > 0 && !load_images {
                p.notice {
                    (blocked) " remote image(s) blocked to protect your privacy. "
                    a href={ "/message?" (base) "&images=1" } { "Load images" }
                }
            }
            iframe.body sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer"
                title="Message body" src=(frame_url(&q, load_images)) {}
        },
        None => html! { pre.plain { (text_body(&m)) } },
    };
    let attachments: Vec<(usize, String, String, usize)> = attachment_list(&m)
        .into_iter()
        .map(|a| (a.index, a.name, a.content_type, a.size))
        .collect();
    let others: Vec<&String> = folders
        .iter()
        .map(|f| &f.name)
        .filter(|n| **n != q.folder)
        .collect();
    let why = super::why::section(store, &user.account, meta.blob).await;
    let content = html! {
        div.toolbar.actions {
            a.button href=(layout::folder_url(&q.folder)) { "‹ " (q.folder) }
            a.button href={ "/compose?mode=reply&" (base) } { "Reply" }
            a.button href={ "/compose?mode=replyall&" (base) } { "Reply all" }
            a.button href={ "/compose?mode=forward&" (base) } { "Forward" }
            form method="post" action="/action" {
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="folder" value=(q.folder);
                input type="hidden" name="uid" value=(q.uid);
                input type="hidden" name="back" value="message";
                @if flagged { button type="submit" name="op" value="unflag" { "★ Unflag" } }
                @else { button type="submit" name="op" value="flag" { "☆ Flag" } }
                " "
                button type="submit" name="op" value="unseen" { "Mark unread" }
                " "
                select name="target" aria-label="Move to" {
                    @for f in &others { option value=(f) { (f) } }
                }
                " "
                button type="submit" name="op" value="move" { "Move" }
                " "
                button.danger type="submit" name="op" value="delete" { "Delete" }
            }
        }
        article.message {
            h1 { (subject) }
            dl.headers {
                dt { "From" } dd { (addresses(m.from())) }
                dt { "To" } dd { (addresses(m.to())) }
                @if m.cc().is_some() { dt { "Cc" } dd { (addresses(m.cc())) } }
                dt { "Date" } dd { (m.date().map(|d| d.to_rfc822()).unwrap_or_default()) }
            }
            @if !attachments.is_empty() {
                ul.attachments aria-label="Attachments" {
                    @for (i, name, ctype, size) in &attachments {
                        li { a href={ "/message/part?" (base) "&n=" (i) } title=(ctype) {
                            (name) " (" (layout::human_size(*size as u64)) ")"
                        } }
                    }
                }
            }
            (body)
            p { a href={ "/message/raw?" (base) } { "Download original" } " · " a href="#why" { "Why is this here?" } }
            (why)
        }
    };
    Ok(layout::page(&subject, &user, &folders, &q.folder, "", content).into_response())
}

/// The sanitised HTML body, for the sandboxed frame only.
pub async fn body_frame(
    ctx: Ctx,
    user: User,
    Query(q): Query<MessageQuery>,
) -> Result<Response, WebError> {
    let (_, bytes) = load(&ctx.store, &user.account, &q.folder, q.uid).await?;
    let m = parse(&bytes)?;
    let load_images = q.images == 1;
    let clean = match html_body(&m) {
        Some(h) => sanitize_html(h, &inline_images(&m), load_images).html,
        None => html! { pre { (text_body(&m)) } }.into_string(),
    };
    let doc = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">\
         <style>body{{font-family:system-ui,sans-serif;margin:12px;overflow-wrap:anywhere;color:#1d2430}}\
         img{{max-width:100%;height:auto}}pre{{white-space:pre-wrap}}</style></head><body>{clean}</body></html>"
    );
    let img = if load_images {
        "img-src data: https: http:"
    } else {
        "img-src data:"
    };
    let csp = format!(
        "default-src 'none'; {img}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
    );
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], doc).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response.extensions_mut().insert(OwnFraming);
    Ok(response)
}

/// `attachment; filename="…"; filename*=UTF-8''…` with the name made safe.
pub fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let v = format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        query_escape(name)
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("attachment"))
}

fn download(ctype: &str, name: &str, data: Vec<u8>) -> Response {
    let ctype = HeaderValue::from_str(ctype)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = data.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, ctype);
    h.insert(header::CONTENT_DISPOSITION, disposition(name));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Should a browser ever show it anyway: no script, no loads, no framing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox; frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response.extensions_mut().insert(OwnFraming);
    response
}

/// One attachment, as a download.
pub async fn part(
    ctx: Ctx,
    user: User,
    Query(q): Query<MessageQuery>,
) -> Result<Response, WebError> {
    let (_, bytes) = load(&ctx.store, &user.account, &q.folder, q.uid).await?;
    let m = parse(&bytes)?;
    let a = attachment(&m, q.n).ok_or(WebError::NotFound)?;
    Ok(download(&a.content_type, &a.name, a.data))
}

/// The whole message as stored, as a download.
pub async fn raw(
    ctx: Ctx,
    user: User,
    Query(q): Query<MessageQuery>,
) -> Result<Response, WebError> {
    let (_, bytes) = load(&ctx.store, &user.account, &q.folder, q.uid).await?;
    Ok(download(
        "message/rfc822",
        &format!("message-{}.eml", q.uid),
        bytes,
    ))
}

/// One attachment of a message, as the page lists it.
pub struct AttachmentInfo {
    /// Its position among the message's attachments.
    pub index: usize,
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

fn attachment_name(p: &mail_parser::MessagePart<'_>, i: usize) -> String {
    p.attachment_name()
        .map(str::to_string)
        .or_else(|| {
            p.message()
                .and_then(|s| s.subject())
                .map(|s| format!("{s}.eml"))
        })
        .unwrap_or_else(|| format!("attachment-{}", i + 1))
}

/// The attachments of a message, in order.
pub fn attachment_list(m: &Message<'_>) -> Vec<AttachmentInfo> {
    m.attachments()
        .enumerate()
        .map(|(i, p)| AttachmentInfo {
            index: i,
            name: attachment_name(p, i),
            content_type: content_type(p),
            size: p.contents().len(),
        })
        .collect()
}

/// Attachment `n` of a message, decoded, as an upload (to download it, or
/// to carry it into a draft being edited).
pub fn attachment(m: &Message<'_>, n: usize) -> Option<super::send::Upload> {
    let p = m.attachments().nth(n)?;
    Some(super::send::Upload {
        name: attachment_name(p, n),
        content_type: content_type(p),
        data: p.contents().to_vec(),
    })
}
