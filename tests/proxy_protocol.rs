//! The PROXY protocol on `proxy_protocol = true` listeners, through the
//! real binary: raw v1 and v2 headers written by a Python client make the
//! claimed address the client's (Received header, logs) on SMTP and on
//! implicit-TLS POP3 (header before the handshake); a header from outside
//! `[relay] proxy_sources`, a malformed, missing, oversized or late one
//! closes the connection without a greeting while others are still served;
//! check-config refuses a PROXY listener nobody may feed. Then Debian's
//! HAProxy in front of Tern (`send-proxy-v2` for SMTP, `send-proxy` for
//! IMAP): clients bound to distinct loopback addresses are seen as
//! themselves, and `max_connections_per_client` counts each of them.

mod harness;

use harness::*;
use std::process::{Command, Stdio};
use tern::testing::ports::free_port;
use tern::testing::reaper::{Watched, spawn_group};

/// smtp and pop3s listeners that expect a PROXY header, a submission one
/// that does not; only 127.0.0.1 may send headers. Without an `[auth]`
/// table in `extra`, SPF/DKIM/DMARC are off.
fn proxied_config(extra: &str) -> String {
    format!(
        r#"hostname = "mx.example.test"
local_domains = ["example.test"]
data_dir = "data"

[[listen]]
protocol = "smtp"
address = "{{ip}}:0"
proxy_protocol = true

[[listen]]
protocol = "pop3s"
address = "{{ip}}:0"
proxy_protocol = true

[[listen]]
protocol = "submission"
address = "{{ip}}:0"

[relay]
proxy_sources = ["127.0.0.1/32"]

[tls]
allow_plaintext_auth = true

{extra}
"#,
        extra = if extra.contains("[auth]") {
            extra.to_string()
        } else {
            format!("[auth]\nverify = false\n{extra}")
        }
    )
}

/// Python helpers: PROXY headers built from the specification, and SMTP
/// and POP3S clients that write a header before anything else.
const PY_PROXY: &str = r#"
import ipaddress, poplib, smtplib, socket, ssl, struct, sys, time
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
def v1(src, dst, sport, dport):
    family = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()
def v2(src, dst, sport, dport, command=1):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    family = 0x11 if s.version == 4 else 0x21
    body = s.packed + d.packed + struct.pack("!HH", sport, dport)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20 | command, family])
            + struct.pack("!H", len(body)) + body)
def connect(port, header, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), 60, (source, 0))
    s.sendall(header)
    return s
class SMTP(smtplib.SMTP):
    """SMTP with a PROXY header first."""
    def __init__(self, header, port, source="127.0.0.1"):
        self.header = header
        super().__init__("127.0.0.1", port, timeout=60, source_address=(source, 0))
    def _get_socket(self, host, port, timeout):
        return connect(port, self.header, self.source_address[0])
class POP3S(poplib.POP3_SSL):
    """POP3 over implicit TLS with a PROXY header before the handshake."""
    def __init__(self, header, port):
        self.header = header
        super().__init__("127.0.0.1", port, timeout=60, context=CTX)
    def _create_socket(self, timeout):
        return CTX.wrap_socket(connect(self.port, self.header), server_hostname="mx.example.test")
def send(header, port, helo, source="127.0.0.1"):
    s = SMTP(header, port, source)
    s.ehlo(helo)
    s.sendmail("lisa@outside.test", ["bob@example.test"],
               f"From: lisa@outside.test\r\nSubject: via {helo}\r\n\r\nhello\r\n")
    s.quit()
def closed_without_greeting(s):
    """The server closes: no byte ever comes (a reset counts as closed)."""
    try:
        data = s.recv(512)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    s.close()
    return data == b""
"#;

fn py(script: &str, args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(&format!("{PY_PROXY}\n{script}"), &args)
}

/// One header field of every message in bob's INBOX (stops the server).
fn stored_fields(server: &mut Tern, name: &str) -> Vec<String> {
    server
        .mailbox("bob@example.test")
        .iter()
        .map(|m| {
            let t = text(m);
            let head = t.split("\r\n\r\n").next().unwrap_or_default().to_string();
            header(&head, name).unwrap_or_default()
        })
        .collect()
}

/// The `Received:` lines of every message in bob's INBOX (stops the server).
fn received_lines(server: &mut Tern) -> Vec<String> {
    stored_fields(server, "Received")
}

