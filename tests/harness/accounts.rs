//! Throwaway system accounts for the tests that run Tern as root and
//! drop to an account (`tests/service.rs`, `tests/install.rs`), and the
//! owner of every file a run left behind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A throwaway system account (and its group), removed when dropped, even
/// when the test fails.
pub struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl SystemUser {
    pub fn create(tag: &str) -> SystemUser {
        let name = format!("tern-{tag}-{}", std::process::id());
        let out = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group", "--shell"])
            .args(["/usr/sbin/nologin", &name])
            .output()
            .expect("useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().expect("id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        SystemUser { name, uid, gid }
    }

    /// `chown -R` of `path` to this account.
    pub fn own(&self, path: &Path) {
        let status = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(path)
            .status()
            .expect("chown");
        assert!(status.success());
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
        // userdel removes the user's own group too; this is for the case it did not.
        let _ = Command::new("groupdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
    }
}

/// Every file under `dir` with its owner.
pub fn owners(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(p) = pending.pop() {
        let meta = std::fs::symlink_metadata(&p).expect("stat");
        out.push((p.clone(), meta.uid()));
        if meta.is_dir() {
            pending.extend(
                std::fs::read_dir(&p)
                    .expect("read_dir")
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    out
}
