//! The compose page (new, reply, reply-all, forward, editing a draft) and
//! its POST: the multipart form with attachments is read, the CSRF token
//! checked, and the message either sent (`send.rs`) or saved to `Drafts`.
//! Replies quote the original and carry In-Reply-To/References; forwards
//! attach the original message whole.

use super::layout;
use super::mailbox::{display_from, folder_views};
use super::message::{AttachmentInfo, attachment, attachment_list, load, parse, text_body};
use super::send::{self, Draft, Upload};
use super::session::User;
use super::{Ctx, WebError};
use crate::store::Flag;
use axum::extract::{Multipart, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct ComposeQuery {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    folder: String,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    to: String,
}

/// Where a reply or forward came from (carried through the form).
#[derive(Default)]
struct Origin {
    folder: String,
    uid: u32,
    mode: String,
    /// Editing a draft: which of its attachments the form keeps (the
    /// `keep` checkboxes), by position.
    keep: Option<Vec<usize>>,
}

impl Origin {
    fn is_draft(&self) -> bool {
        self.mode == "draft" && self.uid > 0
    }
}

/// A draft's attachments, to offer them again when it is edited.
async fn draft_attachments(
    ctx: &Ctx,
    user: &User,
    origin: &Origin,
) -> Result<Vec<AttachmentInfo>, WebError> {
    if !origin.is_draft() {
        return Ok(Vec::new());
    }
    let (_, bytes) = load(&ctx.store, &user.account, &origin.folder, origin.uid).await?;
    Ok(attachment_list(&parse(&bytes)?))
}

fn prefixed(prefix: &str, subject: &str) -> String {
    let lower = subject.trim_start().to_ascii_lowercase();
    if lower.starts_with(&prefix.to_ascii_lowercase()) {
        subject.to_string()
    } else {
        format!("{prefix} {subject}")
    }
}

fn address_list(a: Option<&mail_parser::Address<'_>>, skip: &str) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .filter(|x| !x.eq_ignore_ascii_case(skip))
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// A draft pre-filled from an existing message.
async fn prefill(ctx: &Ctx, user: &User, q: &ComposeQuery) -> Result<Draft, WebError> {
    let mut d = Draft {
        to: q.to.clone(),
        ..Draft::default()
    };
    if q.mode.is_empty() {
        return Ok(d);
    }
    let (_, bytes) = load(&ctx.store, &user.account, &q.folder, q.uid).await?;
    let m = parse(&bytes)?;
    let subject = m.subject().unwrap_or("").to_string();
    let text = text_body(&m);
    let me = user.account.as_str();
    let msgid = m.message_id().map(|i| format!("<{i}>")).unwrap_or_default();
    match q.mode.as_str() {
        "reply" | "replyall" => {
            let reply_to = m.reply_to().or(m.from());
            let mut to = address_list(reply_to, "");
            if q.mode == "replyall" {
                to.retain(|a| !a.eq_ignore_ascii_case(me));
                for a in address_list(m.to(), me) {
                    if !to.contains(&a) {
                        to.push(a);
                    }
                }
                d.cc = address_list(m.cc(), me).join(", ");
            }
            d.to = to.join(", ");
            d.subject = prefixed("Re:", &subject);
            let who = display_from(m.from());
            let when = m.date().map(|t| t.to_rfc822()).unwrap_or_default();
            let quoted: Vec<String> = text.lines().map(|l| format!("> {l}")).collect();
            d.body = format!("\n\nOn {when}, {who} wrote:\n{}\n", quoted.join("\n"));
            d.in_reply_to = msgid.clone();
            let mut refs: Vec<String> = m
                .references()
                .as_text_list()
                .map(|l| l.iter().map(|r| format!("<{r}>")).collect())
                .or_else(|| m.references().as_text().map(|r| vec![format!("<{r}>")]))
                .unwrap_or_default();
            if !msgid.is_empty() {
                refs.push(msgid);
            }
            d.references = refs.join(" ");
        }
        "forward" => {
            d.subject = prefixed("Fwd:", &subject);
            d.body = format!(
                "\n\n---------- Forwarded message ----------\nFrom: {}\nDate: {}\nSubject: {}\n\n{}",
                display_from(m.from()),
                m.date().map(|t| t.to_rfc822()).unwrap_or_default(),
                subject,
                text
            );
        }
        "draft" => {
            d.to = address_list(m.to(), "").join(", ");
            d.cc = address_list(m.cc(), "").join(", ");
            d.subject = subject;
            d.body = text;
        }
        _ => return Err(WebError::BadRequest("unknown compose mode".into())),
    }
    Ok(d)
}

fn form(
    user: &User,
    d: &Draft,
    origin: &Origin,
    carried: &[AttachmentInfo],
    error: Option<&str>,
) -> Markup {
    html! {
        @if let Some(e) = error { p.notice.error role="alert" { (e) } }
        form.compose method="post" action="/send" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="in_reply_to" value=(d.in_reply_to);
            input type="hidden" name="references" value=(d.references);
            input type="hidden" name="origin_folder" value=(origin.folder);
            input type="hidden" name="origin_uid" value=(origin.uid);
            input type="hidden" name="origin_mode" value=(origin.mode);
            label { span { "To" } input type="text" name="to" value=(d.to) autocomplete="off" placeholder="name@example.com, …"; }
            label { span { "Cc" } input type="text" name="cc" value=(d.cc) autocomplete="off"; }
            label { span { "Bcc" } input type="text" name="bcc" value=(d.bcc) autocomplete="off"; }
            label { span { "Subject" } input type="text" name="subject" value=(d.subject); }
            textarea name="body" aria-label="Message" { (d.body) }
            @if origin.mode == "forward" { p.clip { "The original message is attached." } }
            @if !carried.is_empty() {
                fieldset.carried {
                    legend { "Attached" }
                    @for a in carried {
                        @let kept = origin.keep.as_ref().is_none_or(|k| k.contains(&a.index));
                        label.clip {
                            input type="checkbox" name="keep" value=(a.index) checked[kept];
                            " " (a.name) " (" (a.content_type) ", " (a.size) " bytes)"
                        }
                    }
                }
            }
            label { span { "Attach" } input type="file" name="attachment" multiple; }
            div.toolbar {
                button.primary type="submit" name="action" value="send" { "Send" }
                button type="submit" name="action" value="draft" { "Save draft" }
            }
        }
    }
}

async fn page(
    ctx: &Ctx,
    user: &User,
    d: &Draft,
    origin: &Origin,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let folders = folder_views(&ctx.store, &user.account).await?;
    let carried = draft_attachments(ctx, user, origin).await?;
    let content = html! {
        div.toolbar { h1 { "Compose" } }
        (form(user, d, origin, &carried, error))
    };
    Ok(layout::page("Compose", user, &folders, "", "", content).into_response())
}

pub async fn compose_page(
    ctx: Ctx,
    user: User,
    Query(q): Query<ComposeQuery>,
) -> Result<Response, WebError> {
    let d = prefill(&ctx, &user, &q).await?;
    let origin = Origin {
        folder: q.folder.clone(),
        uid: q.uid,
        mode: q.mode.clone(),
        keep: None,
    };
    page(&ctx, &user, &d, &origin, None).await
}

async fn read_form(mut mp: Multipart) -> Result<(Draft, Origin, String, String), WebError> {
    let bad = |e: axum::extract::multipart::MultipartError| WebError::BadRequest(e.body_text());
    let mut d = Draft::default();
    let mut o = Origin::default();
    let (mut csrf, mut action) = (String::new(), String::new());
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "attachment" {
            let file = field.file_name().unwrap_or("").to_string();
            let ctype = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let data = field.bytes().await.map_err(bad)?;
            if !file.is_empty() || !data.is_empty() {
                d.attachments.push(Upload {
                    name: if file.is_empty() {
                        "attachment".into()
                    } else {
                        file
                    },
                    content_type: ctype,
                    data: data.to_vec(),
                });
            }
            continue;
        }
        let value = field.text().await.map_err(bad)?;
        match name.as_str() {
            "csrf" => csrf = value,
            "action" => action = value,
            "to" => d.to = value,
            "cc" => d.cc = value,
            "bcc" => d.bcc = value,
            "subject" => d.subject = value,
            "body" => d.body = value,
            "in_reply_to" => d.in_reply_to = value,
            "references" => d.references = value,
            "origin_folder" => o.folder = value,
            "origin_uid" => o.uid = value.parse().unwrap_or(0),
            "origin_mode" => o.mode = value,
            "keep" => {
                if let Ok(i) = value.parse() {
                    o.keep.get_or_insert_with(Vec::new).push(i);
                }
            }
            _ => {}
        }
    }
    Ok((d, o, csrf, action))
}

