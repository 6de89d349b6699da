//! The Vacation page: an automatic reply on or off, an optional first and
//! last day, its subject and text, and how many days pass before the same
//! sender is answered again. Saved into the one script the Filters page
//! writes (`rules.rs`: the vacation section goes first), so neither page
//! undoes the other; the reply itself is decided at delivery by the sieve
//! plugin (RFC 5230 and RFC 3834: never to lists, robots or the null
//! sender, once per sender and period).

use super::filters::{Notes, foreign_notice, replace_box};
use super::layout;
use super::mailbox::folder_views;
use super::rules::Vacation;
use super::script_state::{self, Current, Guard, Refused};
use super::session::User;
use super::{Ctx, WebError};
use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

fn status(v: &Vacation) -> String {
    if !v.on {
        return "The vacation reply is off.".into();
    }
    match (&v.start, &v.end) {
        (None, None) => "The vacation reply is on.".into(),
        (Some(s), None) => format!("The vacation reply is on from {s}."),
        (None, Some(e)) => format!("The vacation reply is on until {e}."),
        (Some(s), Some(e)) => format!("The vacation reply is on from {s} to {e}."),
    }
}

pub async fn vacation_page(
    ctx: Ctx,
    user: User,
    Query(q): Query<Notes>,
) -> Result<Response, WebError> {
    let cur = script_state::current(&ctx.store, &user.account).await?;
    let v = cur.web().vacation.unwrap_or_default();
    render(&ctx, &user, &cur, &v, &q).await
}

/// The page with `shown` in the form (what is saved, or what a refused
/// POST sent, so nothing typed is lost).
async fn render(
    ctx: &Ctx,
    user: &User,
    cur: &Current,
    shown: &Vacation,
    notes: &Notes,
) -> Result<Response, WebError> {
    let folders = folder_views(&ctx.store, &user.account).await?;
    let saved = cur.web().vacation.unwrap_or_default();
    let v = shown;
    let content = html! {
        div.toolbar {
            h1 { "Vacation reply" }
            a.button href="/filters" { "Filters" }
        }
        (notes.show())
        (foreign_notice(cur))
        p.status class=@if saved.on { "on" } @else { "off" } { (status(&saved)) }
        form.vacation method="post" action="/vacation" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="base" value=(cur.base);
            label.check { input type="checkbox" name="on" value="yes" checked[v.on]; " Answer incoming mail automatically" }
            div.dates {
                label { span { "First day" } input type="date" name="start" value=(v.start.clone().unwrap_or_default()); }
                label { span { "Last day" } input type="date" name="end" value=(v.end.clone().unwrap_or_default()); }
            }
            label { span { "Subject" } input type="text" name="subject" value=(v.subject) placeholder="Out of office"; }
            label { span { "Text" } textarea name="text" rows="8" placeholder="I am away until Monday and will answer when I am back." { (v.text) } }
            label.days { span { "Answer the same sender again after" } input type="number" name="days" min="1" max="365" value=(v.days); " days" }
            (replace_box(cur))
            div { button.primary type="submit" { "Save" } }
        }
        p.hint {
            "Days are counted in UTC. No reply goes to mailing lists, automatic mail or senders "
            "who did not write to you directly, and each sender gets one per period."
        }
    };
    let status = if notes.error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        layout::page("Vacation reply", user, &folders, "", "", content),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct VacationForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    replace: Option<String>,
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    days: String,
}

impl VacationForm {
    /// The settings as typed, unchecked.
    fn typed(&self) -> Vacation {
        let date = |d: &str| Some(d.trim().to_string()).filter(|d| !d.is_empty());
        Vacation {
            on: self.on.is_some(),
            start: date(&self.start),
            end: date(&self.end),
            subject: self.subject.clone(),
            text: self.text.clone(),
            // Not a number: 0, which the check refuses.
            days: match self.days.trim() {
                "" => 7,
                d => d.parse().unwrap_or(0),
            },
        }
    }
}

async fn apply(ctx: &Ctx, user: &User, f: &VacationForm) -> Result<String, Refused> {
    let v = f.typed().checked().map_err(|e| Refused::User(e.0))?;
    let guard = Guard {
        base: &f.base,
        replace: f.replace.is_some(),
    };
    script_state::update(&ctx.store, &ctx.config.sieve, &user.account, guard, |web| {
        web.vacation = Some(v);
        Ok("Vacation reply saved.".into())
    })
    .await
}

pub async fn change(
    ctx: Ctx,
    user: User,
    Form(f): Form<VacationForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    match apply(&ctx, &user, &f).await {
        // Shown again as typed, on the script as it is now.
        Err(Refused::User(error)) => {
            let cur = script_state::current(&ctx.store, &user.account).await?;
            let notes = Notes {
                note: String::new(),
                error,
            };
            render(&ctx, &user, &cur, &f.typed(), &notes).await
        }
        outcome => Notes::redirect("/vacation", outcome),
    }
}
