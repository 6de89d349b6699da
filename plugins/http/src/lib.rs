//! A plain HTTP/1.1 POST over `tern_sdk::net` for the shipped plugins that
//! talk to HTTP services over a `connect` grant (rspamd; the webhook uses
//! WASI HTTP instead): one request per connection
//! (`Connection: close`), extra request header fields as given; the
//! response head parsed by `httparse`, the body by Content-Length, chunked
//! coding, or to the end.

use std::io::{Read, Write};

/// Longest answer read.
const MAX_RESPONSE: usize = 1 << 20;

/// An `http://host[:port]/path` URL.
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let rest = text
            .strip_prefix("http://")
            .ok_or_else(|| format!("url {text:?}: only http:// is supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse().map_err(|_| format!("url {text:?}: bad port"))?)
            }
            _ => (authority, 80),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() || path.contains(['\r', '\n', ' ']) {
            return Err(format!("url {text:?}: bad host or path"));
        }
        Ok(Url { host, port, path })
    }
}

/// POSTs `body` with `fields` (`(name, value)`, values one line each);
/// the response body of a 2xx answer.
pub fn post(url: &Url, fields: &[(&str, String)], body: &[u8]) -> Result<Vec<u8>, String> {
    let mut conn =
        tern_sdk::net::connect(&url.host, url.port).map_err(|e| format!("cannot connect: {e}"))?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: tern\r\n",
        url.path,
        url.host,
        url.port,
        body.len()
    );
    for (name, value) in fields {
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())
        .and_then(|_| conn.write_all(body))
        .map_err(|e| format!("sending: {e}"))?;
    let mut data = Vec::new();
    conn.take(MAX_RESPONSE as u64)
        .read_to_end(&mut data)
        .map_err(|e| format!("reading: {e}"))?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let start = match response.parse(&data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete response".into()),
        Err(e) => return Err(format!("bad response: {e}")),
    };
    let status = response.code.unwrap_or(0);
    if !(200..300).contains(&status) {
        return Err(format!("HTTP status {status}"));
    }
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    let body = &data[start..];
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    if chunked {
        return dechunk(body);
    }
    Ok(match length {
        Some(n) if n <= body.len() => body[..n].to_vec(),
        _ => body.to_vec(),
    })
}

/// The body of a chunked transfer coding.
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(data) {
            Ok(httparse::Status::Complete(v)) => v,
            _ => return Err("bad chunked body".into()),
        };
        let size = usize::try_from(size).map_err(|_| "chunk too large")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = data
            .get(start..start + size)
            .ok_or("truncated chunked body")?;
        out.extend_from_slice(chunk);
        data = data
            .get(start + size + 2..)
            .ok_or("truncated chunked body")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8080/hook?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/hook?x=1")
        );
        let u = Url::parse("http://policy.internal").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("policy.internal", 80, "/")
        );
        assert!(Url::parse("https://x/").is_err());
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
