//! Several `tern serve` nodes with one config sharing one PostgreSQL store
//! are one mail system (issue #19), for the people reading mail: mail
//! delivered on one node is read over IMAP and POP3 on another; IDLE on one
//! node is woken by a delivery on another (the latency is printed); an IMAP
//! command on one node reports what another node changed; a POP3 maildrop
//! locked on one node is `[IN-USE]` on the others and free again after
//! QUIT, or once a dead node's lock lapses; `limits.max_sessions_per_user`
//! and failed-login throttling count across nodes; greylisting decided on
//! one node holds on another, and the plugins' key-value writes stay
//! atomic between nodes; a web mail session made on one node works on
//! another. One private PostgreSQL per test process, a database per test;
//! skipped, saying so, only where PostgreSQL is not installed.

mod harness;
use harness::{Tern, block_on, engine, python, wait_for};
use std::time::{Duration, Instant};

/// A fresh database on the process's private PostgreSQL; None (with a
/// note) when PostgreSQL is not installed.
fn database() -> Option<String> {
    engine::postgres_installed().then(engine::fresh_database)
}

/// The nodes' one config, but for `node_id`: SMTP, POP3, IMAP and HTTP on
/// the node's address, the shared `[store]`, and `extra` (tables).
fn node_config(node: usize, url: &str, extra: &str) -> String {
    format!(
        r#"hostname = "mx.example.test"
local_domains = ["example.test"]
data_dir = "data"
node_id = "node-{node}"

[[listen]]
protocol = "smtp"
address = "{{ip}}:0"
[[listen]]
protocol = "pop3"
address = "{{ip}}:0"
[[listen]]
protocol = "imap"
address = "{{ip}}:0"
[[listen]]
protocol = "http"
address = "{{ip}}:0"

[tls]
allow_plaintext_auth = true

[auth]
verify = false

[store]
backend = "postgres"
url = "{url}"
sslmode = "disable"
pool_size = 4

{extra}
"#
    )
}

/// `count` nodes on 127.0.0.2, .3, … sharing a new database, with bob
/// (password `pw`) added; None when PostgreSQL is missing.
fn cluster(count: usize, extra: &str) -> Option<Vec<Tern>> {
    let url = database()?;
    let nodes: Vec<Tern> = (1..=count)
        .map(|n| Tern::start_on(&format!("127.0.0.{}", n + 1), &node_config(n, &url, extra)))
        .collect();
    nodes[0].add_user("bob@example.test", "pw");
    Some(nodes)
}

/// Python helpers: `imap(node)`, `pop(node)`, `send(node, subject)`, with
/// the nodes' addresses and ports in NODES.
fn run(nodes: &[Tern], body: &str) -> String {
    let list: Vec<String> = nodes
        .iter()
        .map(|t| {
            format!(
                "{{'ip': '{}', 'smtp': {}, 'pop3': {}, 'imap': {}, 'http': {}}}",
                t.ip,
                t.port("smtp"),
                t.port("pop3"),
                t.port("imap"),
                t.port("http")
            )
        })
        .collect();
    let script = format!(
        r#"import imaplib, poplib, smtplib, socket, time, re, sys
NODES = [{}]
def imap(n, user="bob@example.test", pw="pw"):
    c = imaplib.IMAP4(NODES[n]["ip"], NODES[n]["imap"], timeout=30)
    c.login(user, pw)
    return c
def pop(n):
    c = poplib.POP3(NODES[n]["ip"], NODES[n]["pop3"], timeout=30)
    c.user("bob@example.test")
    return c
def send(n, subject):
    s = smtplib.SMTP(NODES[n]["ip"], NODES[n]["smtp"], timeout=30)
    s.sendmail("lisa@outside.test", ["bob@example.test"],
        "From: lisa@outside.test\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\nhello from node %d\r\n" % (subject, n + 1))
    s.quit()
{body}"#,
        list.join(", ")
    );
    python(&script, &[])
}

