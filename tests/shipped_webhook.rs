//! The shipped `webhook` filter (plugins/webhook) in the real server
//! against a local HTTP service (Python's http.server, started by the
//! test): it receives the envelope, client and header fields as JSON, and
//! its answers are applied — a header added to a delivered message, a
//! refusal with the service's own reply, quarantine to Junk (read back
//! over IMAP) — and a service answering 500 gets the entry's `on_error`.

mod harness;

use harness::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tern::testing::reaper::{Watched, watch};

const SERVICE: &str = r#"
import http.server, json, sys
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
        elif subject == "junk":
            answer = {"action": "quarantine", "reason": "policy says junk"}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
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
    fn start() -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .args(["-c", SERVICE])
            .arg(&log)
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
    let svc = Service::start();
    let extra = format!(
        "[[listen]]\nprotocol = \"imap\"\naddress = \"{{ip}}:0\"\n[tls]\nallow_plaintext_auth = true\n[[plugin]]\nname = \"webhook\"\npath = \"{}\"\ntimeout = \"10s\"\non_error = \"tempfail\"\nconnect = [\"127.0.0.1:{}\"]\nconfig = {{ url = \"http://127.0.0.1:{}/hook\", headers = \"yes\" }}\n",
        test_plugins::shipped::WEBHOOK,
        svc.port,
        svc.port
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
assert send(message("junk")) == (250, "")
code, text = send(message("break"))
assert code == 451 and text.startswith("4.7.1"), (code, text)
inbox, junk = folder("INBOX"), folder("Junk")
assert len(inbox) == 1 and "X-Webhook: seen lisa@outside.test" in inbox[0], inbox
assert len(junk) == 1 and "Subject: junk" in junk[0], junk
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
    assert!(
        first["headers"].as_array().is_some_and(|h| !h.is_empty()),
        "{first}"
    );
    assert_eq!(requests.lines().count(), 4);
    assert!(t.log().contains("HTTP status 500"), "the reason is logged");
}