pub async fn send(ctx: Ctx, user: User, mp: Multipart) -> Result<Response, WebError> {
    let (mut d, origin, csrf, action) = read_form(mp).await?;
    user.check_csrf(&csrf)?;
    let from_message = !origin.mode.is_empty() && origin.uid > 0;
    // Unticked boxes are not sent: no `keep` field at all means none kept.
    let mut origin = origin;
    if origin.is_draft() && origin.keep.is_none() {
        origin.keep = Some(Vec::new());
    }
    let carried = carried_attachments(&ctx, &user, &origin).await?;
    let own_uploads = d.attachments.len();
    d.attachments.extend(carried);
    if from_message && origin.mode == "forward" {
        let (_, bytes) = load(&ctx.store, &user.account, &origin.folder, origin.uid).await?;
        let name = parse(&bytes)?
            .subject()
            .map(|s| format!("{s}.eml"))
            .unwrap_or_else(|| "forwarded.eml".into());
        d.attachments.push(Upload {
            name,
            content_type: "message/rfc822".into(),
            data: bytes,
        });
    }
    if action == "draft" {
        let bytes = send::build(&d, &user.account, &ctx.config.hostname)?;
        send::keep_copy(
            &ctx,
            &user.account,
            "Drafts",
            &bytes,
            vec![Flag::DRAFT.into(), Flag::SEEN.into()],
        )
        .await?;
        if from_message && origin.mode == "draft" {
            ctx.store
                .expunge(&user.account, &origin.folder, &[origin.uid])
                .await?;
        }
        ctx.store.flush().await?;
        return Ok(Redirect::to("/folder?name=Drafts&note=Draft%20saved.").into_response());
    }
    match send::send(&ctx, &user.account, &user.conn, &d).await {
        Ok(note) => {
            // The message is sent; what follows is bookkeeping, and a
            // failure there must not look like a failed send.
            if from_message && let Err(e) = after_send(&ctx, &user.account, &origin).await {
                tracing::warn!(user = %user.account, "web: after sending: {e}");
            }
            if let Err(e) = ctx.store.flush().await {
                tracing::warn!(user = %user.account, "web: after sending: {e}");
            }
            let to = format!("/folder?name=INBOX&note={}", layout::query_escape(&note));
            Ok(Redirect::to(&to).into_response())
        }
        Err(WebError::Send(e) | WebError::BadRequest(e)) => {
            // Forwarded originals and a draft's kept attachments are
            // attached again on the next try.
            d.attachments.truncate(own_uploads);
            let mut r = page(&ctx, &user, &d, &origin, Some(&e)).await?;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

/// The attachments of the draft being edited that the form kept.
async fn carried_attachments(
    ctx: &Ctx,
    user: &User,
    origin: &Origin,
) -> Result<Vec<send::Upload>, WebError> {
    let keep = match &origin.keep {
        Some(k) if origin.is_draft() && !k.is_empty() => k,
        _ => return Ok(Vec::new()),
    };
    let (_, bytes) = load(&ctx.store, &user.account, &origin.folder, origin.uid).await?;
    let m = parse(&bytes)?;
    Ok(keep.iter().filter_map(|&i| attachment(&m, i)).collect())
}

/// Marks a replied-to message `\Answered`; removes a draft that was sent.
async fn after_send(
    ctx: &Ctx,
    user: &str,
    origin: &Origin,
) -> Result<(), crate::store::StoreError> {
    if origin.mode.starts_with("reply")
        && let Some(m) = ctx.store.message(user, &origin.folder, origin.uid).await?
        && !m.flags.iter().any(|f| f == Flag::ANSWERED)
    {
        let mut flags = m.flags.clone();
        flags.push(Flag::ANSWERED.into());
        ctx.store
            .set_flags(user, &origin.folder, origin.uid, flags)
            .await?;
    }
    if origin.mode == "draft" {
        ctx.store
            .expunge(user, &origin.folder, &[origin.uid])
            .await?;
    }
    Ok(())
}
