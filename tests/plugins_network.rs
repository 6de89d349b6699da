//! Network granted per plugin (`[[plugin]] connect = […]`), through the
//! real binary: a probe plugin (tests/plugins/net_probe) connects at RCPT
//! TO and reads a line from a loopback server. A granted address works; an
//! address not granted is refused at the call; a granted name resolves
//! through Tern's resolver (the test DNS server) and works; a granted name
//! that resolves elsewhere does not open the address the plugin asked for; a peer that never answers is cut off
//! by the plugin's timeout (its on_error verdict).
//! A component importing wasi:sockets without a grant is refused by
//! `check-config` and by `serve`, naming the imports; the same component
//! with sdk/no-network plugged in (`wac plug`) imports no sockets, loads
//! without a grant, and its connect is refused at the call. The
//! connections a plugin holds are bounded across its instances: a plugin
//! that keeps its sockets (tests/plugins/socket_hoarder) gets no more than
//! the bound, and what it drops, or what an instance thrown away held,
//! counts no more.

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
fn a_network_import_without_a_grant_is_refused_and_bad_grants_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |entry: &str| check_plugin_config(dir.path(), test_plugins::NET_PROBE, entry);
    let refused = |err: &str| {
        assert!(
            err.contains("\"probe\"")
                && err.contains("imports wasi:sockets/")
                && err.contains("wasi:sockets/tcp@0.2.12")
                && err.contains("grants no network"),
            "{err}"
        );
    };
    let out = check("");
    assert!(!out.status.success(), "loads without a grant");
    refused(&text(&out.stderr));
    let out = check("connect = [\"127.0.0.1:11333\"]\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = check("connect = [\"127.0.0.1:11333\"]\nmax_connections = 0\n");
    assert!(!out.status.success(), "max_connections = 0 is accepted");
    assert!(
        text(&out.stderr).contains("max_connections = 0 is out of range (1 to 4096)"),
        "{}",
        text(&out.stderr)
    );
    let out = check("connect = [\"no-port\"]\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("connect entry \"no-port\""),
        "{}",
        text(&out.stderr)
    );
    // The server refuses to start with it too.
    check("");
    refused(&serve_refuses(dir.path()));
}

/// `wac plug NET_PROBE --plug NO_NETWORK`: the probe with sdk/no-network
/// answering its socket imports.
fn probe_without_sockets(dir: &std::path::Path) -> std::path::PathBuf {
    let out_path = dir.join("net_probe_no_network.wasm");
    let out = std::process::Command::new("wac")
        .args([
            "plug",
            test_plugins::NET_PROBE,
            "--plug",
            test_plugins::NO_NETWORK,
            "-o",
        ])
        .arg(&out_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wac ({e}); has scripts/install-test-deps run?"));
    assert!(out.status.success(), "wac plug: {}", text(&out.stderr));
    out_path
}

#[test]
fn without_a_grant_a_plugged_probe_loads_and_its_connect_is_refused_at_the_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = probe_without_sockets(dir.path());
    let inspect = std::process::Command::new(tern_bin())
        .args(["plugin", "inspect"])
        .arg(&wasm)
        .output()
        .expect("tern plugin inspect");
    let listing = text(&inspect.stdout);
    assert!(
        inspect.status.success(),
        "{listing}{}",
        text(&inspect.stderr)
    );
    assert!(
        listing.contains("wasi:io/streams") && !listing.contains("wasi:sockets/"),
        "{listing}"
    );
    let one = greeter("one");
    let plugin = format!(
        "[[plugin]]\nname = \"nogrant\"\npath = \"{}\"\ntimeout = \"5s\"\nconfig = {{ host = \"127.0.0.1\", port = \"{one}\" }}\n",
        wasm.display()
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugin));
    t.add_user("a@example.test", "pw");
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.ehlo("client.test")
s.mail("lisa@outside.test")
code, msg = s.rcpt("a@example.test")
print(code, msg.decode())
s.quit()
"#,
        &[&t.port("smtp").to_string()],
    );
    assert!(
        out.starts_with("451 4.7.1 no connection: Permission denied"),
        "{out}"
    );
}

#[test]
fn connections_held_are_bounded_across_instances_and_given_back() {
    let port = silent_server();
    let plugin = format!(
        "[[plugin]]\nname = \"hoarder\"\npath = \"{}\"\ntimeout = \"5s\"\nmax_connections = 50\nconnect = [\"127.0.0.1:{port}\"]\nconfig = {{ host = \"127.0.0.1\", port = \"{port}\" }}\n",
        test_plugins::SOCKET_HOARDER
    );
    let t = Tern::start(&config("mx.example.test", "example.test", &plugin));
    for user in ["keep-40", "keep-30", "drop", "trap"] {
        t.add_user(&format!("{user}@example.test"), "pw");
    }
    // Two sessions at once: each has an instance of its own.
    let out = python(
        r#"
import smtplib, sys
def session():
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
    s.ehlo("client.test")
    s.mail("lisa@outside.test")
    return s
def rcpt(name, s, local):
    code, msg = s.rcpt(local + "@example.test")
    print(name, local, code, msg.decode())
one, two = session(), session()
rcpt("one", one, "keep-40")
rcpt("two", two, "keep-40")
rcpt("two", two, "drop")
rcpt("two", two, "keep-30")
rcpt("one", one, "trap")
rcpt("two", two, "keep-30")
one.quit()
two.quit()
"#,
        &[&t.port("smtp").to_string()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    // The entry's max_connections (the default is 64).
    let bound = 50;
    assert_eq!(
        lines[0], "one keep-40 451 4.7.1 holding 40, opened 40 of 40",
        "{out}"
    );
    // The second instance gets what the first leaves of the bound.
    assert!(
        lines[1].starts_with(&format!(
            "two keep-40 451 4.7.1 holding {0}, opened {0} of 40: ",
            bound - 40
        )),
        "{out}"
    );
    // What it drops is given back.
    assert_eq!(
        lines[2],
        format!("two drop 451 4.7.1 holding 0, dropped {}", bound - 40),
        "{out}"
    );
    assert!(
        lines[3].starts_with(&format!(
            "two keep-30 451 4.7.1 holding {0}, opened {0} of 30: ",
            bound - 40
        )),
        "{out}"
    );
    // The first instance traps and is thrown away with its 40.
    assert!(
        lines[4].starts_with("one trap 451 4.7.1 Temporary local problem"),
        "{out}"
    );
    assert_eq!(
        lines[5],
        format!(
            "two keep-30 451 4.7.1 holding {}, opened 30 of 30",
            bound - 40 + 30
        ),
        "{out}"
    );
    assert!(
        t.log()
            .contains("socket refused: the plugin holds its max_connections already"),
        "the refusals are logged"
    );
}
