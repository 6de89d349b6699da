//! The data directory runs out of space: it is an 8 MiB tmpfs (we run as
//! root). With `limits.min_free_space = "3MiB"`, filling the file system
//! makes new mail get 452 4.3.1 at MAIL while the messages accepted before
//! stay readable (POP3); when the space comes back, mail is accepted again,
//! and after a restart every accepted message is there.

mod harness;

use harness::*;
use std::path::PathBuf;
use std::process::Command;

/// A tmpfs mounted for the test; lazily unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}); this test needs root"
        );
        Tmpfs(at.to_path_buf())
    }

    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .expect("df");
        text(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df figure")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

const SEND: &str = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.ehlo("client.test")
code, msg = s.mail("a@outside.test")
if code != 250:
    print(code, msg.decode())
    sys.exit(0)
s.rcpt("bob@example.test")
code, msg = s.data("Subject: %s\r\n\r\n%s\r\n" % (sys.argv[2], "filler line\r\n" * 2000))
print(code, msg.decode())
s.quit()
"#;

fn send(port: &str, subject: &str) -> String {
    let out = python_with_prelude(SEND, &[port, subject]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn disk_full_refuses_new_mail_and_recovers() {
    let mut server = Tern::new(&format!(
        "{BASE_CONFIG}\n[limits]\nmin_free_space = \"3MiB\"\nmax_message_size = \"1MiB\"\n\
[tls]\nallow_plaintext_auth = true\n[[listen]]\nprotocol = \"pop3\"\naddress = \"127.0.0.1:0\"\n"
    ));
    let disk = Tmpfs::mount(&server.data_dir(), "8m");
    server.spawn();
    server.add_user("bob@example.test", "bob-pw");
    let port = server.port_arg("smtp");
    for i in 0..3 {
        let r = send(&port, &format!("before {i}"));
        assert!(r.starts_with("250 "), "{r}");
    }

    // Fill the file system to 2 MiB free.
    let free = disk.free();
    let filler = server.data_dir().join("filler");
    let fill = free.saturating_sub(2 * 1024 * 1024);
    std::fs::write(&filler, vec![0u8; fill as usize]).expect("filler");
    let r = send(&port, "while full");
    assert!(r.starts_with("452 4.3.1"), "while full: {r}");

    // What was accepted is still there.
    let out = python_with_prelude(
        r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)
p.user("bob@example.test"); p.pass_("bob-pw")
n = len(p.list()[1])
subjects = []
for i in range(1, n + 1):
    lines = p.retr(i)[1]
    subjects += [l.decode() for l in lines if l.startswith(b"Subject:")]
p.quit()
print(n, subjects)
"#,
        &[&server.port_arg("pop3")],
    );
    let listing = text(&out.stdout);
    assert!(listing.starts_with("3 "), "while full: {listing}");

    // Space comes back: mail is accepted again.
    std::fs::remove_file(&filler).expect("remove filler");
    let r = send(&port, "after");
    assert!(r.starts_with("250 "), "after the space returned: {r}");
    assert!(
        !server.log().contains("storing message failed"),
        "{}",
        server.log()
    );

    // And everything accepted survives a restart.
    server.stop();
    server.spawn();
    let mail = server.mailbox("bob@example.test");
    let subjects: Vec<String> = mail
        .iter()
        .filter_map(|m| {
            text(m)
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        subjects,
        [
            "Subject: before 0",
            "Subject: before 1",
            "Subject: before 2",
            "Subject: after"
        ],
    );
}
