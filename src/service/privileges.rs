//! Who `tern serve` runs as. Started as root with `user` set, it binds its
//! listeners first (ports below 1024 need root), then gives up root for
//! good: supplementary groups, group, then user (`setgroups`, `setgid`,
//! `setuid`), checked afterwards; everything it opens or creates from then
//! on is the user's. Started unprivileged (systemd's `User=` with
//! `CAP_NET_BIND_SERVICE`) there is nothing to drop. Either way the data
//! directory must belong to the user it runs as: anything else is an error
//! naming the path, the owner found and the owner expected.

use crate::config::Config;
use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("config: user: no such user {0:?} (create it: adduser --system --group {0})")]
    NoSuchUser(String),
    #[error("config: group: no such group {0:?}")]
    NoSuchGroup(String),
    #[error(
        "cannot run as user {user:?}: started as uid {current}, which is neither root nor that user"
    )]
    CannotSwitch { user: String, current: u32 },
    #[error("cannot drop privileges to {user:?}: {call} failed: {source}")]
    Drop {
        user: String,
        call: &'static str,
        source: std::io::Error,
    },
    #[error("dropped privileges to {0:?} but root could be regained; refusing to run")]
    StillRoot(String),
    #[error(
        "{path} is owned by {found}, but tern serve runs as {expected}: chown -R {expected}:{group} {data_dir}"
    )]
    Owner {
        path: PathBuf,
        found: String,
        expected: String,
        group: String,
        data_dir: PathBuf,
    },
    #[error("{path} is not writable by {user}: {source}")]
    NotWritable {
        path: PathBuf,
        user: String,
        source: std::io::Error,
    },
    #[error("cannot create data_dir {path} as {user}: {source}")]
    Create {
        path: PathBuf,
        user: String,
        source: std::io::Error,
    },
}

/// A system account, as the password and group databases give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub uid: u32,
    pub group: String,
    pub gid: u32,
}

/// What start-up did about privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privileges {
    /// Was root, now runs as this account.
    Dropped(Account),
    /// Runs as root: `user = "root"`.
    KeptRoot,
    /// Runs as root because no `user` is configured (warned about).
    RootByDefault,
    /// Was never root; runs as this account (the configured one, if any).
    Unprivileged(Option<Account>),
}

impl Privileges {
    /// The account whose data directory this is, when one is configured.
    pub fn account(&self) -> Option<&Account> {
        match self {
            Privileges::Dropped(a) | Privileges::Unprivileged(Some(a)) => Some(a),
            _ => None,
        }
    }
}

/// The account named `user` (and `group`, else the user's primary group).
pub fn account(user: &str, group: Option<&str>) -> Result<Account, PrivilegeError> {
    let (uid, primary) = user_ids(user)?.ok_or_else(|| PrivilegeError::NoSuchUser(user.into()))?;
    let gid = match group {
        Some(g) => group_id(g)?.ok_or_else(|| PrivilegeError::NoSuchGroup(g.into()))?,
        None => primary,
    };
    Ok(Account {
        user: user.to_string(),
        uid,
        group: group
            .map(str::to_string)
            .or_else(|| group_name(gid))
            .unwrap_or_else(|| gid.to_string()),
        gid,
    })
}

/// Becomes `config.user`/`config.group` if started as root; call it once
/// every listener is bound and before anything is opened in `data_dir`.
pub fn drop_privileges(config: &Config) -> Result<Privileges, PrivilegeError> {
    // SAFETY: getuid has no preconditions.
    let current = unsafe { libc::getuid() };
    let Some(user) = config.user.as_deref() else {
        return Ok(if current == 0 {
            Privileges::RootByDefault
        } else {
            Privileges::Unprivileged(None)
        });
    };
    let account = account(user, config.group.as_deref())?;
    if account.uid == 0 {
        return Ok(Privileges::KeptRoot);
    }
    if current != 0 {
        if current != account.uid {
            return Err(PrivilegeError::CannotSwitch {
                user: user.into(),
                current,
            });
        }
        return Ok(Privileges::Unprivileged(Some(account)));
    }
    become_account(&account)?;
    Ok(Privileges::Dropped(account))
}

/// setgroups, setgid, setuid, in that order (each needs the privileges
/// the next one gives up), then proof that root is gone for good. glibc
/// applies each call to every thread of the process.
fn become_account(a: &Account) -> Result<(), PrivilegeError> {
    let fail = |call| PrivilegeError::Drop {
        user: a.user.clone(),
        call,
        source: std::io::Error::last_os_error(),
    };
    let groups = [a.gid as libc::gid_t];
    // SAFETY: `groups` is a valid array of one gid for the call's duration.
    if unsafe { libc::setgroups(1, groups.as_ptr()) } != 0 {
        return Err(fail("setgroups"));
    }
    // SAFETY: plain system calls on integers.
    if unsafe { libc::setgid(a.gid) } != 0 {
        return Err(fail("setgid"));
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(a.uid) } != 0 {
        return Err(fail("setuid"));
    }
    // SAFETY: as above; setuid(0) must now fail.
    let regained = unsafe { libc::setuid(0) } == 0;
    // SAFETY: getters without preconditions.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if regained || uid != a.uid || euid != a.uid || gid != a.gid || egid != a.gid {
        return Err(PrivilegeError::StillRoot(a.user.clone()));
    }
    Ok(())
}

