//! One POST through WASI HTTP (`wasi:http/outgoing-handler`): the host
//! makes the connection, checks the URL against the entry's `http` grant,
//! resolves the name through Tern's resolver and, for `https://`, verifies
//! the server's certificate (system roots or `relay.tls_ca`). A 2xx
//! answer's body (at most `MAX_RESPONSE` bytes) comes back; any other
//! status is an error (its body is not read).

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Longest answer read.
const MAX_RESPONSE: usize = 1 << 20;

/// An `http://` or `https://` URL, split as WASI HTTP takes it.
pub struct Url {
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// The path and query, from its `/`.
    pub path: String,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.path)
    }
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("url {text:?}: want http:// or https://"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() || authority.contains(['@', ' ']) {
            return Err(format!("url {text:?}: bad host"));
        }
        Ok(Url {
            https,
            authority: authority.to_string(),
            path,
        })
    }
}

/// POSTs `body` as `content_type` to `url`: the 2xx answer's body.
pub fn post(url: &Url, content_type: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), content_type.as_bytes().to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .map_err(|e| format!("request header fields: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_method(&Method::Post)
        .map_err(|()| "bad method")?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| "bad host")?;
    request
        .set_path_with_query(Some(&url.path))
        .map_err(|()| "bad path")?;
    let outgoing = request.body().map_err(|()| "request body")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    // A refused request fails the body stream too: the response's error
    // is the one to report, so it is looked at first.
    let written = outgoing
        .write()
        .map_err(|()| "request body stream".to_string())
        .and_then(|stream| {
            for chunk in body.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| format!("sending: {e:?}"))?;
            }
            Ok(())
        });
    let finished = OutgoingBody::finish(outgoing, None).map_err(|e| format!("{e:?}"));
    let response = loop {
        match future.get() {
            Some(r) => break r,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| "response taken twice")?
        .map_err(|e| format!("{e:?}"))?;
    written?;
    finished?;
    let status = response.status();
    if !(200..300).contains(&status) {
        return Err(format!("HTTP status {status}"));
    }
    let incoming = response.consume().map_err(|()| "response body")?;
    let mut answer = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| "response body stream")?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    answer.extend_from_slice(&chunk);
                    if answer.len() > MAX_RESPONSE {
                        return Err(format!("answer longer than {MAX_RESPONSE} bytes"));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(format!("reading the answer: {e:?}")),
            }
        }
    }
    Ok(answer)
}
