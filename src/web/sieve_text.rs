//! The raw editor: the user's active Sieve script as text, to check or
//! save. Both compile it with the check ManageSieve's PUTSCRIPT and
//! `tern sieve put` use (`store::check_script`, tern-sieve); a script that
//! does not compile is never saved: the page shows it again with the
//! error's line and column and the offending line marked. A save stores it
//! under the active script's name (or `webmail`) and activates it; once
//! changed by hand it is the user's own, which the Filters and Vacation
//! pages then say rather than rewrite.

use super::filters::Notes;
use super::layout::{self, query_escape};
use super::mailbox::folder_views;
use super::rules::Read;
use super::script_state::{self, Current, Refused};
use super::session::User;
use super::{Ctx, WebError};
use crate::store::{SieveError, check_script};
use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// A compile error: its position and message.
struct Problem {
    line: u32,
    col: u32,
    message: String,
}

/// The offending line with a caret under the column.
fn marked(text: &str, p: &Problem) -> Markup {
    let line = text
        .lines()
        .nth(p.line.saturating_sub(1) as usize)
        .unwrap_or_default();
    let caret: String = line
        .chars()
        .take(p.col.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    html! { pre.error-at { (line) "\n" (caret) "^" } }
}

fn editor(
    user: &User,
    cur: &Current,
    base: &str,
    text: &str,
    problem: Option<&Problem>,
    error: Option<&str>,
    notes: &Notes,
) -> Markup {
    let name = cur.active.as_ref().map(|(n, _)| n.as_str());
    html! {
        div.toolbar {
            h1 { "Sieve script" }
            a.button href="/filters" { "Filters" }
            a.button href="/vacation" { "Vacation reply" }
        }
        (notes.show())
        @if let Some(p) = problem {
            div.notice.error.compile role="alert" {
                p { strong { "Line " (p.line) ", column " (p.col) ": " } (p.message) }
                (marked(text, p))
                p { "Nothing was saved." }
            }
        }
        @if let Some(e) = error { p.notice.error role="alert" { (e) } }
        p.hint {
            @match name {
                Some(n) => { "Your active script is “" (n) "”." }
                None => { "You have no active script; saving makes this one, “" (script_state::SCRIPT_NAME) "”." }
            }
            @if matches!(cur.read, Read::Ours(_)) {
                " The Filters and Vacation pages wrote it: change it here and they will treat it as your own script."
            }
            " It is the same script Sieve clients (ManageSieve) see."
        }
        form.script method="post" action="/filters/script" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="base" value=(base);
            textarea name="text" rows="22" spellcheck="false" aria-label="Sieve script" { (text) }
            div.buttons {
                button type="submit" name="op" value="check" { "Check" }
                button.primary type="submit" name="op" value="save" { "Save and activate" }
            }
        }
    }
}

pub async fn script_page(
    ctx: Ctx,
    user: User,
    Query(q): Query<Notes>,
) -> Result<Response, WebError> {
    let folders = folder_views(&ctx.store, &user.account).await?;
    let cur = script_state::current(&ctx.store, &user.account).await?;
    let text = cur
        .active
        .as_ref()
        .map(|(_, t)| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_default();
    let content = editor(&user, &cur, &cur.base, &text, None, None, &q);
    Ok(layout::page("Sieve script", &user, &folders, "", "", content).into_response())
}

#[derive(Deserialize)]
pub struct ScriptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    text: String,
}

/// What a POST shows when it does not redirect: the editor with the text
/// as sent and the outcome.
struct Shown<'a> {
    base: &'a str,
    text: &'a str,
    problem: Option<Problem>,
    error: Option<String>,
    note: &'a str,
}

async fn show(ctx: &Ctx, user: &User, cur: &Current, s: Shown<'_>) -> Result<Response, WebError> {
    let folders = folder_views(&ctx.store, &user.account).await?;
    let notes = Notes {
        note: s.note.to_string(),
        error: String::new(),
    };
    let failed = s.problem.is_some() || s.error.is_some();
    let content = editor(
        user,
        cur,
        s.base,
        s.text,
        s.problem.as_ref(),
        s.error.as_deref(),
        &notes,
    );
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        layout::page("Sieve script", user, &folders, "", "", content),
    )
        .into_response())
}

pub async fn change(ctx: Ctx, user: User, Form(f): Form<ScriptForm>) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    let limits = &ctx.config.sieve;
    let cur = script_state::current(&ctx.store, &user.account).await?;
    // Browsers send CRLF line ends; keep the script as it was typed.
    let text = f.text.replace("\r\n", "\n");
    let shown = |problem: Option<Problem>, error: Option<String>, note: &'static str| Shown {
        base: &f.base,
        text: &text,
        problem,
        error,
        note,
    };
    match check_script(text.as_bytes(), limits) {
        Err(SieveError::Compile(c)) => {
            let p = Problem {
                line: c.pos.line,
                col: c.pos.col,
                message: c.message,
            };
            return show(&ctx, &user, &cur, shown(Some(p), None, "")).await;
        }
        Err(e) => return show(&ctx, &user, &cur, shown(None, Some(e.to_string()), "")).await,
        Ok(()) => {}
    }
    if f.op != "save" {
        let note = "The script compiles. It is not saved yet.";
        return show(&ctx, &user, &cur, shown(None, None, note)).await;
    }
    if let Err(e) = script_state::check_base(&cur, &f.base) {
        let Refused::User(e) = e else {
            return Err(e.into());
        };
        // Shown on the script as it is now: saving again is deliberate.
        let s = Shown {
            base: &cur.base,
            ..shown(None, Some(e), "")
        };
        return show(&ctx, &user, &cur, s).await;
    }
    let name = cur
        .active
        .as_ref()
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| script_state::SCRIPT_NAME.to_string());
    match script_state::save_text(&ctx.store, limits, &user.account, &name, text.as_bytes()).await {
        Ok(()) => {
            let note = format!("Script “{name}” saved and active.");
            Ok(
                Redirect::to(&format!("/filters/script?note={}", query_escape(&note)))
                    .into_response(),
            )
        }
        Err(Refused::User(e)) => show(&ctx, &user, &cur, shown(None, Some(e), "")).await,
        Err(Refused::Store(e)) => Err(e.into()),
    }
}
