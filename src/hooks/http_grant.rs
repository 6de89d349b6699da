//! The `http` grant of a `[[plugin]]` entry (`http = ["https://hooks.example.test/",
//! …]`): URL prefixes, and the check that a request's URL is under one.
//! Both sides are normalised the same way (WHATWG parsing by the `url`
//! crate: scheme and host in lower case, the default port made explicit,
//! `.`/`..` segments — `%2e` spellings included — resolved) and then
//! compared part by part: same scheme, same host (a trailing dot
//! ignored), same port, and a path that is the prefix's or continues it
//! at a `/`. So `https://hooks.example.test.evil/`, userinfo tricks
//! (`https://hooks.example.test@evil.test/`), another port, or
//! `/hooks/../admin` never pass for `https://hooks.example.test/hooks/`.
//! URLs with userinfo, and paths with an encoded `/`, `\` or `.` (which a
//! server might decode into a way out of the prefix), are refused.

/// One granted prefix, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    https: bool,
    host: String,
    port: u16,
    /// Starts with `/`.
    path: String,
}

/// A plugin's `http` grants.
#[derive(Debug, Default)]
pub struct HttpGrants {
    prefixes: Vec<Prefix>,
}

/// Where a granted request goes: what is connected to and sent, taken
/// from the normalised URL the check passed (never from the raw one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub https: bool,
    /// A name (lower case, no final dot) or an IP address (v6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, as sent in the request line.
    pub path_and_query: String,
    /// The `Host` header: `host` or `host:port` (the port when not the default).
    pub authority: String,
}

/// A URL's parts, normalised; Err: why it cannot be granted or requested.
fn normalise(text: &str) -> Result<(Prefix, Option<String>, url::Url), String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(format!("{text:?}: scheme {other:?} (want http or https)")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text:?}: user information is not allowed in the URL"
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(format!("{text:?}: no host")),
    };
    if host.is_empty() {
        return Err(format!("{text:?}: no host"));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{text:?}: no port"))?;
    let path = url.path().to_string();
    let lower = path.to_ascii_lowercase();
    if ["%2f", "%5c", "%2e"].iter().any(|e| lower.contains(e)) {
        return Err(format!(
            "{text:?}: an encoded '/', '\\' or '.' in the path is not allowed"
        ));
    }
    let query = url.query().map(str::to_string);
    Ok((
        Prefix {
            https,
            host,
            port,
            path,
        },
        query,
        url,
    ))
}

impl HttpGrants {
    /// Parses `http` entries: `http://` or `https://` URLs, with no user
    /// information, query or fragment.
    pub fn parse(entries: &[String]) -> Result<HttpGrants, String> {
        let mut prefixes = Vec::new();
        for entry in entries {
            let bad =
                |why: String| format!("http entry {entry:?}: {why} (want \"https://host/path/\")");
            let (prefix, query, url) = normalise(entry).map_err(bad)?;
            if query.is_some() || url.fragment().is_some() {
                return Err(bad("a prefix has no query or fragment".into()));
            }
            prefixes.push(prefix);
        }
        Ok(HttpGrants { prefixes })
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The destination of a request for `url` when a grant covers it;
    /// Err: why not, in words for the log.
    pub fn check(&self, url: &str) -> Result<Destination, String> {
        let (asked, query, parsed) = normalise(url)?;
        let granted = self.prefixes.iter().any(|p| {
            p.https == asked.https
                && p.host == asked.host
                && p.port == asked.port
                && under(&p.path, &asked.path)
        });
        if !granted {
            return Err(format!("{url} is under no granted http prefix"));
        }
        let default_port = if asked.https { 443 } else { 80 };
        let host_text = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            _ => asked.host.clone(),
        };
        let authority = if asked.port == default_port {
            host_text
        } else {
            format!("{host_text}:{}", asked.port)
        };
        let path_and_query = match query {
            Some(q) => format!("{}?{q}", asked.path),
            None => asked.path.clone(),
        };
        Ok(Destination {
            https: asked.https,
            host: asked.host,
            port: asked.port,
            path_and_query,
            authority,
        })
    }
}

/// Is `path` the prefix `prefix`, or below it at a segment boundary?
fn under(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(list: &[&str]) -> HttpGrants {
        HttpGrants::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn requests_under_a_prefix_pass_and_go_where_they_were_checked() {
        let g = grants(&[
            "https://Hooks.Example.TEST/hooks/",
            "http://127.0.0.1:8080/api",
        ]);
        let d = g
            .check("https://hooks.example.test:443/hooks/mail?x=1")
            .unwrap();
        assert_eq!(
            d,
            Destination {
                https: true,
                host: "hooks.example.test".into(),
                port: 443,
                path_and_query: "/hooks/mail?x=1".into(),
                authority: "hooks.example.test".into(),
            }
        );
        assert!(g.check("https://hooks.example.test./hooks/").is_ok());
        assert!(g.check("https://hooks.example.test/hooks/a/../b").is_ok());
        let d = g.check("http://127.0.0.1:8080/api").unwrap();
        assert_eq!(d.authority, "127.0.0.1:8080");
        assert!(g.check("http://127.0.0.1:8080/api/v1").is_ok());
    }

    #[test]
    fn lookalikes_and_tricks_are_refused() {
        let g = grants(&[
            "https://hooks.example.test/hooks/",
            "http://127.0.0.1:8080/api",
        ]);
        for url in [
            "https://hooks.example.test.evil/hooks/",
            "https://evil.test/hooks/",
            "https://hooks.example.test@evil.test/hooks/",
            "https://user:pw@hooks.example.test/hooks/",
            "http://hooks.example.test/hooks/",
            "https://hooks.example.test:8443/hooks/",
            "https://hooks.example.test/hooksx",
            "https://hooks.example.test/hooks",
            "https://hooks.example.test/admin",
            "https://hooks.example.test/hooks/../admin",
            "https://hooks.example.test/hooks/%2e%2e/admin",
            "https://hooks.example.test/hooks/..%2fadmin",
            "https://hooks.example.test/hooks/..%5Cadmin",
            "http://127.0.0.1:8080/apis",
            "http://127.0.0.1:8081/api",
            "http://127.0.0.2:8080/api",
            "ftp://hooks.example.test/hooks/",
            "not a url",
        ] {
            assert!(g.check(url).is_err(), "{url} passed");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "hooks.example.test/",
            "ftp://x.test/",
            "https://u@x.test/",
            "https://x.test/?q",
            "https:///",
        ] {
            let e = HttpGrants::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
