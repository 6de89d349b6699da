//! HTTP granted per plugin (`[[plugin]] http = ["https://host/path/", …]`),
//! through the real binary: a probe plugin (tests/plugins/http_probe)
//! POSTs through WASI HTTP at RCPT TO to an HTTPS server with a
//! certificate from a CA made here (`relay.tls_ca` trusts it). A URL under
//! the granted prefix reaches the server; another host, a path outside
//! the prefix (also by `..`), and a lookalike host are refused at the
//! call — the guest sees `HTTP-request-denied` and the server sees
//! nothing; a granted server whose certificate does not verify is not
//! talked to. A component importing wasi:http without a grant is refused
//! by `check-config`, naming the import.

mod harness;

use harness::tls::{HttpsServer, TestCa};
use harness::*;
use serde_json::json;

/// The connections a plugin may hold at once (`src/hooks/held.rs`).
const BOUND: usize = 64;

fn probe(name: &str, rcpt: &str, url: &str, http: &[String]) -> String {
    let http: Vec<String> = http.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\ntimeout = \"10s\"\nhttp = [{}]\nconfig = {{ rcpt = \"{rcpt}\", url = \"{url}\" }}\n",
        test_plugins::HTTP_PROBE,
        http.join(", ")
    )
}

#[test]
fn only_urls_under_a_granted_prefix_are_requested() {
    let ca = TestCa::new();
    let server = HttpsServer::start(
        &ca.issue("hooks", &["hooks.test", "other.test", "hooks.test.evil"]),
        &json!({}),
    );
    let untrusted = HttpsServer::start(&ca.self_signed("self", &["selfsigned.test"]), &json!({}));
    let dns = DnsServer::start(&json!({
        "hooks.test": {"A": ["127.0.0.1"]},
        "other.test": {"A": ["127.0.0.1"]},
        "hooks.test.evil": {"A": ["127.0.0.1"]},
        "selfsigned.test": {"A": ["127.0.0.1"]},
    }));
    let port = server.port;
    let grant = vec![format!("https://hooks.test:{port}/hooks/")];
    let cases = [
        ("granted", format!("https://hooks.test:{port}/hooks/mail")),
        (
            "other-host",
            format!("https://other.test:{port}/hooks/mail"),
        ),
        (
            "other-path",
            format!("https://hooks.test:{port}/admin/mail"),
        ),
        (
            "dot-dot",
            format!("https://hooks.test:{port}/hooks/../admin"),
        ),
        (
            "lookalike",
            format!("https://hooks.test.evil:{port}/hooks/mail"),
        ),
        ("plain-http", format!("http://hooks.test:{port}/hooks/mail")),
    ];
    let mut plugins: String = cases
        .iter()
        .enumerate()
        .map(|(i, (name, url))| probe(name, &format!("u{i}@example.test"), url, &grant))
        .collect();
    // The plugin's bound on connections held (64), and two more; the
    // timeout leaves room for 64 TLS handshakes on a busy machine.
    plugins.push_str(
        &probe("bounded", "u7@example.test", &cases[0].1, &grant)
            .replace(
                "config = {",
                &format!("config = {{ count = \"{}\",", BOUND + 2),
            )
            .replace("timeout = \"10s\"", "timeout = \"50s\""),
    );
    let silent = silent_server();
    plugins.push_str(
        &probe(
            "silent",
            "u8@example.test",
            &format!("http://127.0.0.1:{silent}/x"),
            &[format!("http://127.0.0.1:{silent}/")],
        )
        .replace("timeout = \"10s\"", "timeout = \"1s\""),
    );
    let self_url = format!("https://selfsigned.test:{}/hooks/", untrusted.port);
    plugins.push_str(&probe(
        "untrusted",
        "u9@example.test",
        &format!("{self_url}mail"),
        std::slice::from_ref(&self_url),
    ));
    let extra = format!(
        "[relay]\ntls_ca = \"{}\"\n[dns]\nnameservers = [\"{}\"]\n{plugins}",
        ca.ca_file().display(),
        dns.address()
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    for i in [0, 1, 2, 3, 4, 5, 7, 8, 9] {
        t.add_user(&format!("u{i}@example.test"), "pw");
    }
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.ehlo("client.test")
s.mail("lisa@outside.test")
import time
for i in "012345789":
    started = time.monotonic()
    code, msg = s.rcpt("u%s@example.test" % i)
    print(i, code, msg.decode(), "in %.1fs" % (time.monotonic() - started))
s.quit()
"#,
        &[&t.port("smtp").to_string()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    assert!(
        lines[0].starts_with("0 550 5.7.1 got 201"),
        "granted: {out}"
    );
    for (line, what) in [
        (lines[1], "another host"),
        (lines[2], "a path outside the prefix"),
        (lines[3], "a way out by .."),
        (lines[4], "a lookalike host"),
        (lines[5], "another scheme"),
    ] {
        assert!(
            line.contains(" 451 4.7.1 refused: ErrorCode::HttpRequestDenied"),
            "{what}: {out}"
        );
    }
    // 66 requests started at once: 64 open, the rest refused.
    let bounded = lines[6];
    assert!(
        bounded.starts_with(&format!(
            "7 550 5.7.1 {BOUND} x got 201, 2 x refused: ErrorCode::ConnectionLimitReached in "
        )),
        "{out}"
    );
    // A server that never answers: the plugin's 1 s timeout ends the call
    // (its on_error verdict).
    assert!(lines[7].starts_with("8 "), "{out}");
    cut_off_by_timeout(lines[7], &out);
    assert!(
        lines[8].starts_with("9 451 4.7.1 refused: ErrorCode::TlsCertificateError"),
        "an unverified certificate: {out}"
    );
    // The server saw the granted requests only (one, then 64), and their bodies.
    let requests = server.requests();
    assert_eq!(
        requests.lines().collect::<Vec<_>>(),
        vec!["POST hooks.test/hooks/mail text/plain"; 1 + BOUND],
        "{requests}"
    );
    let posts = server.posts();
    assert_eq!(posts.len(), 1 + BOUND);
    assert_eq!(
        std::fs::read_to_string(&posts[0]).expect("post"),
        "probe for u0@example.test"
    );
    assert!(untrusted.requests().is_empty(), "{}", untrusted.requests());
    let log = t.log();
    assert!(
        log.contains("http request refused") && log.contains("under no granted http prefix"),
        "{log}"
    );
}

#[test]
fn an_http_import_without_a_grant_is_refused_and_bad_grants_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |entry: &str| check_plugin_config(dir.path(), test_plugins::HTTP_PROBE, entry);
    let out = check("");
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("\"probe\"")
            && err.contains("imports wasi:http/")
            && err.contains("grants no HTTP"),
        "{err}"
    );
    let out = check("http = [\"https://hooks.test/\"]\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = check("http = [\"https://user@hooks.test/\"]\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("http entry \"https://user@hooks.test/\""),
        "{}",
        text(&out.stderr)
    );
    // The server refuses to start with it too.
    check("");
    let said = serve_refuses(dir.path());
    assert!(said.contains("imports wasi:http/"), "{said}");
}
