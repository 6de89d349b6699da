//! Interoperability with a real Postfix (Debian's package), run as a private
//! instance (`postfix -c DIR`) on loopback: Postfix relays into Tern, and
//! Tern relays into Postfix, which files the message in a Maildir that
//! Python's `mailbox` reads.

mod harness;
use harness::{READY_BOUND, Tern, config, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tern::testing::ports::free_port;
use tern::testing::reaper::{Watched, spawn_group};

/// A private Postfix instance; stopped when dropped.
struct Postfix {
    dir: tempfile::TempDir,
    /// `postfix start-fg`, which becomes the master.
    master: Watched,
}

impl Postfix {
    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// Starts Postfix on 127.0.0.1:`port`, delivering `pf.test` to Maildirs
    /// and sending `tern.test` to Tern on `tern_port`.
    fn start(port: u16, tern_port: u16) -> Postfix {
        let dir = tempfile::Builder::new()
            .prefix("pf")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let root = dir.path();
        // Postfix's daemons run as `postfix` and must reach their queue.
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        for sub in ["etc", "queue", "data", "vmail"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let chown = |p: &Path| {
            let ok = Command::new("chown")
                .args(["-R", "postfix:postfix"])
                .arg(p)
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown failed");
        };
        chown(&root.join("data"));
        chown(&root.join("vmail"));
        let master = std::fs::read_to_string("/etc/postfix/master.cf")
            .expect("Debian's postfix is installed (scripts/install-test-deps)");
        let master = master.replacen("smtp      inet", &format!("127.0.0.1:{port}      inet"), 1);
        std::fs::write(root.join("etc/master.cf"), master).expect("master.cf");
        let r = root.display();
        let main = format!(
            "compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
maillog_file_prefixes = /tmp
maillog_file = {r}/maillog
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.pf.test
mydomain = pf.test
myorigin = pf.test
mydestination =
mynetworks = 127.0.0.0/8
relay_domains = tern.test
transport_maps = inline:{{ tern.test=smtp:[127.0.0.1]:{tern_port} }}
virtual_mailbox_domains = pf.test
virtual_mailbox_base = {r}/vmail
virtual_mailbox_maps = inline:{{ carol@pf.test=carol/ }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtp_tls_security_level = may
smtpd_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
",
            uid = id("-u"),
            gid = id("-g"),
        );
        std::fs::write(root.join("etc/main.cf"), main).expect("main.cf");
        // In the foreground, so that its master is a child of the test's.
        let mut master = spawn_group(
            Command::new("postfix")
                .arg("-c")
                .arg(root.join("etc"))
                .arg("start-fg")
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .expect("postfix");
        wait_for("postfix to listen", READY_BOUND, || {
            if let Ok(Some(status)) = master.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = master.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!(
                    "postfix start-fg exited ({status}): {err}{}",
                    std::fs::read_to_string(root.join("maillog")).unwrap_or_default()
                );
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Postfix { dir, master }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("vmail/carol")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    /// `postfix stop`, and the master's exit awaited for a while; one
    /// still running then is killed with its group when `master` drops.
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.etc())
            .arg("stop")
            .output();
        self.master.wait_within(READY_BOUND);
    }
}

fn id(flag: &str) -> String {
    let out = Command::new("id")
        .args([flag, "postfix"])
        .output()
        .expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn postfix_relays_into_tern_and_tern_relays_into_postfix() {
    let pf_port = free_port();
    let extra = format!(
        "[relay]\nsmarthost = \"127.0.0.1:{pf_port}\"\ntrusted_networks = [\"127.0.0.0/8\"]\n"
    );
    let tern = Tern::start(&config("mx.tern.test", "tern.test", &extra));
    tern.add_user("bob@tern.test", "pw");
    let pf = Postfix::start(pf_port, tern.port("smtp"));
    let script = format!(
        r#"
import smtplib, poplib, ssl, time, mailbox
CTX = ssl.create_default_context(); CTX.check_hostname = False; CTX.verify_mode = ssl.CERT_NONE
# Postfix -> Tern
s = smtplib.SMTP("127.0.0.1", {pf_port}); s.sendmail("alice@pf.test", ["bob@tern.test"], b"Subject: from postfix\r\n\r\nvia postfix\r\n"); s.quit()
deadline = time.time() + 60
while True:
    p = poplib.POP3_SSL("127.0.0.1", {pops}, context=CTX); p.user("bob@tern.test"); p.pass_("pw")
    n = p.stat()[0]
    if n or time.time() > deadline: break
    p.quit(); time.sleep(0.1)
assert n == 1, "nothing from postfix"
m = b"\r\n".join(p.retr(1)[1])
p.quit()
assert b"via postfix" in m and b"by mx.tern.test (Tern) with ESMTPS" in m and b"by mx.pf.test (Postfix)" in m, m
# Tern -> Postfix
s = smtplib.SMTP("127.0.0.1", {smtp}); s.sendmail("bob@tern.test", ["carol@pf.test"], b"Subject: from tern\r\n\r\nvia tern\r\n.leading dot\r\n"); s.quit()
deadline = time.time() + 60
while True:
    box = mailbox.Maildir("{maildir}", create=False) if __import__("os").path.isdir("{maildir}/new") else None
    msgs = list(box) if box is not None else []
    if msgs or time.time() > deadline: break
    time.sleep(0.1)
assert len(msgs) == 1, "nothing reached postfix"
body = msgs[0].as_bytes()
assert b"via tern" in body and b"\n.leading dot" in body and b"by mx.tern.test (Tern)" in body, body
print("ok")
"#,
        pops = tern.port("pop3s"),
        smtp = tern.port("smtp"),
        maildir = pf.maildir().display(),
    );
    let out = harness::python_output(&script, &[]);
    assert!(
        out.status.success(),
        "{}\n--- postfix log ---\n{}\n--- tern log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        pf.log(),
        tern.log()
    );
}
