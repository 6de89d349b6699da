//! A private Dovecot (Debian's dovecot-imapd) for tests that need a real,
//! independent IMAP server over a Maildir: its own config, run and state
//! folders in a temporary folder, one static account (`bob@example.test`,
//! password `pw`), IMAP on a free loopback port (and IMAPS with a given
//! certificate), Maildir++ with `/` as the separator. Run as root, its mail
//! processes run as `nobody` (Dovecot never touches mail as root), so the
//! Maildir is handed to that account first. Stopped when dropped.

use super::{READY_BOUND, python_json, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tern::testing::ports::{free_port, start_on_free_port};
use tern::testing::reaper::{Watched, spawn_group};

pub struct Dovecot {
    child: Watched,
    dir: tempfile::TempDir,
    pub port: u16,
    /// IMAPS port, when started with a certificate.
    pub tls_port: Option<u16>,
}

/// Whether the IMAP server on `port` greets with `greeting` (ours, not
/// whatever else may hold the port).
fn greets(port: u16, greeting: &str) -> bool {
    use std::io::BufRead;
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut line = String::new();
    let _ = std::io::BufReader::new(stream).read_line(&mut line);
    line.contains(greeting)
}

/// IMAPS: the certificate and key files, and the port.
type Imaps<'a> = Option<((&'a Path, &'a Path), u16)>;

/// dovecot.conf for the folder `d`: IMAP on `port`, IMAPS on the second
/// port with the certificate and key when given, the one static account
/// (`owner`: uid, gid, internal user, whether we are root).
fn config(
    d: &Path,
    maildir: &Path,
    home: &Path,
    owner: (u32, u32, &str, bool),
    (port, tls): (u16, Imaps),
    greeting: &str,
) -> String {
    let (uid, gid, internal, root) = owner;
    let (ssl, imaps) = match tls {
        Some(((cert, key), p)) => (
            format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                cert.display(),
                key.display()
            ),
            format!("inet_listener imaps {{\n address = 127.0.0.1\n port = {p}\n ssl = yes\n }}"),
        ),
        None => (
            "ssl = no\n".to_string(),
            "inet_listener imaps {\n port = 0\n }".to_string(),
        ),
    };
    let users = if root {
        "default_internal_user = dovecot\ndefault_login_user = dovenull\n".to_string()
    } else {
        format!("default_internal_user = {internal}\ndefault_login_user = {internal}\n")
    };
    let d = d.display();
    format!(
        r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
login_greeting = {greeting}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain
{users}
mail_location = maildir:{maildir}
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = static
  args = password=pw
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  {imaps}
}}
service anvil {{
  chroot =
}}
"#,
        maildir = maildir.display(),
        home = home.display(),
    )
}

/// The account the mail processes run as: `nobody` as root, else ourselves.
fn mail_owner() -> (u32, u32, String) {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        (65534, 65534, "dovenull".into())
    } else {
        let name = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
        (uid, gid, name)
    }
}

/// Gives the Maildir at `path` to the account Dovecot's mail processes
/// run as (nothing to do when not root).
pub fn hand_over(path: &Path) {
    let (uid, gid, _) = mail_owner();
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown {}", path.display());
}

