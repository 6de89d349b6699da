//! ManageSieve (RFC 5804) through the real binary with two independent
//! clients — Debian's `sieve-connect` (Perl) and Python's `sievelib` —
//! over STARTTLS with a certificate from the test CA (verified by both),
//! a raw-socket session for the error cases (compile error at
//! line:column, the size and count quotas, authentication refused before
//! TLS, input pipelined across STARTTLS discarded, `{N}` literals, the
//! response codes), and `tern sieve …` through the control socket and on
//! the store of a stopped server.

mod harness;
use harness::tls::TestCa;
use harness::{Tern, python};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const USER: &str = "ann@example.test";
const PASSWORD: &str = "secret pw";
const SCRIPT: &str = "require [\"fileinto\", \"vacation\"];\r\nif header :contains \"subject\" \"[list]\" {\r\n  fileinto \"lists\";\r\n}\r\nvacation :days 3 \"I am away\";\r\n";
/// Line 2 calls fileinto without requiring it.
const BROKEN: &str = "# broken\r\nfileinto \"x\";\r\n";

fn server(ca: &TestCa, plaintext_auth: bool) -> Tern {
    server_with(ca, plaintext_auth, "")
}

/// `server`, with more config tables after `[sieve]`.
fn server_with(ca: &TestCa, plaintext_auth: bool, extra: &str) -> Tern {
    let cert = ca.issue("server", &["mx.example.test", "127.0.0.1"]);
    let t = Tern::start(&format!(
        r#"hostname = "mx.example.test"
local_domains = ["example.test"]
data_dir = "data"

[[listen]]
protocol = "managesieve"
address = "{{ip}}:0"

[tls]
certificate = {:?}
private_key = {:?}
allow_plaintext_auth = {plaintext_auth}

[sieve]
max_script_size = "1KiB"
max_scripts = 3
{extra}
"#,
        cert.cert, cert.key
    ));
    t.add_user(USER, PASSWORD);
    t
}