#[test]
fn raw_v1_and_v2_headers_make_the_claimed_address_the_client() {
    let mut server = Tern::start(&proxied_config(""));
    server.add_user("bob@example.test", "bob-pw");
    let smtp = server.port("smtp").to_string();
    let pop3s = server.port("pop3s").to_string();
    py(
        r#"
port, pop3s = int(sys.argv[1]), int(sys.argv[2])
send(v1("192.0.2.7", "198.51.100.1", 40001, 25), port, "v1.client.test")
send(v2("2001:db8::7", "2001:db8::1", 40002, 25), port, "v2.client.test")
# v2 LOCAL (a balancer's health check): the real peer, 127.0.0.1.
send(v2("192.0.2.99", "198.51.100.1", 1, 25, command=0), port, "local.client.test")
# v1 UNKNOWN: the real peer too.
send(b"PROXY UNKNOWN\r\n", port, "unknown.client.test")
# Implicit TLS: the header comes before the TLS handshake.
p = POP3S(v2("203.0.113.9", "198.51.100.1", 40003, 995), pop3s)
p.user("bob@example.test"); p.pass_("bob-pw")
assert p.stat()[0] == 4, p.stat()
p.quit()
"#,
        &[smtp, pop3s],
    );
    let log = server.log();
    assert!(
        log.contains("v1.client.test [192.0.2.7]") && log.contains("v2.client.test [2001:db8::7]"),
        "{log}"
    );
    assert!(
        log.contains("client=203.0.113.9:40003") && log.contains("pop3 logout"),
        "{log}"
    );
    let received = received_lines(&mut server);
    assert_eq!(received.len(), 4, "{received:?}");
    let by_helo = |helo: &str| {
        received
            .iter()
            .find(|r| r.starts_with(&format!("from {helo} ")))
            .unwrap_or_else(|| panic!("no Received from {helo}: {received:?}"))
            .clone()
    };
    assert!(
        by_helo("v1.client.test").contains("[192.0.2.7]"),
        "{received:?}"
    );
    assert!(
        by_helo("v2.client.test").contains("2001:db8::7"),
        "{received:?}"
    );
    assert!(
        by_helo("local.client.test").contains("[127.0.0.1]"),
        "{received:?}"
    );
    assert!(
        by_helo("unknown.client.test").contains("[127.0.0.1]"),
        "{received:?}"
    );
}

#[test]
fn spf_is_checked_against_the_address_the_header_names() {
    // Both connections come from 127.0.0.1; only the PROXY header differs.
    let dns = DnsServer::start(&serde_json::json!({
        "lb.test": {"TXT": ["v=spf1 ip4:192.0.2.7 -all"]},
    }));
    let mut server = Tern::start(&proxied_config(&format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\n[auth]\n",
        dns.address()
    )));
    server.add_user("bob@example.test", "bob-pw");
    py(
        r#"
port = int(sys.argv[1])
for ip, helo in [("192.0.2.7", "listed.client.test"), ("192.0.2.8", "other.client.test")]:
    s = SMTP(v1(ip, "198.51.100.1", 40000, 25), port)
    s.ehlo(helo)
    s.sendmail("a@lb.test", ["bob@example.test"], f"From: a@lb.test\r\nSubject: {helo}\r\n\r\nhi\r\n")
    s.quit()
"#,
        &[server.port("smtp").to_string()],
    );
    let results = stored_fields(&mut server, "Authentication-Results");
    assert_eq!(results.len(), 2, "{results:?}");
    // The SPF result for MAIL FROM in the message that came with `helo`.
    let spf = |helo: &str| {
        let header = results
            .iter()
            .find(|r| r.contains(&format!("smtp.helo={helo}")))
            .unwrap_or_else(|| panic!("no results for {helo}: {results:?}"));
        header
            .split(';')
            .find(|e| e.contains("smtp.mailfrom=a@lb.test"))
            .and_then(|e| e.split_whitespace().next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(spf("listed.client.test"), "spf=pass", "{results:?}");
    assert_eq!(spf("other.client.test"), "spf=fail", "{results:?}");
}

#[test]
fn untrusted_malformed_missing_and_late_headers_close_the_connection() {
    let mut server = Tern::start(&proxied_config(""));
    server.add_user("bob@example.test", "bob-pw");
    let smtp = server.port("smtp").to_string();
    let submission = server.port("submission").to_string();
    let out = py(
        r#"
port, submission = int(sys.argv[1]), int(sys.argv[2])
good = v1("192.0.2.7", "198.51.100.1", 40001, 25)
# A valid header, but from 127.0.0.9, which proxy_sources does not name.
assert closed_without_greeting(connect(port, good, source="127.0.0.9")), "untrusted"
# Malformed v1, no header at all, a TLS hello instead, an oversized v2,
# an endless v1 line, a v2 with a bad version.
for bad in [b"PROXY TCP4 192.0.2.7 nonsense 1 25\r\n",
            b"EHLO client.test\r\n",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
            b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xea\x60",
            b"PROXY TCP4 " + b"1" * 120,
            b"\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x0c" + bytes(12)]:
    assert closed_without_greeting(connect(port, bad)), bad
# A header that never comes: closed after the server's short timeout.
assert closed_without_greeting(connect(port, b"")), "silent"
# The server still serves a good header, and plain clients elsewhere.
send(good, port, "after.client.test")
s = smtplib.SMTP("127.0.0.1", submission, timeout=60)
assert s.ehlo()[0] == 250
s.quit()
print("ok")
"#,
        &[smtp, submission],
    );
    assert!(out.contains("ok"), "{out}");
    let log = server.log();
    for why in [
        "127.0.0.9 is not in relay.proxy_sources",
        "malformed PROXY v1 header",
        "did not start with a PROXY v1 or v2 header",
        "PROXY header longer than",
        "malformed PROXY v2 header",
        "no complete PROXY header within",
    ] {
        assert!(log.contains(why), "log lacks {why:?}:\n{log}");
    }
    let received = received_lines(&mut server);
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(received[0].contains("[192.0.2.7]"), "{received:?}");
}

#[test]
fn check_config_refuses_a_proxy_listener_with_no_proxy_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tern.toml");
    // `tern check-config` with the proxy_sources line replaced.
    let check = |sources: &str| {
        let config = proxied_config("")
            .replace("{ip}", "127.0.0.1")
            .replace(r#"proxy_sources = ["127.0.0.1/32"]"#, sources);
        std::fs::write(&path, config).expect("config");
        let out = Command::new(tern_bin())
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("tern");
        (out.status.success(), text(&out.stderr))
    };
    let (ok, stderr) = check("proxy_sources = []");
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("relay.proxy_sources") && stderr.contains("proxy_protocol = true"),
        "{stderr}"
    );
    // Without the key, loopback may send headers: the config is valid.
    let (ok, stderr) = check("");
    assert!(ok, "{stderr}");
}

