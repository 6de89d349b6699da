//! The Filters page: the user's rules in order (header condition → action),
//! a form to add one, and per rule buttons to move it up or down or remove
//! it. Each change is a POST with the session's CSRF token and the version
//! of the script the page was shown on; the rules are written out as the
//! user's active Sieve script (`rules.rs`, `script_state.rs`). When the
//! active script was not written here (a Sieve client's), the page says so
//! and changes only with "Replace it" ticked.

use super::layout::{self, query_escape};
use super::mailbox::folder_views;
use super::rules::{Act, MAX_RULES, Op, Rule, WebScript};
use super::script_state::{self, Current, Guard, Refused};
use super::session::User;
use super::{Ctx, WebError};
use axum::Form;
use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// `?note=…&error=…` after a POST.
#[derive(Deserialize, Default)]
pub struct Notes {
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub error: String,
}

impl Notes {
    /// Back to `page` after a POST, with its outcome as a note or an error.
    pub fn redirect(page: &str, outcome: Result<String, Refused>) -> Result<Response, WebError> {
        let to = match outcome {
            Ok(note) => format!("{page}?note={}", query_escape(&note)),
            Err(Refused::User(e)) => format!("{page}?error={}", query_escape(&e)),
            Err(Refused::Store(e)) => return Err(e.into()),
        };
        Ok(Redirect::to(&to).into_response())
    }

    pub fn show(&self) -> Markup {
        html! {
            @if !self.note.is_empty() { p.flash role="status" { (self.note) } }
            @if !self.error.is_empty() { p.notice.error role="alert" { (self.error) } }
        }
    }
}

/// The notice over a page whose user has a script of their own.
pub fn foreign_notice(cur: &Current) -> Markup {
    let Some(name) = cur.foreign_name() else {
        return html! {};
    };
    html! {
        div.notice.foreign role="note" {
            p {
                "Your active Sieve script " strong { "“" (name) "”" }
                " was not written by web mail (a Sieve client uploaded it, or it was edited by hand), so its rules are not shown here. "
                a href="/filters/script" { "See or edit it as text." }
            }
            p {
                @if name == script_state::SCRIPT_NAME {
                    "Saving here replaces it; tick “Replace it” to do so."
                } @else {
                    "Saving here makes a new script “" (script_state::SCRIPT_NAME) "” the active one; “" (name) "” stays stored, inactive. Tick “Replace it” to do so."
                }
            }
        }
    }
}

/// The "Replace it" box, only when there is something to replace.
pub fn replace_box(cur: &Current) -> Markup {
    html! {
        @if cur.foreign_name().is_some() {
            label.check { input type="checkbox" name="replace" value="yes"; " Replace it" }
        }
    }
}

/// `list-id` as `List-Id`.
fn header_label(h: &str) -> String {
    h.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn describe(act: &Act) -> Markup {
    html! {
        @match act {
            Act::Move { folder } => { "move to " a href=(layout::folder_url(folder)) { (folder) } }
            Act::Flag { flag } => { "flag as " code { (flag) } }
            Act::Forward { to, keep: true } => { "forward to " (to) " and keep a copy" }
            Act::Forward { to, keep: false } => { "forward to " (to) }
            Act::Discard => { "discard" }
        }
    }
}

fn rule_button(user: &User, cur: &Current, op: &str, i: usize, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action="/filters" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="base" value=(cur.base);
            input type="hidden" name="op" value=(op);
            input type="hidden" name="index" value=(i);
            button class=(class) type="submit" title={ (label) " rule " (i + 1) } { (label) }
        }
    }
}