/// The data directory (created if missing) and everything in it must
/// belong to `account` and the directory be writable by it.
pub fn check_data_dir(data_dir: &Path, account: &Account) -> Result<(), PrivilegeError> {
    if !data_dir.exists() {
        std::fs::create_dir_all(data_dir).map_err(|source| PrivilegeError::Create {
            path: data_dir.to_path_buf(),
            user: account.user.clone(),
            source,
        })?;
    }
    let mut pending = vec![data_dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        // A file that vanished meanwhile is no one's.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != account.uid {
            return Err(PrivilegeError::Owner {
                path,
                found: user_name(meta.uid()).unwrap_or_else(|| format!("uid {}", meta.uid())),
                expected: account.user.clone(),
                group: account.group.clone(),
                data_dir: data_dir.to_path_buf(),
            });
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            pending.extend(entries.flatten().map(|e| e.path()));
        }
    }
    writable(data_dir).map_err(|source| PrivilegeError::NotWritable {
        path: data_dir.to_path_buf(),
        user: account.user.clone(),
        source,
    })
}

/// access(2) with W_OK|X_OK for the real user, which after a drop is the
/// account.
fn writable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `path` is a valid NUL-terminated string.
    match unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Buffer for the *_r look-ups; grown on ERANGE.
const LOOKUP_BUFFER: usize = 4096;

/// Runs one of getpwnam_r/getpwuid_r/getgrnam_r/getgrgid_r (`call`) with
/// a buffer grown until the entry fits; `read` takes what it needs from
/// the entry while the buffer lives. None: no such entry (or an error).
fn lookup<E, R>(
    mut call: impl FnMut(*mut E, *mut libc::c_char, usize, *mut *mut E) -> libc::c_int,
    read: impl FnOnce(&E) -> R,
) -> Option<R> {
    let mut size = LOOKUP_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: passwd and group are plain C structs for which all-zero
        // is a valid value; the call fills them in.
        let mut entry: E = unsafe { std::mem::zeroed() };
        let mut result = std::ptr::null_mut();
        let rc = call(&mut entry, buf.as_mut_ptr(), size, &mut result);
        if rc == libc::ERANGE {
            size *= 2;
            continue;
        }
        return (rc == 0 && !result.is_null()).then(|| read(&entry));
    }
}

/// A NUL-terminated string inside a look-up's buffer, copied out.
fn owned(p: *const libc::c_char) -> String {
    // SAFETY: the look-up functions point these fields at NUL-terminated
    // strings inside the buffer, which lives while `read` runs.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// (uid, primary gid) of `name`, None when there is no such user.
fn user_ids(name: &str) -> Result<Option<(u32, u32)>, PrivilegeError> {
    let c_name = CString::new(name).map_err(|_| PrivilegeError::NoSuchUser(name.into()))?;
    Ok(lookup(
        // SAFETY: every pointer is valid for the call (see `lookup`).
        |e, buf, size, result| unsafe { libc::getpwnam_r(c_name.as_ptr(), e, buf, size, result) },
        |p: &libc::passwd| (p.pw_uid, p.pw_gid),
    ))
}

/// The gid of group `name`, None when there is no such group.
fn group_id(name: &str) -> Result<Option<u32>, PrivilegeError> {
    let c_name = CString::new(name).map_err(|_| PrivilegeError::NoSuchGroup(name.into()))?;
    Ok(lookup(
        // SAFETY: as in `user_ids`.
        |e, buf, size, result| unsafe { libc::getgrnam_r(c_name.as_ptr(), e, buf, size, result) },
        |g: &libc::group| g.gr_gid,
    ))
}

/// The name of uid `uid`, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    lookup(
        // SAFETY: as in `user_ids`.
        |e, buf, size, result| unsafe { libc::getpwuid_r(uid, e, buf, size, result) },
        |p: &libc::passwd| owned(p.pw_name),
    )
}

/// The name of gid `gid`, if it has one.
fn group_name(gid: u32) -> Option<String> {
    lookup(
        // SAFETY: as in `user_ids`.
        |e, buf, size, result| unsafe { libc::getgrgid_r(gid, e, buf, size, result) },
        |g: &libc::group| owned(g.gr_name),
    )
}

/// Gives `path` (and, for a folder, everything in it) to `account`: for
/// `tern init` run as root, which writes files the server will own.
pub fn chown_tree(path: &Path, account: &Account) -> std::io::Result<()> {
    let mut pending = vec![path.to_path_buf()];
    while let Some(p) = pending.pop() {
        std::os::unix::fs::lchown(&p, Some(account.uid), Some(account.gid))?;
        if std::fs::symlink_metadata(&p)?.is_dir() {
            for e in std::fs::read_dir(&p)? {
                pending.push(e?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_strangers_are_not() {
        let root = account("root", None).unwrap();
        assert_eq!((root.uid, root.gid, root.group.as_str()), (0, 0, "root"));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert!(matches!(
            account("no-such-user-tern", None),
            Err(PrivilegeError::NoSuchUser(_))
        ));
        assert!(matches!(
            account("root", Some("no-such-group-tern")),
            Err(PrivilegeError::NoSuchGroup(_))
        ));
    }
}
