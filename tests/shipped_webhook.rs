//! The shipped `webhook` filter (plugins/webhook) in the real server
//! against a local HTTPS service (Python's http.server behind a
//! certificate from a CA made by the test, which `relay.tls_ca` trusts,
//! for the issue's own `https://hooks.example.test/`, resolved through
//! Tern's resolver): the request goes through WASI HTTP under the entry's
//! `http` grant. The service receives the envelope, client, header fields
//! and the decisions made so far (an earlier filter's verdict, without its
//! details; the SPF result) as JSON, and its answers are applied — a header
//! added to a delivered message, a refusal with the service's own reply,
//! `junk` and quarantine to Junk (read back over IMAP) — and a service
//! answering 500 gets the entry's `on_error`. An entry written for the
//! first webhook (a `connect` grant) is refused by `check-config`.

mod harness;

use harness::tls::TestCa;
use harness::*;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tern::testing::reaper::{Watched, watch};

const SERVICE: &str = r#"
import http.server, json, ssl, sys
log = open(sys.argv[1], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        log.write(json.dumps(body) + "\n"); log.flush()
        subject = dict((n.lower(), v) for n, v in body.get("headers", [])).get("subject", "").strip()
        if subject == "break":
            self.send_response(500); self.end_headers(); return
        answer = {"action": "continue", "add_headers": [{"name": "X-Webhook", "value": "seen " + body["envelope"]["sender"]}]}
        if subject == "refuse":
            answer = {"action": "reject", "code": 554, "enhanced": "5.7.1", "text": "refused by the policy service"}
        elif subject == "hold":
            answer = {"action": "quarantine", "reason": "policy says quarantine"}
        elif subject == "junk":
            answer = {"action": "junk"}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = tls.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

struct Service {
    /// Killed when dropped.
    _child: Watched,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Serves HTTPS with `cert`.
    fn start(cert: &harness::tls::CertFiles) -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .args(["-c", SERVICE])
            .arg(&log)
            .arg(&cert.cert)
            .arg(&cert.key)
            .stdout(Stdio::piped())
            .spawn()
            .map(watch)
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let port = line.trim().parse().expect("a port");
        Service {
            _child: child,
            port,
            log,
            _dir: dir,
        }
    }
}

#[test]
fn service_verdicts_are_applied_and_a_failing_service_gets_on_error() {
    let ca = TestCa::new();
    let svc = Service::start(&ca.issue("hooks", &["hooks.example.test"]));
    let dns = DnsServer::start(&json!({
        "hooks.example.test": {"A": ["127.0.0.1"]},
        "outside.test": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
    }));
    let base = format!("https://hooks.example.test:{}/", svc.port);
    // A filter before the webhook, whose verdict the service is told.
    let tagger = plugin_entry("tagger", test_plugins::ADD_HEADER, "5s", "");
    let extra = format!(
        "[[listen]]\nprotocol = \"imap\"\naddress = \"{{ip}}:0\"\n[tls]\nallow_plaintext_auth = true\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[auth]\n[relay]\ntls_ca = \"{}\"\n{tagger}\
         [[plugin]]\nname = \"webhook\"\npath = \"{}\"\ntimeout = \"10s\"\non_error = \"tempfail\"\nhttp = [\"{base}\"]\nconfig = {{ url = \"{base}hook\", headers = \"yes\" }}\n",
        dns.address(),
        ca.ca_file().display(),
        test_plugins::shipped::WEBHOOK,
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    t.add_user("bob@example.test", "pw");
    let out = python(
        &format!(
            "{PY_FILTER}\n{}",
            r#"
def message(subject):
    return "From: lisa@outside.test\r\nSubject: %s\r\n\r\nhello\r\n" % subject
assert send(message("hello")) == (250, "")
code, text = send(message("refuse"))
assert (code, text) == (554, "5.7.1 refused by the policy service"), (code, text)
assert send(message("hold")) == (250, "")
assert send(message("junk")) == (250, "")
code, text = send(message("break"))
assert code == 451 and text.startswith("4.7.1"), (code, text)
inbox, junk = folder("INBOX"), folder("Junk")
assert len(inbox) == 1 and "X-Webhook: seen lisa@outside.test" in inbox[0], inbox
assert len(junk) == 2, junk
assert "Subject: hold" in junk[0] and "Subject: junk" in junk[1], junk
print("ok")
"#
        ),
        &[&t.port("smtp").to_string(), &t.port("imap").to_string()],
    );
    assert_eq!(out.trim(), "ok");
    let requests = std::fs::read_to_string(&svc.log).expect("requests");
    let first: serde_json::Value =
        serde_json::from_str(requests.lines().next().expect("a request")).expect("json");
    assert_eq!(first["envelope"]["sender"], "lisa@outside.test");
    assert_eq!(first["envelope"]["recipients"][0], "bob@example.test");
    assert_eq!(first["client"]["address"], "127.0.0.1");
    assert_eq!(first["auth"]["spf"], "pass", "{first}");
    assert!(
        first["headers"].as_array().is_some_and(|h| !h.is_empty()),
        "{first}"
    );
    // The decisions so far: the earlier filter's verdict (its header edit
    // is its own: no detail), and the SPF/DKIM/DMARC check with its result.
    let so_far = first["verdicts"].as_array().expect("verdicts");
    let by = |who: &str| so_far.iter().find(|d| d["by"] == who);
    let tagger = by("plugin tagger").unwrap_or_else(|| panic!("{first}"));
    assert_eq!(
        (&tagger["stage"], &tagger["verdict"], &tagger["detail"]),
        (&json!("data"), &json!("continue"), &json!(null)),
        "{first}"
    );
    let auth = by("spf/dkim/dmarc").unwrap_or_else(|| panic!("{first}"));
    assert!(
        auth["detail"]
            .as_str()
            .is_some_and(|d| d.contains("spf=pass")),
        "{first}"
    );
    assert!(
        so_far
            .iter()
            .any(|d| d["stage"] == "rcpt" && d["rcpt"] == "bob@example.test"),
        "{first}"
    );
    assert!(!first.to_string().contains("X-Tern-Filter"), "{first}");
    assert_eq!(requests.lines().count(), 5);
    assert!(t.log().contains("HTTP status 500"), "the reason is logged");
    let story = t.cli_ok(&["trace", "--client", "127.0.0.1", "--since", "1h"]);
    assert!(
        story.contains("data     plugin webhook: local folder — Junk"),
        "{story}"
    );
}

/// An entry written for the first webhook (HTTP by hand over `connect`)
/// is refused by `check-config`, naming the import it lacks a grant for;
/// with the `http` grant instead it passes.
#[test]
fn a_connect_grant_is_not_enough_the_http_grant_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = check_plugin_config(
        dir.path(),
        test_plugins::shipped::WEBHOOK,
        "connect = [\"127.0.0.1:8080\"]\nconfig = { url = \"http://127.0.0.1:8080/tern\" }\n",
    );
    let said = format!(
        "{}{}",
        text(&old.stdout),
        String::from_utf8_lossy(&old.stderr)
    );
    assert!(!old.status.success(), "{said}");
    assert!(said.contains("wasi:http"), "{said}");
    let new = check_plugin_config(
        dir.path(),
        test_plugins::shipped::WEBHOOK,
        "http = [\"http://127.0.0.1:8080/\"]\nconfig = { url = \"http://127.0.0.1:8080/tern\" }\n",
    );
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
}