/// Runs `sieve-connect` against the server (STARTTLS, the CA's
/// certificate verified, AUTHENTICATE PLAIN), the password on fd 0.
fn sieve_connect(t: &Tern, ca: &TestCa, args: &[&str]) -> Output {
    let mut child = Command::new("sieve-connect")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &t.port_arg("managesieve"),
        ])
        .args(["--user", USER, "--passwordfd", "0", "--authmech", "PLAIN"])
        .arg("--tlscafile")
        .arg(ca.ca_file())
        .args(["--tlshostname", "mx.example.test", "--noclearauth"])
        .args(args)
        .current_dir(t.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sieve-connect (scripts/install-test-deps installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    drop(stdin);
    child.wait_with_output().expect("sieve-connect output")
}

fn ok(out: &Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

#[test]
fn sieve_connect_puts_lists_activates_gets_and_deletes_over_starttls() {
    let ca = TestCa::new();
    let t = server(&ca, false);
    let dir = t.dir.path();
    std::fs::write(dir.join("local.sieve"), SCRIPT).unwrap();
    std::fs::write(dir.join("broken.sieve"), BROKEN).unwrap();

    ok(
        &sieve_connect(
            &t,
            &ca,
            &[
                "--upload",
                "--localsieve",
                "local.sieve",
                "--remotesieve",
                "filters",
            ],
        ),
        "upload",
    );
    let list = ok(&sieve_connect(&t, &ca, &["--list"]), "list");
    // sieve-connect prints LISTSCRIPTS' lines as the server sent them.
    assert!(list.lines().any(|l| l.trim() == "\"filters\""), "{list}");
    ok(
        &sieve_connect(&t, &ca, &["--activate", "--remotesieve", "filters"]),
        "activate",
    );
    let list = ok(&sieve_connect(&t, &ca, &["--list"]), "list");
    assert!(
        list.lines().any(|l| l.trim() == "\"filters\" ACTIVE"),
        "{list}"
    );
    ok(
        &sieve_connect(
            &t,
            &ca,
            &[
                "--download",
                "--remotesieve",
                "filters",
                "--localsieve",
                "back.sieve",
            ],
        ),
        "download",
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("back.sieve")).unwrap(),
        SCRIPT,
        "the script comes back byte for byte"
    );
    // The server's own view agrees (through the control socket).
    let out = t.cli(&["sieve", "list", USER], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "filters\tactive\n");

    // A broken script is refused, with its line and column.
    let out = sieve_connect(&t, &ca, &["--checkscript", "--localsieve", "broken.sieve"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("line 2, column 1"), "{text}");
    let out = sieve_connect(
        &t,
        &ca,
        &[
            "--upload",
            "--localsieve",
            "broken.sieve",
            "--remotesieve",
            "bad",
        ],
    );
    assert!(!out.status.success(), "a broken script must not be saved");

    // The active script cannot be deleted; deactivated, it can.
    let out = sieve_connect(&t, &ca, &["--delete", "--remotesieve", "filters"]);
    assert!(!out.status.success(), "deleted the active script");
    ok(&sieve_connect(&t, &ca, &["--deactivate"]), "deactivate");
    ok(
        &sieve_connect(&t, &ca, &["--delete", "--remotesieve", "filters"]),
        "delete",
    );
    let list = ok(&sieve_connect(&t, &ca, &["--list"]), "list");
    assert!(!list.contains("filters"), "{list}");
    let out = t.cli(&["sieve", "list", USER], "");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

/// sievelib's Client over STARTTLS, the CA trusted through SSL_CERT_FILE
/// (its context is Python's default one, which verifies).
const SIEVELIB: &str = r#"
import sys
from sievelib.managesieve import Client
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
script = "require \"fileinto\";\nif header :contains \"subject\" \"x\" {\n  fileinto \"X\";\n}\n"
c = Client("127.0.0.1", port, srvhostname="mx.example.test")
assert c.connect(user, pw, starttls=True, authmech="PLAIN"), c.errmsg
assert "fileinto" in c.get_sieve_capabilities()
assert c.get_implementation() == "Tern"
assert c.havespace("one", len(script))
assert c.putscript("one", script), c.errmsg
assert c.putscript("two", "keep;"), c.errmsg
assert c.setactive("one"), c.errmsg
assert c.listscripts() == ("one", ["two"]), c.listscripts()
assert c.getscript("one") == script.rstrip("\n"), repr(c.getscript("one"))
assert c.renamescript("two", "three"), c.errmsg
assert not c.renamescript("three", "one")
assert c.errcode == b"ALREADYEXISTS", c.errcode
assert not c.deletescript("one")
assert c.errcode == b"ACTIVE", c.errcode
assert not c.getscript("nope")
assert c.errcode == b"NONEXISTENT", c.errcode
assert c.checkscript("keep;")
assert not c.checkscript("if true {\n  fileinto \"x\";\n}\n")
assert b"line 2, column 3" in c.errmsg, c.errmsg
assert not c.havespace("big", 5000)
assert c.errcode == b"QUOTA/MAXSIZE", c.errcode
assert c.putscript("four", "keep;")
assert not c.putscript("five", "keep;")
assert c.errcode == b"QUOTA/MAXSCRIPTS", c.errcode
assert c.setactive("")
assert c.listscripts() == (None, ["four", "one", "three"]), c.listscripts()
assert c.deletescript("one")
c.logout()
print("ok")
"#;

#[test]
fn sievelib_manages_scripts_over_starttls() {
    let ca = TestCa::new();
    let t = server(&ca, false);
    let out = Command::new("python3")
        .arg("-c")
        .arg(SIEVELIB)
        .args([&t.port_arg("managesieve"), USER, PASSWORD])
        .env("SSL_CERT_FILE", ca.ca_file())
        .output()
        .expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "sievelib (scripts/install-test-deps installs it):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = t.cli(&["sieve", "list", USER], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "four\nthree\n");
}

/// A raw session: greeting, refusals before TLS, pipelining across
/// STARTTLS, AUTHENTICATE with a continuation, literals of both forms, the
/// quotas and the response codes.
const RAW: &str = r##"
import sys, socket, ssl, base64
port, ca, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")
def response():
    """Lines up to and including the OK/NO/BYE line."""
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed; so far %r" % lines
        line = line.rstrip(b"\r\n")
        lines.append(line)
        if line.split(b" ")[0] in (b"OK", b"NO", b"BYE"):
            return lines
def send(data):
    sock.sendall(data)
sock = s
greeting = response()
assert b'"IMPLEMENTATION" "Tern"' in greeting, greeting
assert b'"SASL" ""' in greeting, greeting
assert b'"STARTTLS"' in greeting, greeting
assert b'"VERSION" "1.0"' in greeting, greeting
assert any(l.startswith(b'"SIEVE" "') and b"fileinto" in l and b"vacation" in l for l in greeting), greeting
assert any(l.startswith(b'"MAXREDIRECTS" "') for l in greeting), greeting
plain = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode())
send(b'AUTHENTICATE "PLAIN" "' + plain + b'"\r\n')
r = response()
assert r[-1].startswith(b"NO (ENCRYPT-NEEDED)"), r
send(b"LISTSCRIPTS\r\n")
assert response()[-1].startswith(b"NO"), "scripts before login"
# STARTTLS with a login pipelined behind it: the login must be dropped.
send(b'STARTTLS\r\nAUTHENTICATE "PLAIN" "' + plain + b'"\r\n')
r = response()
assert r[-1].startswith(b"OK"), r
ctx = ssl.create_default_context(cafile=ca)
sock = ctx.wrap_socket(s, server_hostname="mx.example.test")
f = sock.makefile("rb")
caps = response()
assert b'"SASL" "PLAIN"' in caps and b'"STARTTLS"' not in caps, caps
send(b'NOOP "after-tls"\r\n')
r = response()
assert r == [b'OK (TAG "after-tls") "Done"'], r
send(b"LISTSCRIPTS\r\n")
assert response()[-1].startswith(b"NO"), "the pipelined login was carried out"
# AUTHENTICATE with the response in a continuation.
send(b'AUTHENTICATE "PLAIN"\r\n')
assert f.readline() == b'""\r\n'
send(b'"' + plain + b'"\r\n')
r = response()
assert r[-1].startswith(b"OK"), r
# A compile error: NO, with line and column.
bad = b"require \"fileinto\";\r\nif true {\r\n    fileinto :copy \"x\";\r\n}\r\n"
send(b'PUTSCRIPT "bad" {%d+}\r\n' % len(bad) + bad + b"\r\n")
r = response()
assert r[-1].startswith(b'NO "line 3, column 14: unknown tag :copy'), r
# Too big: the literal is read and dropped, the session goes on.
big = b"#" * 2000 + b"\r\nkeep;\r\n"
send(b'PUTSCRIPT "big" {%d+}\r\n' % len(big) + big + b"\r\n")
r = response()
assert r[-1].startswith(b"NO (QUOTA/MAXSIZE)"), r
send(b'HAVESPACE "big" 5000\r\n')
assert response()[-1].startswith(b"NO (QUOTA/MAXSIZE)")
# Three scripts fit ({N} accepted as {N+}); a fourth does not.
for name in (b"a", b"b", b"c"):
    send(b'PUTSCRIPT "' + name + b'" {5}\r\nkeep;\r\n')
    r = response()
    assert r == [b'OK "Script saved"'], r
send(b'PUTSCRIPT "d" "keep;"\r\n')
r = response()
assert r[-1].startswith(b"NO (QUOTA/MAXSCRIPTS)"), r
send(b'HAVESPACE "d" 5\r\n')
assert response()[-1].startswith(b"NO (QUOTA/MAXSCRIPTS)")
send(b'HAVESPACE "a" 5\r\n')
assert response()[-1].startswith(b"OK")
send(b'SETACTIVE "a"\r\nLISTSCRIPTS\r\n')
assert response()[-1].startswith(b"OK")
r = response()
assert r == [b'"a" ACTIVE', b'"b"', b'"c"', b'OK "Listscripts completed"'], r
send(b'DELETESCRIPT "a"\r\n')
assert response()[-1].startswith(b"NO (ACTIVE)")
send(b'RENAMESCRIPT "b" "c"\r\n')
assert response()[-1].startswith(b"NO (ALREADYEXISTS)")
send(b'GETSCRIPT "zz"\r\n')
assert response()[-1].startswith(b"NO (NONEXISTENT)")
send(b'SETACTIVE "zz"\r\n')
assert response()[-1].startswith(b"NO (NONEXISTENT)")
send(b'RENAMESCRIPT "a" "active one"\r\nGETSCRIPT "active one"\r\n')
assert response()[-1].startswith(b"OK")
r = response()
assert r == [b"{5}", b"keep;", b'OK "Getscript completed"'], r
send(b'CHECKSCRIPT "stop;"\r\n')
assert response()[-1].startswith(b"OK")
send(b"XYZZY\r\n")
assert response()[-1].startswith(b"NO")
send(b"UNAUTHENTICATE\r\nLISTSCRIPTS\r\n")
assert response()[-1].startswith(b"OK")
assert response()[-1].startswith(b"NO")
send(b"LOGOUT\r\n")
assert response()[-1].startswith(b"OK")
assert f.read() == b"", "the server closes after LOGOUT"
print("ok")
"##;

#[test]
fn raw_session_error_cases_and_starttls_pipelining() {
    let ca = TestCa::new();
    let t = server(&ca, false);
    let out = python(
        RAW,
        &[
            &t.port_arg("managesieve"),
            &ca.ca_file().to_string_lossy(),
            USER,
            PASSWORD,
        ],
    );
    assert_eq!(out.trim(), "ok");
    let out = t.cli(&["sieve", "list", USER], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "active one\tactive\nb\nc\n"
    );
}

#[test]
fn admin_cli_through_the_server_and_on_the_store() {
    let ca = TestCa::new();
    let mut t = server(&ca, true);
    // No plugin runs the scripts in this server: the log says so.
    assert!(
        t.log()
            .contains("Sieve scripts are kept (ManageSieve) but not run"),
        "{}",
        t.log()
    );
    let dir = t.dir.path().to_path_buf();
    std::fs::write(dir.join("s.sieve"), SCRIPT).unwrap();
    std::fs::write(dir.join("broken.sieve"), BROKEN).unwrap();
    let file = |n: &str| dir.join(n).to_string_lossy().into_owned();

    let out = t.cli(&["sieve", "put", USER, "main", &file("broken.sieve")], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2:1") && err.contains("fileinto"), "{err}");
    let out = t.cli(
        &[
            "sieve",
            "put",
            "nobody@example.test",
            "main",
            &file("s.sieve"),
        ],
        "",
    );
    assert!(!out.status.success(), "a script for an unknown user");
    ok(
        &t.cli(&["sieve", "put", USER, "main", &file("s.sieve")], ""),
        "tern sieve",
    );
    ok(
        &t.cli(&["sieve", "activate", USER, "main"], ""),
        "tern sieve",
    );
    let out = t.cli(&["sieve", "get", USER, "main"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), SCRIPT);
    let out = t.cli(&["sieve", "delete", USER, "main"], "");
    assert!(!out.status.success(), "the active script was deleted");

    // Stopped: the same commands work on the store, and see the same scripts.
    t.stop();
    let out = t.cli(&["sieve", "list", USER], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "main\tactive\n");
    ok(
        &t.cli(&["sieve", "activate", USER, "--none"], ""),
        "tern sieve",
    );
    ok(&t.cli(&["sieve", "delete", USER, "main"], ""), "tern sieve");
    let out = t.cli(&["sieve", "list", USER], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

/// An idle session is closed with BYE; a connection over
/// `limits.max_connections` is turned away with `BYE (TRYLATER)`.
const LIMITS: &str = r#"
import sys, socket
port = int(sys.argv[1])
def greeting(s):
    f = s.makefile("rb")
    lines = []
    while True:
        line = f.readline()
        assert line, lines
        lines.append(line.rstrip(b"\r\n"))
        if line.split(b" ")[0] in (b"OK", b"NO", b"BYE"):
            return f, lines
first = socket.create_connection(("127.0.0.1", port), timeout=60)
f1, lines = greeting(first)
assert lines[-1].startswith(b"OK"), lines
second = socket.create_connection(("127.0.0.1", port), timeout=60)
_, lines = greeting(second)
assert lines == [b'BYE (TRYLATER) "too many connections, try again later"'], lines
# The first session says nothing: it is closed after command_timeout.
line = f1.readline()
assert line == b'BYE "Disconnected for inactivity"\r\n', line
assert f1.read() == b""
print("ok")
"#;

#[test]
fn idle_sessions_are_closed_and_the_connection_limit_applies() {
    let ca = TestCa::new();
    let t = server_with(
        &ca,
        false,
        "[limits]\ncommand_timeout = \"1s\"\nmax_connections = 1\n",
    );
    let out = python(LIMITS, &[&t.port_arg("managesieve")]);
    assert_eq!(out.trim(), "ok");
}
