//! Web mail over HTTP(S): log in with the mail account, read the folders
//! POP3 and IMAP serve, and send through the same submission path as a mail
//! program. Server-rendered pages (maud), one embedded stylesheet, no
//! JavaScript at all.
//!
//! The files, each owning one job:
//! - `mod.rs` (this): serving one accepted connection with hyper, the router.
//! - `security.rs`: headers on every response (CSP, framing, referrer), the
//!   Origin check on POSTs.
//! - `session.rs`: login/logout, the session cookie, the `User` extractor
//!   and CSRF tokens.
//! - `layout.rs`: the page frame, the folder sidebar, the stylesheet.
//! - `mailbox.rs`: message lists with paging and search, and the actions on
//!   messages (flags, move, delete).
//! - `message.rs` + `sanitize.rs`: reading a message; its HTML is cleaned
//!   (ammonia) and shown in a sandboxed iframe under its own strict CSP;
//!   attachments are downloads. `why.rs`: its "Why is this here?"
//!   section, the reader's own part of the message's decision trace.
//! - `compose.rs`: compose, reply, reply-all, forward, drafts and sending
//!   (the submission path `crate::submit::submit`, then a copy in `Sent`).
//! - `filters.rs` (rules: header condition → action), `vacation.rs` (the
//!   automatic reply) and `sieve_text.rs` (the script as text, compiled
//!   before it is saved): the user's active Sieve script, the one
//!   ManageSieve and the sieve plugin use. `rules.rs` writes the rules and
//!   the vacation out as one script and reads it back; `script_state.rs`
//!   reads, versions and saves it.
//!
//! A page never contains message content unescaped: maud escapes every
//! interpolation, and the only HTML taken from a message is the sanitised
//! body served on its own route to the sandboxed frame.

mod compose;
mod filters;
mod folders;
mod layout;
mod mailbox;
mod message;
mod rules;
mod sanitize;
mod script_state;
mod security;
mod send;
mod session;
mod sieve_text;
mod vacation;
mod why;

use crate::context::ServerContext;
use crate::net::Connection;
use crate::shutdown::Shutdown;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

pub use sanitize::sanitize_html;

/// What a handler knows of the connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Served over TLS (`https` listener): cookies get `Secure`.
    pub https: bool,
    pub tls: Option<crate::tls::TlsInfo>,
}

type Ctx = axum::extract::State<Arc<ServerContext>>;

/// A failure while answering a request. Users see a short page; the
/// details go to the log.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("no such message")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form has expired or came from another site; reload the page and try again")]
    Csrf,
    #[error("sending failed: {0}")]
    Send(String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        use axum::http::StatusCode;
        let status = match &self {
            WebError::Store(crate::store::StoreError::OverQuota { .. }) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            WebError::Store(e) => {
                tracing::error!("web: store error: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) | WebError::Send(_) => StatusCode::BAD_REQUEST,
            WebError::Csrf => StatusCode::FORBIDDEN,
        };
        let text = match &self {
            WebError::Store(crate::store::StoreError::OverQuota { .. }) => {
                "Your mailbox is over its quota: delete some mail and try again.".into()
            }
            WebError::Store(_) => "Something went wrong on the server; try again later.".into(),
            other => other.to_string(),
        };
        (status, layout::error_page(status.as_u16(), &text)).into_response()
    }
}

/// The routes of web mail.
pub fn router(ctx: Arc<ServerContext>) -> Router {
    let max_upload = usize::try_from(ctx.config.limits.max_message_size.0)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/folder?name=INBOX") }),
        )
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/folder", get(mailbox::folder_page))
        .route("/folders", get(folders::folders_page).post(folders::change))
        .route("/filters", get(filters::filters_page).post(filters::change))
        .route(
            "/filters/script",
            get(sieve_text::script_page).post(sieve_text::change),
        )
        .route(
            "/vacation",
            get(vacation::vacation_page).post(vacation::change),
        )
        .route("/action", post(mailbox::action))
        .route("/message", get(message::message_page))
        .route("/message/body", get(message::body_frame))
        .route("/message/part", get(message::part))
        .route("/message/raw", get(message::raw))
        .route("/compose", get(compose::compose_page))
        .route(
            "/send",
            post(compose::send).layer(DefaultBodyLimit::max(max_upload)),
        )
        .route("/style.css", get(layout::stylesheet))
        .fallback(|| async { WebError::NotFound })
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(ctx)
}

/// Serves HTTP/1.1 (and HTTP/2 over TLS) on one accepted connection until
/// the client goes or the server shuts down.
pub async fn serve(conn: Connection, ctx: Arc<ServerContext>, https: bool, mut shutdown: Shutdown) {
    let info = ConnInfo {
        peer: conn.peer,
        local: conn.local,
        https,
        tls: conn.tls_info(),
    };
    let peer = conn.peer;
    let service = router(ctx).map_request(move |mut req: axum::extract::Request<_>| {
        req.extensions_mut().insert(info.clone());
        req
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let io = TokioIo::new(conn.into_stream());
    let connection = builder.serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        _ = shutdown.recv() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(client = %peer, "http connection ended: {e}");
    }
}
