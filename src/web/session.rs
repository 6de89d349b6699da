//! Who is logged in. Login checks the password with the same
//! `Authenticator` as POP3/IMAP/SMTP (argon2, growing delays for repeated
//! failures); a success creates a session in the store (`w/` records: a
//! random 256-bit id → account, CSRF token, expiry) and sets the id in a
//! cookie that is `HttpOnly`, `SameSite=Strict`, and `Secure` over https.
//! The login form itself carries a token matched against a short-lived
//! cookie, so another site cannot log a browser into an account of its own.

use super::layout;
use super::{ConnInfo, Ctx, WebError};
use crate::context::ServerContext;
use crate::store::WebSession;
use axum::Form;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "tern_session";
const LOGIN_COOKIE: &str = "tern_login";
/// How long a session lasts after login.
pub const SESSION_LIFETIME_SECS: i64 = 12 * 3600;

/// A logged-in request: the account and its session.
pub struct User {
    pub account: String,
    pub csrf: String,
    pub session_id: String,
    pub conn: ConnInfo,
}

impl User {
    /// Refuses a state-changing request whose token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if constant_time_eq(token.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            tracing::warn!(user = %self.account, client = %self.conn.peer, "web: CSRF token mismatch");
            Err(WebError::Csrf)
        }
    }
}

fn conn_info(parts: &Parts) -> ConnInfo {
    parts
        .extensions
        .get::<ConnInfo>()
        .cloned()
        .unwrap_or(ConnInfo {
            peer: ([0, 0, 0, 0], 0).into(),
            local: ([0, 0, 0, 0], 0).into(),
            https: false,
            tls: None,
        })
}

impl FromRequestParts<Arc<ServerContext>> for User {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<ServerContext>,
    ) -> Result<User, Response> {
        let conn = conn_info(parts);
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to("/login").into_response());
        };
        match ctx.store.web_session(&id).await {
            Ok(Some(s)) => Ok(User {
                account: s.user,
                csrf: s.csrf,
                session_id: id,
                conn,
            }),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(WebError::Store(e).into_response()),
        }
    }
}

/// The connection of a request (for handlers without a session).
pub struct Conn(pub ConnInfo);

impl<S: Send + Sync> FromRequestParts<S> for Conn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Conn, Self::Rejection> {
        Ok(Conn(conn_info(parts)))
    }
}

/// A value of the `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn set_cookie(name: &str, value: &str, https: bool, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if https {
        c.push_str("; Secure");
    }
    // Only hex, digits and fixed text: always a valid header value.
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
}

/// 256 random bits as hex (session ids, tokens).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn login_form(https: bool, status: StatusCode, error: Option<&str>) -> Response {
    let token = random_token();
    let mut response = (status, layout::login_page(&token, error)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, https, Some(3600)),
    );
    response
}

pub async fn login_page(ctx: Ctx, Conn(conn): Conn, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE)
        && let Ok(Some(_)) = ctx.store.web_session(&id).await
    {
        return Redirect::to("/folder?name=INBOX").into_response();
    }
    login_form(conn.https, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

pub async fn login(
    ctx: Ctx,
    Conn(conn): Conn,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.token.as_bytes()) {
        return Ok(login_form(
            conn.https,
            StatusCode::FORBIDDEN,
            Some("The login form expired; please try again."),
        ));
    }
    let Some(account) = ctx
        .auth
        .verify(conn.peer.ip(), &form.login, &form.password)
        .await
    else {
        return Ok(login_form(
            conn.https,
            StatusCode::UNAUTHORIZED,
            Some("Wrong address or password."),
        ));
    };
    let id = random_token();
    let session = WebSession {
        user: account.clone(),
        csrf: random_token(),
        expires: crate::store::now() + SESSION_LIFETIME_SECS,
    };
    ctx.store.create_web_session(&id, &session).await?;
    tracing::info!(user = %account, client = %conn.peer, "web: logged in");
    let mut response = Redirect::to("/folder?name=INBOX").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, conn.https, None),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", conn.https, Some(0)),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    ctx: Ctx,
    user: User,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    ctx.store.delete_web_session(&user.session_id).await?;
    tracing::info!(user = %user.account, client = %user.conn.peer, "web: logged out");
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", user.conn.https, Some(0)),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed_strictly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tern_session=ab12; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("ab12"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("tern_session=../x"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        let c = set_cookie(SESSION_COOKIE, "ab", true, None);
        assert_eq!(
            c.to_str().unwrap(),
            "tern_session=ab; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(random_token().len(), 64);
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