pub async fn filters_page(
    ctx: Ctx,
    user: User,
    Query(q): Query<Notes>,
) -> Result<Response, WebError> {
    let folders = folder_views(&ctx.store, &user.account).await?;
    let cur = script_state::current(&ctx.store, &user.account).await?;
    let web = cur.web();
    let n = web.rules.len();
    let vacation_on = web.vacation.as_ref().is_some_and(|v| v.on);
    let content = html! {
        div.toolbar {
            h1 { "Filters" }
            a.button href="/vacation" { "Vacation reply" @if vacation_on { " (on)" } }
            a.button href="/filters/script" { "Edit as Sieve" }
        }
        (q.show())
        (foreign_notice(&cur))
        @if n == 0 {
            p.empty { "No rules yet: mail stays in your inbox. Add a rule below." }
        } @else {
            ol.rules {
                @for (i, r) in web.rules.iter().enumerate() {
                    li.rule {
                        div.what {
                            strong.name { (r.name) }
                            span.cond {
                                "If " (header_label(&r.header)) " " (r.op.word()) " “" (r.value) "”, "
                                (describe(&r.act))
                                @if r.stop { ", then stop" }
                            }
                        }
                        div.buttons {
                            @if i > 0 { (rule_button(&user, &cur, "up", i, "Up", "")) }
                            @if i + 1 < n { (rule_button(&user, &cur, "down", i, "Down", "")) }
                            (rule_button(&user, &cur, "delete", i, "Remove", "danger"))
                        }
                    }
                }
            }
        }
        form.rule-new method="post" action="/filters" {
            h2 { "Add a rule" }
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="base" value=(cur.base);
            input type="hidden" name="op" value="add";
            fieldset {
                legend { "If" }
                select name="header" aria-label="Header" {
                    option value="subject" { "Subject" }
                    option value="from" { "From" }
                    option value="to" { "To" }
                    option value="other" { "Other header:" }
                }
                input type="text" name="other" placeholder="List-Id" aria-label="Other header name" size="10";
                select name="match" aria-label="Comparison" {
                    option value="contains" { "contains" }
                    option value="is" { "is" }
                }
                input type="text" name="value" required placeholder="invoice" aria-label="Value";
            }
            fieldset {
                legend { "Then" }
                label.choice { input type="radio" name="action" value="move" checked; " Move to folder " }
                input type="text" name="folder" list="folder-names" placeholder="Invoices" aria-label="Folder";
                datalist id="folder-names" { @for f in &folders { option value=(f.name) {} } }
                label.choice { input type="radio" name="action" value="flag"; " Flag as " }
                input type="text" name="flag" value="\\Flagged" list="flag-names" aria-label="Flag or keyword" size="10";
                datalist id="flag-names" {
                    option value="\\Flagged" {} option value="\\Seen" {} option value="$label1" {} option value="$Junk" {}
                }
                label.choice { input type="radio" name="action" value="forward"; " Forward to " }
                input type="email" name="to" placeholder="someone@example.com" aria-label="Forward to address";
                label.check { input type="checkbox" name="keep" value="yes"; " keep a copy" }
                label.choice { input type="radio" name="action" value="discard"; " Discard" }
            }
            fieldset.last {
                label { span { "Name (optional)" } input type="text" name="name" placeholder="Invoices"; }
                label.check { input type="checkbox" name="stop" value="yes"; " Stop here: no later rule applies" }
                (replace_box(&cur))
                button.primary type="submit" { "Add rule" }
            }
        }
        p.hint {
            "Rules run top to bottom on each new message; a message no rule moves, forwards or discards stays in your inbox. "
            "“is” on From or To compares the address alone."
        }
    };
    Ok(layout::page("Filters", &user, &folders, "", "", content).into_response())
}

#[derive(Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    base: String,
    op: String,
    #[serde(default)]
    index: usize,
    #[serde(default)]
    replace: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    header: String,
    #[serde(default)]
    other: String,
    #[serde(default, rename = "match")]
    op_match: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    folder: String,
    #[serde(default)]
    flag: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    keep: Option<String>,
    #[serde(default)]
    stop: Option<String>,
}

impl RuleForm {
    fn rule(&self) -> Result<Rule, Refused> {
        let user = |s: &str| Refused::User(s.to_string());
        let header = match self.header.as_str() {
            "other" => self.other.clone(),
            h => h.to_string(),
        };
        let op = match self.op_match.as_str() {
            "is" => Op::Is,
            "contains" | "" => Op::Contains,
            _ => return Err(user("unknown comparison")),
        };
        let act = match self.action.as_str() {
            "move" => Act::Move {
                folder: self.folder.clone(),
            },
            "flag" => Act::Flag {
                flag: self.flag.clone(),
            },
            "forward" => Act::Forward {
                to: self.to.clone(),
                keep: self.keep.is_some(),
            },
            "discard" => Act::Discard,
            _ => return Err(user("choose what to do with matching mail")),
        };
        Rule {
            name: self.name.clone(),
            header,
            op,
            value: self.value.clone(),
            act,
            stop: self.stop.is_some(),
        }
        .checked()
        .map_err(|e| Refused::User(e.0))
    }
}

/// Carries out one change on the rules; returns the note for the page.
fn edit(web: &mut WebScript, f: &RuleForm) -> Result<String, Refused> {
    let n = web.rules.len();
    let in_range = |i: usize| {
        if i < n {
            Ok(i)
        } else {
            Err(Refused::User("there is no such rule".into()))
        }
    };
    match f.op.as_str() {
        "add" => {
            if n >= MAX_RULES {
                return Err(Refused::User(format!("at most {MAX_RULES} rules")));
            }
            let rule = f.rule()?;
            let note = format!("Rule “{}” added.", rule.name);
            web.rules.push(rule);
            Ok(note)
        }
        "delete" => {
            let r = web.rules.remove(in_range(f.index)?);
            Ok(format!("Rule “{}” removed.", r.name))
        }
        "up" | "down" => {
            let i = in_range(f.index)?;
            let j = if f.op == "up" {
                i.checked_sub(1)
            } else {
                Some(i + 1)
            };
            let j = j
                .filter(|j| *j < n)
                .ok_or_else(|| Refused::User("the rule cannot move further".into()))?;
            web.rules.swap(i, j);
            Ok("Rule moved.".into())
        }
        other => Err(Refused::User(format!("unknown action {other:?}"))),
    }
}

pub async fn change(ctx: Ctx, user: User, Form(f): Form<RuleForm>) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    let guard = Guard {
        base: &f.base,
        replace: f.replace.is_some(),
    };
    let outcome =
        script_state::update(&ctx.store, &ctx.config.sieve, &user.account, guard, |web| {
            edit(web, &f)
        })
        .await;
    Notes::redirect("/filters", outcome)
}
