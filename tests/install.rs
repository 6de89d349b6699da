//! Installing Tern, through the real binary and package. `tern init` (as
//! root, for a throwaway account) writes a configuration that `tern
//! check-config` accepts without a warning, the first account in a store
//! the account owns, keys readable by its group only, and DNS records
//! that parse and verify against those keys; it never writes over an
//! existing configuration. The Debian package installs the binary, the
//! unit, completions and manual pages, checks its configuration, takes
//! `tern init` with every default of a root run, and purges cleanly,
//! keeping the mail.

mod harness;
use harness::{SystemUser, owners, python, tern_bin};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// `tern init` through the binary, as root for a throwaway account.
fn init(dir: &Path, user: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(tern_bin())
        .args(["init", "Example.TEST", "--dir"])
        .arg(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--run-as", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tern init");
    use std::io::Write;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    drop(stdin);
    child.wait_with_output().expect("tern init")
}

#[test]
fn init_writes_a_config_that_checks_and_records_that_match() {
    let account = SystemUser::create("init");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let etc = dir.path().join("etc");
    let out = init(&etc, &account.name, "first-pw");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = etc.join("tern.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    for line in [
        &format!("user = \"{}\"", account.name),
        "hostname = \"mail.example.test\"",
        "\"postmaster@example.test\" = [\"admin@example.test\"]",
        "address = \"0.0.0.0:25\"",
        "address = \"0.0.0.0:465\"",
        "address = \"0.0.0.0:587\"",
        "address = \"0.0.0.0:993\"",
        "address = \"0.0.0.0:995\"",
        "address = \"0.0.0.0:443\"",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "no {line} in\n{text}"
        );
    }
    let check = Command::new(tern_bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .expect("check-config");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The first account is in the store the config names, which is the account's.
    let list = Command::new(tern_bin())
        .args(["user", "list", "--config"])
        .arg(&config)
        .output()
        .expect("user list");
    assert!(String::from_utf8_lossy(&list.stdout).contains("admin@example.test"));
    for (path, uid) in owners(&etc.join("data")) {
        assert_eq!(uid, account.uid, "{}", path.display());
    }
    // The keys are root's, readable by the account's group only.
    let key = std::fs::read_dir(etc.join("dkim"))
        .expect("dkim")
        .flatten()
        .next()
        .expect("key");
    let meta = key.metadata().expect("stat");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, account.gid, 0o640)
    );
    let meta = std::fs::metadata(etc.join("tls/key.pem")).expect("stat");
    assert_eq!((meta.gid(), meta.mode() & 0o777), (account.gid, 0o640));

    // The records parse as zone-file lines (dnslib), and the DKIM record
    // verifies a signature made with the key written (dkimpy).
    let records: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" IN ") && !l.starts_with(';'))
        .collect();
    let out = python(
        r#"
import sys, json, dkim, dnslib
key = open(sys.argv[1], "rb").read()
types, txt = [], {}
for line in sys.argv[2:]:
    for rr in dnslib.RR.fromZone(line):
        types.append((str(rr.rname), dnslib.QTYPE[rr.rtype]))
        if rr.rtype == dnslib.QTYPE.TXT:
            txt[str(rr.rname)] = b"".join(rr.rdata.data)
name = [n for n in txt if "._domainkey." in n][0]
selector = name.split(".")[0].encode()
msg = b"From: admin@example.test\r\nTo: x@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
sig = dkim.sign(msg, selector, b"example.test", key, include_headers=[b"from", b"to", b"subject"])
ok = dkim.verify(sig + msg, dnsfunc=lambda n, timeout=5: txt.get(n.decode()))
print(json.dumps({"types": sorted(types), "verified": ok,
                  "spf": txt["example.test."].decode(), "dmarc": txt["_dmarc.example.test."].decode()}))
"#,
        &[&[key.path().to_str().expect("path")][..], &records[..]].concat(),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["spf"], "v=spf1 mx -all");
    assert!(
        v["dmarc"]
            .as_str()
            .unwrap_or("")
            .starts_with("v=DMARC1; p=reject")
    );
    let types = v["types"].to_string();
    for t in [
        r#"["example.test.","MX"]"#,
        r#"["_dmarc.example.test.","TXT"]"#,
        r#"["_mta-sts.example.test.","TXT"]"#,
        r#"["_smtp._tls.example.test.","TXT"]"#,
    ] {
        assert!(types.contains(t), "{t} not in {types}");
    }

    // Never over an existing config.
    let again = init(&etc, &account.name, "other");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read_to_string(&config).expect("config"), text);
}

