//! Tries WASI HTTP: at RCPT TO, POSTs `probe for <address>` to the config's
//! `url` through `wasi:http/outgoing-handler`. Refuses with `550 5.7.1 got
//! <status>` when a response came and `451 4.7.1 refused: <error>` when
//! the request failed, so a test can see which requests the server let
//! through. With `count = "N"` it starts N requests before finishing any
//! and answers with the outcomes in order, runs of the same one counted
//! (`64 x got 201, 2 x refused: …`). With
//! `rcpt` set, it acts only on that recipient (so several probes can share
//! one server).

use tern_sdk::{Envelope, Policy, RcptParams, Session, Verdict, config};
use wasip2::http::outgoing_handler::{self, FutureIncomingResponse};
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

struct HttpProbe;

/// A request handed to the host, its body not yet written.
struct Started {
    future: FutureIncomingResponse,
    body: OutgoingBody,
}

/// Hands a POST of `len` bytes to `url` to the host.
fn start(url: &str, len: usize) -> Result<Started, String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"text/plain".to_vec()),
        ("content-length".to_string(), len.to_string().into_bytes()),
    ])
    .map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => Scheme::Other(other.to_string()),
    };
    request.set_method(&Method::Post).map_err(|()| "method")?;
    request.set_scheme(Some(&scheme)).map_err(|()| "scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "authority")?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "path")?;
    let body = request.body().map_err(|()| "body")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    Ok(Started { future, body })
}

/// Writes the body, waits for the response: its status.
fn finish(started: Started, body: &[u8]) -> Result<u16, String> {
    // A refused request fails the body stream too: its own error, from
    // the response future, is the one to report.
    let written = started
        .body
        .write()
        .map_err(|()| "body stream".to_string())
        .and_then(|stream| {
            stream
                .blocking_write_and_flush(body)
                .map_err(|e| format!("writing: {e:?}"))
        });
    let finished = OutgoingBody::finish(started.body, None).map_err(|e| format!("{e:?}"));
    let future = started.future;
    let response = loop {
        match future.get() {
            Some(r) => break r,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| "response taken")?
        .map_err(|e| format!("{e:?}"))?;
    written?;
    finished?;
    let status = response.status();
    let incoming = response.consume().map_err(|()| "consume")?;
    {
        let stream = incoming.stream().map_err(|()| "response stream")?;
        loop {
            match stream.blocking_read(4096) {
                Ok(_) => {}
                Err(StreamError::Closed) => break,
                Err(e) => return Err(format!("reading: {e:?}")),
            }
        }
    }
    Ok(status)
}

fn outcome(result: Result<u16, String>) -> String {
    match result {
        Ok(status) => format!("got {status}"),
        Err(e) => format!("refused: {e}"),
    }
}

#[tern_sdk::hooks]
impl Policy for HttpProbe {
    fn on_rcpt_to(_s: Session, _e: Envelope, address: String, _p: RcptParams) -> Verdict {
        if config::get("rcpt").is_some_and(|r| !r.eq_ignore_ascii_case(&address)) {
            return Verdict::Continue;
        }
        let url = config::get("url").unwrap_or_default();
        let body = format!("probe for {address}");
        let count: usize = config::get("count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let started: Vec<Result<Started, String>> =
            (0..count).map(|_| start(&url, body.len())).collect();
        let results: Vec<Result<u16, String>> = started
            .into_iter()
            .map(|s| s.and_then(|s| finish(s, body.as_bytes())))
            .collect();
        if count == 1 {
            return match results.into_iter().next() {
                Some(Ok(status)) => Verdict::reject(550, "5.7.1", &format!("got {status}")),
                Some(Err(e)) => Verdict::tempfail(451, "4.7.1", &format!("refused: {e}")),
                None => Verdict::Continue,
            };
        }
        // Runs of the same outcome as `N x outcome`: a reply line is short.
        let mut runs: Vec<(usize, String)> = Vec::new();
        for o in results.into_iter().map(outcome) {
            match runs.last_mut() {
                Some((n, last)) if *last == o => *n += 1,
                _ => runs.push((1, o)),
            }
        }
        let all: Vec<String> = runs.iter().map(|(n, o)| format!("{n} x {o}")).collect();
        Verdict::reject(550, "5.7.1", &all.join(", "))
    }
}

tern_sdk::export!(HttpProbe: Policy);