/// A private HAProxy in the foreground, killed when dropped.
struct Haproxy {
    /// Killed when dropped.
    _child: Watched,
    _dir: tempfile::TempDir,
}

/// Starts HAProxy with one TCP frontend per `(backend port, server option)`
/// and returns it with the frontends' ports, once each accepts.
fn haproxy(backends: &[(u16, &str)]) -> (Haproxy, Vec<u16>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = String::from(
        "global\n    maxconn 100\n\ndefaults\n    mode tcp\n    timeout connect 10s\n    \
         timeout client 120s\n    timeout server 120s\n",
    );
    let mut ports = Vec::new();
    for (i, (backend, option)) in backends.iter().enumerate() {
        let port = free_port();
        ports.push(port);
        cfg.push_str(&format!(
            "\nfrontend in{i}\n    bind 127.0.0.1:{port}\n    default_backend out{i}\n\
             \nbackend out{i}\n    server tern 127.0.0.1:{backend} {option}\n"
        ));
    }
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, &cfg).expect("haproxy config");
    let check = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .expect("haproxy (scripts/install-test-deps installs it)");
    assert!(
        check.status.success(),
        "haproxy -c: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let child = spawn_group(
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("start haproxy");
    let proxy = Haproxy {
        _child: child,
        _dir: dir,
    };
    for &port in &ports {
        wait_for("haproxy to listen", READY_BOUND, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }
    (proxy, ports)
}

#[test]
fn haproxy_in_front_names_each_client_and_limits_count_per_client() {
    let mut server = Tern::start(
        r#"hostname = "mx.example.test"
local_domains = ["example.test"]
data_dir = "data"

[[listen]]
protocol = "smtp"
address = "{ip}:0"
proxy_protocol = true

[[listen]]
protocol = "imap"
address = "{ip}:0"
proxy_protocol = true

[relay]
proxy_sources = ["127.0.0.1/32"]

[tls]
allow_plaintext_auth = true

[limits]
max_connections_per_client = 1

[auth]
verify = false
"#,
    );
    server.add_user("bob@example.test", "bob-pw");
    let (_haproxy, ports) = haproxy(&[
        (server.port("smtp"), "send-proxy-v2"),
        (server.port("imap"), "send-proxy"),
    ]);
    let out = py(
        r#"
smtp, imap = int(sys.argv[1]), int(sys.argv[2])
def line(f):
    return f.readline().decode()
# Mail from 127.0.0.7 through HAProxy (v2).
s = smtplib.SMTP("127.0.0.1", smtp, timeout=60, source_address=("127.0.0.7", 0))
s.ehlo("seven.client.test")
s.sendmail("lisa@outside.test", ["bob@example.test"], "Subject: via haproxy\r\n\r\nhi\r\n")
s.quit()
# One connection per client: 127.0.0.7 holds one, 127.0.0.8 is still
# served through the same HAProxy, a second one from 127.0.0.7 is not.
# The session above ends on the server a moment after QUIT's reply: its
# place comes back then (polled, within a generous bound).
deadline = time.time() + 60
while True:
    held = socket.create_connection(("127.0.0.1", smtp), 60, ("127.0.0.7", 0))
    hf = held.makefile("rb")
    first = line(hf)
    if first.startswith("220 "):
        break
    assert first.startswith("421 ") and time.time() < deadline, first
    held.close()
    time.sleep(0.05)
other = socket.create_connection(("127.0.0.1", smtp), 60, ("127.0.0.8", 0))
of = other.makefile("rb")
assert line(of).startswith("220 "), "from .8"
second = socket.create_connection(("127.0.0.1", smtp), 60, ("127.0.0.7", 0))
refused = line(second.makefile("rb"))
assert refused.startswith("421 4.7.0"), refused
held.close(); other.close(); second.close()
# IMAP through HAProxy (v1) from 127.0.0.6.
i = socket.create_connection(("127.0.0.1", imap), 60, ("127.0.0.6", 0))
f = i.makefile("rb")
assert line(f).startswith("* OK"), "imap greeting"
i.sendall(b"a LOGIN bob@example.test bob-pw\r\n")
while True:
    l = line(f)
    if l.startswith("a "):
        assert l.startswith("a OK"), l
        break
i.sendall(b"b LOGOUT\r\n")
i.close()
print("ok")
"#,
        &[ports[0].to_string(), ports[1].to_string()],
    );
    assert!(out.contains("ok"), "{out}");
    let log = server.log();
    assert!(
        log.contains("too many connections from this address"),
        "{log}"
    );
    assert!(
        log.contains("client=127.0.0.6:") && log.contains("imap login"),
        "{log}"
    );
    let received = received_lines(&mut server);
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(
        received[0].starts_with("from seven.client.test ([127.0.0.7])"),
        "{received:?}"
    );
}

/// `/metrics` as text.
fn scrape(port: u16) -> String {
    python(
        r#"
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=30).read().decode())
"#,
        &[&port.to_string()],
    )
}