/// Held while the package test runs: a second run (another checkout's
/// suite) waits rather than install over this one.
struct PackageLock(#[allow(dead_code)] std::fs::File);

impl PackageLock {
    fn take() -> PackageLock {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::create("/tmp/tern-package-test.lock").expect("lock file");
        // SAFETY: a valid descriptor; the lock goes with the file.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock");
        PackageLock(file)
    }
}

/// Purges the package when the test ends, however it ends, and removes
/// /var/lib/tern if the test made it.
struct Installed {
    data_was_there: bool,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "tern"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !self.data_was_there {
            let _ = std::fs::remove_dir_all("/var/lib/tern");
        }
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = harness::output_within(cmd, std::time::Duration::from_secs(600));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debian_package_installs_checks_config_and_purges_cleanly() {
    let _lock = PackageLock::take();
    assert!(
        Command::new("cargo")
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "cargo-deb is missing: run scripts/install-test-deps"
    );
    let out_dir = tempfile::tempdir().expect("tempdir");
    let root = env!("CARGO_MANIFEST_DIR");
    // The binary under test, packed as it is (no second build).
    run_ok(
        Command::new(format!("{root}/scripts/build-deb"))
            .args(["--profile", "dev", "--no-build", "--fast", "-o"])
            .arg(format!("{}/", out_dir.path().display())),
    );
    let deb = std::fs::read_dir(out_dir.path())
        .expect("out")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let data_was_there = Path::new("/var/lib/tern").exists();
    assert!(
        !data_was_there,
        "/var/lib/tern exists: this test would install over it"
    );
    let _installed = Installed { data_was_there };
    run_ok(Command::new("dpkg").arg("-i").arg(&deb));

    assert!(Path::new("/usr/bin/tern").exists());
    assert!(Path::new("/usr/lib/systemd/system/tern.service").exists());
    assert!(Path::new("/usr/share/bash-completion/completions/tern").exists());
    let id = run_ok(Command::new("id").args(["-u", "tern"]));
    let uid: u32 = id.trim().parse().expect("the tern account");
    assert_ne!(uid, 0);
    assert_eq!(
        std::fs::metadata("/var/lib/tern")
            .expect("/var/lib/tern")
            .uid(),
        uid
    );
    let conffiles = run_ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "tern"]));
    assert!(conffiles.contains("/etc/tern/tern.toml"), "{conffiles}");
    let check = run_ok(Command::new("/usr/bin/tern").args([
        "check-config",
        "--config",
        "/etc/tern/tern.toml",
    ]));
    assert!(check.starts_with("config ok: 8 listener(s)"), "{check}");
    let page = run_ok(Command::new("man").args(["-w", "tern"]));
    assert!(
        page.trim().starts_with("/usr/share/man/man1/tern.1"),
        "{page}"
    );
    let page = run_ok(Command::new("man").args(["-w", "tern-init"]));
    assert!(page.contains("tern-init.1"), "{page}");

    // README's next step: `tern init` over the untouched packaged example,
    // with every default of a root run (/etc/tern, /var/lib/tern, user tern).
    let mut init = Command::new("/usr/bin/tern")
        .args(["init", "example.test", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tern init");
    {
        use std::io::Write;
        let mut stdin = init.stdin.take().expect("stdin");
        stdin.write_all(b"first-pw\n").expect("password");
    }
    let out = init.wait_with_output().expect("tern init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string("/etc/tern/tern.toml").expect("config");
    assert!(
        config.contains("local_domains = [\"example.test\"]"),
        "{config}"
    );
    run_ok(Command::new("/usr/bin/tern").args(["check-config", "--config", "/etc/tern/tern.toml"]));
    let users = run_ok(Command::new("/usr/bin/tern").args([
        "user",
        "list",
        "--config",
        "/etc/tern/tern.toml",
    ]));
    assert!(users.contains("admin@example.test"), "{users}");
    for (path, owner) in owners(Path::new("/var/lib/tern")) {
        assert_eq!(owner, uid, "{}", path.display());
    }

    run_ok(Command::new("dpkg").args(["--purge", "tern"]));
    // Purge keeps the mail (like postfix's spool); this machine's test store goes.
    assert!(Path::new("/var/lib/tern/store").exists());
    std::fs::remove_dir_all("/var/lib/tern").expect("remove the test store");
    for gone in [
        "/usr/bin/tern",
        "/etc/tern",
        "/usr/lib/systemd/system/tern.service",
        "/usr/share/man/man1/tern.1.gz",
        "/var/lib/tern",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", "tern"])
        .output()
        .expect("dpkg-query");
    // Purged: dpkg no longer knows the package at all.
    assert!(
        !status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}