#[test]
fn mail_delivered_on_one_node_is_read_and_idled_on_the_others() {
    let Some(nodes) = cluster(3, "") else { return };
    let out = run(
        &nodes,
        r#"
send(0, "first")
# IMAP on node 2 sees the delivery made on node 1.
c = imap(1)
typ, data = c.select("INBOX")
assert typ == "OK" and data[0] == b"1", data
typ, data = c.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
assert b"Subject: first" in data[0][1], data

# A command on node 2 right after a delivery on node 1 reports it: the
# 250 came after the commit, so this very NOOP must carry the EXISTS.
send(0, "second")
typ, data = c.noop()
assert b"2" in [d for d in c.untagged_responses.get("EXISTS", [])] or \
    any(d == b"2" for d in data), (typ, data, c.untagged_responses)
c.untagged_responses.clear()

# Flags set on node 1 show on node 2 at its next command.
c1 = imap(0)
c1.select("INBOX")
c1.store("1", "+FLAGS", "(\\Flagged)")
typ, data = c.fetch("1", "(FLAGS)")
assert any(b"\\Flagged" in d for d in data if isinstance(d, bytes)), data
c1.logout()
c.logout()

# POP3 on node 2 reads both.
p = pop(1)
p.pass_("pw")
count, size = p.stat()
assert count == 2, count
lines = p.retr(2)[1]
assert b"hello from node 1" in lines, lines
p.quit()

# IDLE on node 3, woken by a delivery on node 1.
latencies = []
for i in range(3):
    c3 = imap(2)
    typ, data = c3.select("INBOX")
    have = int(data[0])
    tag = c3._new_tag()
    c3.send(tag + b" IDLE\r\n")
    line = c3.readline()
    assert line.startswith(b"+"), line
    c3.sock.settimeout(30)
    send(0, "idle %d" % i)
    sent = time.monotonic()
    while True:
        line = c3.readline()
        assert line, "connection closed during IDLE"
        if line.endswith(b"EXISTS\r\n"):
            assert int(line.split()[1]) > have, line
            break
    latencies.append(time.monotonic() - sent)
    c3.send(b"DONE\r\n")
    while not c3.readline().startswith(tag):
        pass
    c3.logout()
print("idle-latency", " ".join("%.3f" % l for l in latencies))
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    let latencies: Vec<f64> = out
        .lines()
        .find_map(|l| l.strip_prefix("idle-latency "))
        .expect("latencies printed")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    println!("IDLE on node 3 after a delivery on node 1: {latencies:?} s");
    for l in &latencies {
        // The poll runs every second; allow a loaded machine plenty.
        assert!(*l < 5.0, "IDLE heard of the delivery only after {l} s");
    }
}

#[test]
fn a_pop3_lock_taken_on_one_node_is_in_use_on_the_others() {
    let Some(mut nodes) = cluster(2, "") else {
        return;
    };
    let out = run(
        &nodes,
        r#"
a = pop(0)
a.pass_("pw")
b = pop(1)
try:
    b.pass_("pw")
    raise AssertionError("node 2 opened a maildrop locked on node 1")
except poplib.error_proto as e:
    assert b"[IN-USE]" in e.args[0], e
# Node 1 itself refuses a second session too.
try:
    c = pop(0)
    c.pass_("pw")
    raise AssertionError("second session on node 1")
except poplib.error_proto as e:
    assert b"[IN-USE]" in e.args[0], e
a.quit()
# Released at QUIT, before the +OK: node 2 opens it at once.
b = pop(1)
b.pass_("pw")
b.quit()
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");

    // A session on node 1 holds the lock when node 1 dies.
    let mut holder = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import poplib, sys, time\np = poplib.POP3('{}', {}, timeout=30)\np.user('bob@example.test')\np.pass_('pw')\nprint('locked', flush=True)\ntime.sleep(600)",
            nodes[0].ip,
            nodes[0].port("pop3")
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(tern::testing::reaper::watch)
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let try_node2 = |nodes: &[Tern]| {
        run(
            nodes,
            r#"
b = pop(1)
try:
    b.pass_("pw")
    b.quit()
    print("opened")
except poplib.error_proto as e:
    print(e.args[0].decode())
"#,
        )
    };
    assert!(try_node2(&nodes).contains("[IN-USE]"));
    nodes[0].kill9();
    let killed = Instant::now();
    // Node 1 is dead: its lease is not renewed and lapses (60 s).
    wait_for(
        "the dead node's POP3 lock to lapse",
        Duration::from_secs(120),
        || {
            let out = try_node2(&nodes);
            if out.contains("opened") {
                return Some(());
            }
            assert!(out.contains("[IN-USE]"), "{out}");
            std::thread::sleep(Duration::from_secs(2));
            None
        },
    );
    println!(
        "node 2 opened the maildrop {:.1} s after node 1 died holding it",
        killed.elapsed().as_secs_f64()
    );
    drop(holder);
}

#[test]
fn sessions_per_user_are_counted_across_nodes() {
    let Some(nodes) = cluster(3, "[limits]\nmax_sessions_per_user = 2\n") else {
        return;
    };
    let out = run(
        &nodes,
        r#"
a = imap(0)
b = imap(1)
try:
    imap(2)
    raise AssertionError("a third session was let in on node 3")
except imaplib.IMAP4.error as e:
    assert "[LIMIT]" in str(e), e
# POP3 counts against the same limit.
p = pop(2)
try:
    p.pass_("pw")
    raise AssertionError("a third session (POP3) was let in")
except poplib.error_proto as e:
    assert b"[IN-USE]" in e.args[0], e
a.logout()
# The place is given back at logout (the lease is dropped just after).
deadline = time.time() + 30
while True:
    try:
        c = imap(2)
        break
    except imaplib.IMAP4.error as e:
        assert "[LIMIT]" in str(e) and time.time() < deadline, e
        time.sleep(0.1)
try:
    imap(0)
    raise AssertionError("a third session was let in on node 1")
except imaplib.IMAP4.error as e:
    assert "[LIMIT]" in str(e), e
c.logout()
b.logout()
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");
}

#[test]
fn failed_logins_are_throttled_across_nodes() {
    let Some(nodes) = cluster(
        3,
        "[limits]\nmax_auth_failures = 3\nauth_failure_delay = \"10ms\"\n",
    ) else {
        return;
    };
    let out = run(
        &nodes,
        r#"
def login(n, pw, source):
    s = socket.create_connection((NODES[n]["ip"], NODES[n]["pop3"]), timeout=30,
                                 source_address=(source, 0))
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER bob@example.test\r\n")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"PASS " + pw.encode() + b"\r\n")
    answer = f.readline()
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()
    return answer
# Three guesses from one address, spread over the nodes...
assert login(0, "guess1", "127.0.0.9").startswith(b"-ERR")
assert login(1, "guess2", "127.0.0.9").startswith(b"-ERR")
assert login(2, "guess3", "127.0.0.9").startswith(b"-ERR")
# ...and the right password is refused from it on every node.
for n in range(3):
    a = login(n, "pw", "127.0.0.9")
    assert a.startswith(b"-ERR"), (n, a)
# Another address logs in.
a = login(1, "pw", "127.0.0.10")
assert a.startswith(b"+OK"), a
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    let refused = nodes
        .iter()
        .filter(|t| t.log().contains("too many failures from this address"))
        .count();
    assert_eq!(refused, 3, "every node refused the guessing address");
}

#[test]
fn greylisting_decided_on_one_node_holds_on_another() {
    let plugin = harness::plugin_entry(
        "greylist",
        test_plugins::shipped::GREYLIST,
        "2s",
        r#"delay = "3s", auto_allow = "0""#,
    );
    let Some(nodes) = cluster(2, &plugin) else {
        return;
    };
    let out = run(
        &nodes,
        r#"
DELAY = 3.0
def rcpt(n, source):
    s = smtplib.SMTP(NODES[n]["ip"], NODES[n]["smtp"], timeout=30, source_address=(source, 0))
    s.ehlo("client.test")
    code, msg = s.mail("lisa@outside.test")
    assert code == 250, (code, msg)
    code, msg = s.rcpt("bob@example.test")
    s.quit()
    return code, msg.decode()
for attempt in range(5):
    source = "127.0.%d.1" % (60 + attempt)
    t0 = time.time()
    code, msg = rcpt(0, source)
    assert code == 451 and msg.startswith("4.7.1 Greylisted"), (code, msg)
    # Retried on node 2: still greylisted before the delay (node 2 knows
    # the triplet node 1 saw), accepted after it.
    early = 0
    while True:
        code, msg = rcpt(1, source)
        answered = time.time()
        if code == 250:
            break
        assert code == 451 and msg.startswith("4.7.1 Greylisted: please try again"), (code, msg)
        if answered < t0 + DELAY:
            early += 1
        assert answered < t0 + 120, "never accepted"
        time.sleep(0.2)
    assert answered >= t0 + DELAY, answered - t0
    if early:
        break
else:
    raise AssertionError("no retry on node 2 was answered within the delay")
# Confirmed: node 1 passes it at once too.
assert rcpt(0, source)[0] == 250
print("ok")
"#,
    );
    assert!(out.trim().ends_with("ok"), "{out}");
    assert!(nodes[0].log().contains("greylisted 127.0."));

    // The key-value writes under it are conditional: two store handles (two
    // nodes) counting one key at once lose no update.
    let stores: Vec<tern::store::Store> =
        block_on(async { vec![nodes[0].open_store().await, nodes[1].open_store().await] });
    block_on(async {
        let tasks: Vec<_> = stores
            .iter()
            .flat_map(|s| (0..4).map(move |_| s.clone()))
            .map(|s| {
                tokio::spawn(async move {
                    for _ in 0..10 {
                        s.kv_increment("greylist", "race", 1, None).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let total = stores[1].kv_get("greylist", "race").await.unwrap();
        assert_eq!(total.as_deref(), Some(b"80".as_slice()));
    });
}

#[test]
fn a_web_mail_session_made_on_one_node_works_on_another() {
    let Some(nodes) = cluster(2, "") else { return };
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = run(
        &nodes,
        &format!(
            r#"
sys.path.insert(0, {:?})
from webmail import Client
send(0, "web")
one = Client(NODES[0]["http"], host=NODES[0]["ip"])
r = one.login("bob@example.test", "pw")
assert r.status == 303, r.status
cookie = one.session_cookie()
assert cookie
# Node 2 knows the session node 1 made.
two = Client(NODES[1]["http"], host=NODES[1]["ip"])
h = {{"Cookie": "tern_session=" + cookie}}
r = two.get("/folder?name=INBOX", headers=h)
assert r.status == 200, (r.status, r.text[:300])
assert "web" in r.text, r.text[:500]
# A state-changing request on node 2 with node 1's CSRF token: log out.
r = two.post("/logout", {{"csrf": one.csrf}}, headers=h, csrf=False)
assert r.status in (302, 303), r.status
# The session is gone on node 1 too.
r = one.get("/folder?name=INBOX")
assert r.status in (302, 303) and "/login" in r.location(), r.status
print("ok")
"#,
            fixtures.display().to_string()
        ),
    );
    assert!(out.trim().ends_with("ok"), "{out}");
}
