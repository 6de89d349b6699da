//! Headers every response carries, and the first line of defence against
//! cross-site requests. Pages get a CSP that allows no script at all, no
//! framing by anyone, and no referrer. The message-body route sets its own,
//! stricter CSP (framed by our own pages only) and is left alone here.
//! POSTs whose `Origin` names another site are refused before any handler
//! runs; the CSRF token (`session.rs`) is checked as well.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The policy of every page: our own stylesheet and images, forms posting
/// to ourselves, frames only from ourselves (the message body), no script.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Marks a response that sets its own framing and CSP headers.
#[derive(Clone, Copy)]
pub struct OwnFraming;

pub async fn headers(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        tracing::warn!("web: refused a cross-site POST to {}", request.uri().path());
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let mut response = next.run(request).await;
    let own = response.extensions().get::<OwnFraming>().is_some();
    let h = response.headers_mut();
    if !own {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        "Cross-Origin-Opener-Policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "Cross-Origin-Resource-Policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// Is a POST from our own pages? Browsers that send `Sec-Fetch-Site` say
/// so directly (`same-origin`, or `none` for what the user did). Otherwise
/// an `Origin` must name this request's `Host`. `Origin: null` (what
/// Chromium sends under `Referrer-Policy: no-referrer`) and no `Origin` at
/// all tell nothing: the CSRF token and `SameSite=Strict` still guard those.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin") | Ok("none"));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == "null" {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin_host.is_some_and(|o| o.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn origin_must_match_host() {
        assert!(same_origin(&h(&[("host", "127.0.0.1:2080")])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:2080"),
            ("origin", "http://127.0.0.1:2080")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:2080"),
            ("origin", "http://evil.test")
        ])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:2080"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:2080"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:2080"),
            ("sec-fetch-site", "same-site")
        ])));
        assert!(!same_origin(&h(&[("origin", "http://127.0.0.1:2080")])));
    }
}
