//! Managing folders from web mail: the folders page lists every folder with
//! its counts and lets the user create one (`a/b` nests), rename one (the
//! folders below it move along) or delete one (its messages go to Trash
//! first). The special folders (INBOX, Sent, Drafts, Trash, Junk, Archive)
//! are kept as they are: IMAP clients find them by their special-use
//! attributes. Names go through the same check as IMAP's CREATE, so the web
//! cannot make a folder IMAP would refuse. Every change is a POST with the
//! session's CSRF token.

use super::layout::{self, query_escape};
use super::mailbox::folder_views;
use super::session::User;
use super::{Ctx, WebError};
use crate::store::{SEPARATOR, SPECIAL_FOLDERS, Store, StoreError, check_folder_name};
use axum::Form;
use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct FoldersQuery {
    #[serde(default)]
    note: String,
    #[serde(default)]
    error: String,
}

fn is_special(name: &str) -> bool {
    SPECIAL_FOLDERS.iter().any(|(s, _)| *s == name)
}

pub async fn folders_page(
    ctx: Ctx,
    user: User,
    Query(q): Query<FoldersQuery>,
) -> Result<Response, WebError> {
    let folders = folder_views(&ctx.store, &user.account).await?;
    let content = html! {
        div.toolbar { h1 { "Folders" } }
        @if !q.note.is_empty() { p.flash role="status" { (q.note) } }
        @if !q.error.is_empty() { p.notice.error role="alert" { (q.error) } }
        form.folder-new method="post" action="/folders" {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="op" value="create";
            label { span { "New folder" } input type="text" name="name" required placeholder="Projects/2026"; }
            button.primary type="submit" { "Create" }
        }
        table.folders {
            thead { tr { th { "Folder" } th { "Messages" } th { "Unread" } th { "Rename" } th { "Delete" } } }
            tbody {
                @for f in &folders {
                    tr {
                        td { a href=(layout::folder_url(&f.name)) { (f.name) } }
                        td { (f.total) }
                        td { (f.unread) }
                        @if is_special(&f.name) {
                            td.muted colspan="2" { "built-in" }
                        } @else {
                            td {
                                form.inline method="post" action="/folders" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    input type="hidden" name="op" value="rename";
                                    input type="hidden" name="name" value=(f.name);
                                    input type="text" name="to" value=(f.name) aria-label={ "New name for " (f.name) } required;
                                    button type="submit" { "Rename" }
                                }
                            }
                            td {
                                form.inline method="post" action="/folders" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    input type="hidden" name="op" value="delete";
                                    input type="hidden" name="name" value=(f.name);
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Folders", &user, &folders, "", "", content).into_response())
}

#[derive(Deserialize)]
pub struct FolderForm {
    #[serde(default)]
    csrf: String,
    op: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    to: String,
}

/// Why a folder change was refused, in words for the page.
enum Refusal {
    User(String),
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::FolderExists(n) => Refusal::User(format!("a folder named {n} exists")),
            StoreError::NoSuchFolder(n) => Refusal::User(format!("there is no folder {n}")),
            other => Refusal::Store(other),
        }
    }
}

fn checked(name: &str) -> Result<String, Refusal> {
    check_folder_name(name.trim()).map_err(Refusal::User)
}

fn changeable(name: &str) -> Result<String, Refusal> {
    let name = checked(name)?;
    if is_special(&name) {
        return Err(Refusal::User(format!("{name} is a built-in folder")));
    }
    Ok(name)
}

/// Carries out one change; returns the note for the page.
async fn apply(store: &Store, user: &str, f: &FolderForm) -> Result<String, Refusal> {
    match f.op.as_str() {
        "create" => {
            let name = checked(&f.name)?;
            store.create_folder(user, &name).await?;
            Ok(format!("Folder {name} created."))
        }
        "rename" => {
            let from = changeable(&f.name)?;
            let to = changeable(&f.to)?;
            if from == to {
                return Ok("Nothing to rename.".into());
            }
            if to.starts_with(&format!("{from}{SEPARATOR}")) {
                return Err(Refusal::User("a folder cannot move inside itself".into()));
            }
            store.rename_folder(user, &from, &to).await?;
            Ok(format!("Folder {from} renamed to {to}."))
        }
        "delete" => {
            let name = changeable(&f.name)?;
            let below = format!("{name}{SEPARATOR}");
            if store
                .folders(user)
                .await?
                .iter()
                .any(|i| i.name.starts_with(&below))
            {
                return Err(Refusal::User(format!(
                    "{name} has folders inside; delete or move them first"
                )));
            }
            let uids: Vec<u32> = store
                .messages(user, &name)
                .await?
                .iter()
                .map(|m| m.uid)
                .collect();
            let moved = uids.len();
            if moved > 0 {
                store.move_messages(user, &name, &uids, "Trash").await?;
            }
            store.delete_folder(user, &name).await?;
            Ok(match moved {
                0 => format!("Folder {name} deleted."),
                n => format!("Folder {name} deleted; its {n} messages are in Trash."),
            })
        }
        other => Err(Refusal::User(format!("unknown folder action {other:?}"))),
    }
}

pub async fn change(ctx: Ctx, user: User, Form(f): Form<FolderForm>) -> Result<Response, WebError> {
    user.check_csrf(&f.csrf)?;
    let to = match apply(&ctx.store, &user.account, &f).await {
        Ok(note) => {
            ctx.store.flush().await?;
            format!("/folders?note={}", query_escape(&note))
        }
        Err(Refusal::User(e)) => format!("/folders?error={}", query_escape(&e)),
        Err(Refusal::Store(e)) => return Err(e.into()),
    };
    Ok(Redirect::to(&to).into_response())
}