impl Dovecot {
    /// Serves the Maildir `maildir` (made if missing) to bob@example.test;
    /// with `tls` (certificate, key) also on IMAPS.
    pub fn start(maildir: &Path, tls: Option<(&Path, &Path)>) -> Dovecot {
        assert!(
            Path::new("/usr/lib/dovecot/imap").exists(),
            "Debian's dovecot-imapd is not installed (scripts/install-test-deps)"
        );
        std::fs::create_dir_all(maildir).expect("maildir");
        hand_over(maildir);
        let (uid, gid, internal) = mail_owner();
        let root = unsafe { libc::getuid() } == 0;
        let first = tempfile::tempdir().expect("tempdir");
        let home = first.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        hand_over(&home);
        // A port can be taken before Dovecot binds it: then its master
        // exits saying so and it starts again on new ports
        // (`start_on_free_port`); a listener that is not this Dovecot is
        // told apart by the greeting.
        let mut dir = Some(first);
        start_on_free_port(|port| {
            let dir_now = dir.take().expect("the folder of the last try");
            let tls_port = tls.map(|_| free_port());
            let greeting = format!("tern-test dovecot {port}");
            let config = config(
                dir_now.path(),
                maildir,
                &home,
                (uid, gid, &internal, root),
                (port, tls.zip(tls_port)),
                &greeting,
            );
            let conf = dir_now.path().join("dovecot.conf");
            std::fs::write(&conf, config).expect("dovecot.conf");
            let log_before =
                std::fs::metadata(dir_now.path().join("dovecot.log")).map_or(0, |m| m.len());
            let child = spawn_group(
                Command::new("dovecot")
                    .arg("-F")
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .expect("start dovecot");
            let mut d = Dovecot {
                child,
                dir: dir_now,
                port,
                tls_port,
            };
            let exited = wait_for("Dovecot to listen", READY_BOUND, || {
                if let Ok(Some(status)) = d.child.try_wait() {
                    let log = d.log();
                    let new = log.get(log_before as usize..).unwrap_or_default();
                    return Some(Some(format!("dovecot exited ({status}):\n{new}")));
                }
                greets(port, &greeting).then_some(None)
            });
            match exited {
                None => Ok(d),
                Some(failure) => {
                    // The folder (and its log) carry over to the next try.
                    dir = Some(std::mem::replace(
                        &mut d.dir,
                        tempfile::tempdir().expect("tempdir"),
                    ));
                    Err(failure)
                }
            }
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Dovecot {
    /// SIGTERM: the master stops its own processes (login, auth, imap)
    /// before it exits; its group is killed (when `child` drops) only if
    /// it does not within the bound.
    fn drop(&mut self) {
        self.child.terminate();
        self.child.wait_within(READY_BOUND);
        if std::thread::panicking() {
            eprintln!("----- dovecot log -----\n{}", self.log());
        }
    }
}

/// What an IMAP server shows of bob@example.test: per folder, per Subject,
/// [flags without \Recent, internal date in Unix seconds].
const STATE: &str = r#"
import imaplib, re, time
host, port, tls, user = "127.0.0.1", int(sys.argv[1]), sys.argv[2] == "tls", sys.argv[3]
m = imaplib.IMAP4_SSL(host, port, ssl_context=CTX) if tls else imaplib.IMAP4(host, port)
m.login(user, "pw")
folders = {}
for line in m.list()[1]:
    name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
    typ, _ = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", name
    meta, subjects = {}, {}
    typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE)")
    for item in data:
        if isinstance(item, bytes) and b"UID" in item:
            uid = int(re.search(rb"UID (\d+)", item).group(1))
            f = re.search(rb"FLAGS \(([^)]*)\)", item).group(1).decode().split()
            date = int(time.mktime(imaplib.Internaldate2tuple(item)))
            meta[uid] = [sorted(x for x in f if x != "\\Recent"), date]
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            subjects[uid] = item[1].decode().split(":", 1)[1].strip()
    folders[name] = {subjects[u]: meta[u] for u in subjects}
m.logout()
out(folders=folders)
"#;

/// Fills bob's account on an IMAP server: nested and non-ASCII folders,
/// system flags, keywords, internal dates.
const FILL: &str = r#"
import imaplib
port, tls = int(sys.argv[1]), sys.argv[2] == "tls"
m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=CTX) if tls else imaplib.IMAP4("127.0.0.1", port)
m.login("bob@example.test", "pw")
for name in ["Projects", "Projects/Q1", "Caf&AOk-"]:
    m.create(name)
def put(folder, subject, flags, date, body="text\r\nFrom the start of a line\r\n"):
    msg = ("From: lisa@outside.test\r\nTo: bob@example.test\r\nSubject: %s\r\n"
           "Message-ID: <%s@test>\r\n\r\n%s" % (subject, subject.replace(" ", "."), body)).encode()
    typ, _ = m.append(folder, flags, imaplib.Time2Internaldate(date), msg)
    assert typ == "OK", (folder, subject)
put("INBOX", "plain", "", 1700000000)
put("INBOX", "seen and flagged", "(\\Seen \\Flagged)", 1700000100)
put("INBOX", "answered with keyword", "(\\Answered $Work)", 1700000200)
put("Projects/Q1", "draft deleted", "(\\Draft \\Deleted $Work Later)", 1700000300)
put("Caf&AOk-", "in the cafe", "(\\Seen)", 1700000400)
m.logout()
out(ok=True)
"#;

pub fn state(port: u16, tls: bool, user: &str) -> serde_json::Map<String, Value> {
    let mode = if tls { "tls" } else { "plain" };
    match python_json(STATE, &[&port.to_string(), mode, user]).get("folders") {
        Some(Value::Object(f)) => f.clone(),
        other => panic!("no folders: {other:?}"),
    }
}

pub fn fill(port: u16, tls: bool) {
    python_json(
        FILL,
        &[&port.to_string(), if tls { "tls" } else { "plain" }],
    );
}

/// The folders of `expected` hold in `found` exactly what they hold there.
pub fn assert_same(
    found: &serde_json::Map<String, Value>,
    expected: &serde_json::Map<String, Value>,
) {
    for (name, messages) in expected {
        assert_eq!(found.get(name), Some(messages), "folder {name}: {found:#?}");
    }
    let filled = expected
        .values()
        .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
        .count();
    assert_eq!(
        filled, 3,
        "INBOX, Projects/Q1 and Café have mail: {expected:#?}"
    );
}
