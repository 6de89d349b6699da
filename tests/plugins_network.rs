//! Network granted per plugin (`[[plugin]] connect = […]`), through the
//! real binary: a probe plugin (tests/plugins/net_probe) connects at RCPT
//! TO and reads a line from a loopback server. A granted address works; an
//! address not granted is refused at the call; a granted name resolves
//! through Tern's resolver (the test DNS server) and works; a granted name
//! that resolves elsewhere does not open the address the plugin asked for; a peer that never answers is cut off
//! by the plugin's timeout (its on_error verdict).
//! A component importing wasi:sockets without a grant is named by
//! `check-config` (it still loads: its connects are refused at the call).

mod harness;

use harness::*;
use serde_json::json;
use std::io::Write;
use std::net::TcpListener;

/// A loopback server answering every connection with `greeting`.
fn greeter(greeting: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.write_all(format!("{greeting}\r\n").as_bytes());
        }
    });
    port
}

fn probe(name: &str, rcpt: &str, host: &str, port: u16, connect: &[String]) -> String {
    let connect: Vec<String> = connect.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\ntimeout = \"5s\"\nconnect = [{}]\nconfig = {{ rcpt = \"{rcpt}\", host = \"{host}\", port = \"{port}\" }}\n",
        test_plugins::NET_PROBE,
        connect.join(", ")
    )
}

#[test]
fn only_granted_addresses_and_names_are_reached() {
    let one = greeter("one");
    let two = greeter("two");
    let dns = DnsServer::start(&json!({
        "svc.test": {"A": ["127.0.0.1"]},
        "elsewhere.test": {"A": ["127.0.0.3"]},
    }));
    let granted = format!("127.0.0.1:{one}");
    let quiet = silent_server();
    let plugins = [
        probe(
            "granted",
            "a@example.test",
            "127.0.0.1",
            one,
            std::slice::from_ref(&granted),
        ),
        probe(
            "other-port",
            "b@example.test",
            "127.0.0.1",
            two,
            std::slice::from_ref(&granted),
        ),
        probe(
            "by-name",
            "c@example.test",
            "svc.test",
            one,
            &[format!("svc.test:{one}")],
        ),
        probe(
            "name-elsewhere",
            "d@example.test",
            "127.0.0.1",
            one,
            &[format!("elsewhere.test:{one}")],
        ),
        probe(
            "silent",
            "e@example.test",
            "127.0.0.1",
            quiet,
            &[format!("127.0.0.1:{quiet}")],
        )
        .replace("timeout = \"5s\"", "timeout = \"1s\""),
    ]
    .concat();
    let extra = format!("[dns]\nnameservers = [\"{}\"]\n{plugins}", dns.address());
    let t = Tern::start(&config("mx.example.test", "example.test", &extra));
    for user in ["a", "b", "c", "d", "e"] {
        t.add_user(&format!("{user}@example.test"), "pw");
    }
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.ehlo("client.test")
s.mail("lisa@outside.test")
import time
for rcpt in "abcde":
    started = time.monotonic()
    code, msg = s.rcpt(rcpt + "@example.test")
    print(rcpt, code, msg.decode(), "in %.1fs" % (time.monotonic() - started))
s.quit()
"#,
        &[&t.port("smtp").to_string()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[0].starts_with("a 550 5.7.1 got one"),
        "granted: {out}"
    );
    assert!(
        lines[1].starts_with("b 451 4.7.1 no connection: Permission denied"),
        "a port not granted is refused: {out}"
    );
    assert!(
        lines[2].starts_with("c 550 5.7.1 got one"),
        "a granted name: {out}"
    );
    assert!(
        lines[3].starts_with("d 451 4.7.1 no connection: Permission denied"),
        "a name granted does not grant another address: {out}"
    );
    // The read from a peer that never answers ends with the 1 s timeout
    // (plus the grace), not the peer: the on_error verdict.
    assert!(lines[4].starts_with("e "), "{out}");
    cut_off_by_timeout(lines[4], &out);
}

#[test]
fn a_network_import_without_a_grant_is_named_and_bad_grants_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |entry: &str| check_plugin_config(dir.path(), test_plugins::NET_PROBE, entry);
    // It loads (CPython components import wasi:sockets unused), with a
    // warning naming the import; its connects are refused at the call
    // (only_granted_addresses_and_names_are_reached).
    let out = check("");
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("\"probe\"")
            && err.contains("imports wasi:sockets/")
            && err.contains("grants no network"),
        "{err}"
    );
    let out = check("connect = [\"127.0.0.1:11333\"]\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("grants no network"));
    let out = check("connect = [\"no-port\"]\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("connect entry \"no-port\""),
        "{}",
        text(&out.stderr)
    );
}
