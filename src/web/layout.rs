//! The page frame: top bar (search, compose, log out), the folder sidebar
//! with unread counts, the login and error pages, and the stylesheet
//! (embedded in the binary, served at `/style.css`). maud escapes every
//! interpolated value, so nothing here can put raw message text in a page.

use super::session::User;
use axum::http::header;
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

const STYLE: &str = include_str!("style.css");

/// A folder as the sidebar shows it.
pub struct FolderView {
    pub name: String,
    pub unread: usize,
    pub total: usize,
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
}

/// `/folder?name=…` for a folder, with the name query-escaped.
pub fn folder_url(name: &str) -> String {
    format!("/folder?name={}", query_escape(name))
}

/// Percent-encodes everything but unreserved characters.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn head(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="no-referrer";
        title { (title) " · Tern mail" }
        link rel="stylesheet" href="/style.css";
    }
}

/// A page of the mail application around `content`.
pub fn page(
    title: &str,
    user: &User,
    folders: &[FolderView],
    current: &str,
    search: &str,
    content: Markup,
) -> Markup {
    html! {
        (head(title))
        body.app {
            header.top {
                a.brand href="/folder?name=INBOX" { "Tern" }
                form.search method="get" action="/folder" role="search" {
                    input type="hidden" name="name" value=(current);
                    input type="search" name="q" value=(search) placeholder="Search from, to, subject, text" aria-label="Search";
                }
                a.button.primary href="/compose" { "Compose" }
                form.logout method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    span.who { (user.account) }
                    button type="submit" { "Log out" }
                }
            }
            nav.folders aria-label="Folders" {
                ul {
                    @for f in folders {
                        li class=@if f.name == current { "current" } {
                            a href=(folder_url(&f.name)) title={ (f.total) " messages" } {
                                span.name { (f.name) }
                                @if f.unread > 0 { span.count title="unread" { (f.unread) } }
                            }
                        }
                    }
                }
                a.manage href="/folders" { "Manage folders" }
                a.manage href="/filters" { "Filters" }
                a.manage href="/vacation" { "Vacation reply" }
            }
            main.content { (content) }
        }
    }
}

pub fn login_page(token: &str, error: Option<&str>) -> Markup {
    html! {
        (head("Log in"))
        body.login {
            main.card {
                h1 { "Tern mail" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action="/login" {
                    input type="hidden" name="token" value=(token);
                    label { "Address" input type="text" name="login" autocomplete="username" autofocus required; }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    button.primary type="submit" { "Log in" }
                }
            }
        }
    }
}

pub fn error_page(status: u16, text: &str) -> Markup {
    html! {
        (head("Error"))
        body.login {
            main.card {
                h1 { "Error " (status) }
                p { (text) }
                p { a href="/folder?name=INBOX" { "Back to the inbox" } }
            }
        }
    }
}

/// "3.2 KB" and the like.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// A date for lists: time today, else day and month, else the full date.
pub fn short_date(ts: i64) -> String {
    use chrono::{DateTime, Datelike, Utc};
    let Some(t) = DateTime::<Utc>::from_timestamp(ts, 0) else {
        return String::new();
    };
    let now = Utc::now();
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else if t.year() == now.year() {
        t.format("%d %b").to_string()
    } else {
        t.format("%Y-%m-%d").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_queries_and_sizes() {
        assert_eq!(query_escape("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(2048), "2.0 KB");
    }

    #[test]
    fn markup_is_escaped() {
        let m = error_page(400, "<script>alert(1)</script>").into_string();
        assert!(!m.contains("<script>alert"));
        assert!(m.contains("&lt;script&gt;"));
    }
}