/// A counter's value in a scrape (0 when absent).
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn haproxy_health_checks_send_local_and_are_served() {
    // `check check-send-proxy` health checks open connections with a v2
    // LOCAL header and close them: each is admitted (counted as a
    // connection), none refused for its header.
    let server = Tern::start(&proxied_config("[metrics]\naddress = \"{ip}:0\"\n"));
    let metrics = server.port("metrics");
    let (_haproxy, _ports) = haproxy(&[(
        server.port("smtp"),
        "send-proxy-v2 check check-send-proxy inter 100ms",
    )]);
    let accepted = "tern_connections_total{protocol=\"smtp\"}";
    wait_for("health checks", READY_BOUND, || {
        (counter(&scrape(metrics), accepted) >= 5.0).then_some(())
    });
    let m = scrape(metrics);
    assert_eq!(
        counter(
            &m,
            "tern_connections_refused_total{reason=\"proxy_protocol\"}"
        ),
        0.0,
        "{m}"
    );
    let log = server.log();
    assert!(!log.contains("PROXY"), "{log}");
}

#[test]
fn doctor_greets_a_proxy_listener_like_a_health_check() {
    let server = Tern::start(&proxied_config(
        "[dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"1s\"\n",
    ));
    server.pin_ports();
    let out = server.cli(&["doctor"], "");
    let report = String::from_utf8_lossy(&out.stdout);
    let line = |subject: &str| {
        report
            .lines()
            .find(|l| l.contains("listener") && l.contains(subject))
            .unwrap_or_else(|| panic!("no listener line for {subject}:\n{report}"))
            .to_string()
    };
    let smtp = line(&format!("smtp 127.0.0.1:{}", server.port("smtp")));
    assert!(
        smtp.starts_with("ok") && smtp.contains("after a PROXY v2 LOCAL header): 220 "),
        "{smtp}"
    );
    let pop3s = line(&format!("pop3s 127.0.0.1:{}", server.port("pop3s")));
    assert!(
        pop3s.starts_with("ok") && pop3s.contains("after a PROXY v2 LOCAL header): +OK"),
        "{pop3s}"
    );
    assert!(!server.log().contains("closed:"), "{}", server.log());
}
