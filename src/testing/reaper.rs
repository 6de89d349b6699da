//! What a killed test process leaves running. A test that is killed
//! (SIGKILL, a CI job's time limit) runs no destructor, so the servers it
//! started (`tern serve`, Dovecot, the Python peers, rspamd…) would go on
//! running, holding ports and CPU. One guardian per test process stops
//! them: `sh` reading registrations from a pipe whose only writer is this
//! process (Rust opens it close-on-exec, so no other child holds it), which
//! the kernel closes however the process ends; at its end the guardian
//! stops what is still registered (see `GUARDIAN`).
//! A child is registered by wrapping it (`watch`, or `spawn_group` for a
//! daemon that starts processes of its own); the wrapper kills it when it
//! drops, if the owner has not stopped it by then, and unregisters it. A
//! PostgreSQL server, which detaches from the process that starts it, is
//! registered by its pid file (`watch_pid_file`), and a folder to remove
//! once the processes are gone by its path (`watch_folder`).
//!
//! The guardian is in a process group of its own and ignores SIGINT,
//! SIGTERM and SIGHUP, so that stopping the tests' group leaves it to do
//! its work. If it cannot be started, children are still stopped by their
//! owners' destructors, as before.

use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The guardian: a set of entries (` kill:12 kill:-34 pidfile:/a/pid
/// remove:/a `) kept in the shell, `+ ENTRY` adds one, `- ENTRY` removes
/// it. At the end of its input: every `kill:` pid or (negative) process
/// group gets SIGKILL; the pid a `pidfile:` names gets SIGQUIT
/// (PostgreSQL's immediate shutdown, which takes its backends with it)
/// and, if it has not ended within ten seconds, SIGKILL; then every
/// `remove:` folder is removed, once nothing is left to write to it.
const GUARDIAN: &str = r#"trap '' INT TERM HUP
live=' '
while read -r op entry; do
  case "$op" in
    +) live="$live$entry " ;;
    -) case "$live" in *" $entry "*) live="${live%% $entry *} ${live#* $entry }" ;; esac ;;
  esac
done
quit=''
for entry in $live; do
  case "$entry" in
    kill:*) kill -s KILL -- "${entry#kill:}" ;;
    pidfile:*) read -r pid < "${entry#pidfile:}" && kill -s QUIT "$pid" && quit="$quit $pid" ;;
  esac 2>/dev/null
done
for pid in $quit; do
  n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  [ $n -lt 100 ] || kill -s KILL "$pid" 2>/dev/null
done
for entry in $live; do
  case "$entry" in remove:*) rm -rf -- "${entry#remove:}" ;; esac
done
"#;

/// The pipe to this process's guardian (None: it could not be started).
fn guardian() -> &'static Option<Mutex<ChildStdin>> {
    static PIPE: OnceLock<Option<Mutex<ChildStdin>>> = OnceLock::new();
    PIPE.get_or_init(|| {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(GUARDIAN)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?;
        // The process is never waited for: it lives as long as this one,
        // and is reparented when this one ends.
        child.stdin.take().map(Mutex::new)
    })
}

/// Sends one line to the guardian; a guardian that is gone is ignored.
fn tell(op: char, entry: &str) {
    if let Some(pipe) = guardian() {
        let mut pipe = pipe.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(pipe, "{op} {entry}");
    }
}

/// A child this process started: killed (SIGKILL) when dropped while it
/// still runs, and by the guardian if this process is killed first;
/// otherwise what `Child` is (it dereferences to it). An owner that stops
/// its child gracefully does so in its own `Drop`, which runs before its
/// fields'.
#[derive(Debug)]
pub struct Watched {
    /// Always Some but inside `wait_with_output`, which consumes it.
    child: Option<Child>,
    /// What is killed: the pid, or minus the process group it leads.
    id: i64,
}

impl Watched {
    fn new(child: Child, group: bool) -> Watched {
        let pid = i64::from(child.id());
        let id = if group { -pid } else { pid };
        tell('+', &format!("kill:{id}"));
        Watched {
            child: Some(child),
            id,
        }
    }

    /// SIGTERM, unless the child has already been reaped (its pid may
    /// belong to another process by then).
    pub fn terminate(&mut self) {
        if matches!(self.try_wait(), Ok(None))
            && let Ok(pid) = i32::try_from(self.id())
        {
            // SAFETY: kill has no memory preconditions; the pid is this
            // child's, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }

    /// Waits up to `bound` for the child to end: its status, or None if
    /// it still runs (it is killed when this drops).
    pub fn wait_within(&mut self, bound: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + bound;
        loop {
            match self.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => return None,
            }
        }
    }

    /// `Child::wait_with_output`, watched until the child has ended.
    pub fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
        match self.child.take() {
            Some(child) => child.wait_with_output(),
            None => Err(std::io::Error::other("the child was already waited for")),
        }
    }
}

/// Watches `child` itself.
pub fn watch(child: Child) -> Watched {
    Watched::new(child, false)
}

/// Spawns `command` in a process group of its own and watches the group,
/// so that what it starts (a daemon's workers) goes with it.
pub fn spawn_group(command: &mut Command) -> std::io::Result<Watched> {
    use std::os::unix::process::CommandExt;
    command
        .process_group(0)
        .spawn()
        .map(|child| Watched::new(child, true))
}

impl Deref for Watched {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child
            .as_ref()
            .expect("a watched child until it is consumed")
    }
}

impl DerefMut for Watched {
    fn deref_mut(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("a watched child until it is consumed")
    }
}

impl Drop for Watched {
    /// Kills the child if it still runs, then unregisters it. Only a child
    /// not yet reaped is signalled: a reaped one's pid, and the id of a
    /// group it led, may belong to others by now.
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            match i32::try_from(self.id) {
                // SAFETY: kill has no memory preconditions; the group is
                // the one this child leads, which exists while it runs.
                Ok(group) if group < 0 => unsafe {
                    libc::kill(group, libc::SIGKILL);
                },
                _ => {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
        }
        tell('-', &format!("kill:{}", self.id));
    }
}

/// A registration by path (`watch_pid_file`, `watch_folder`), taken back
/// when dropped: the owner has stopped the server or removed the folder
/// itself by then.
#[derive(Debug)]
pub struct Registered {
    /// None: a path the guardian's line format cannot carry (relative, or
    /// with blanks), not registered.
    entry: Option<String>,
}

fn register(kind: &str, path: &std::path::Path) -> Registered {
    let entry = path
        .to_str()
        .filter(|p| p.starts_with('/') && !p.contains(char::is_whitespace))
        .map(|p| format!("{kind}:{p}"));
    if let Some(e) = &entry {
        tell('+', e);
    }
    Registered { entry }
}

/// Watches the server whose pid `path` (absolute) will hold: a
/// PostgreSQL that `pg_ctl` or Patroni starts in a session of its own.
pub fn watch_pid_file(path: &std::path::Path) -> Registered {
    register("pidfile", path)
}

/// Has the folder `path` (absolute) removed, after the processes above
/// are gone.
pub fn watch_folder(path: &std::path::Path) -> Registered {
    register("remove", path)
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(e) = &self.entry {
            tell('-', e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// A guardian of the test's own (this process's must outlive the
    /// test), and its input.
    fn own_guardian() -> (Child, ChildStdin) {
        let mut guardian = Command::new("sh")
            .arg("-c")
            .arg(GUARDIAN)
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh");
        let pipe = guardian.stdin.take().expect("pipe");
        (guardian, pipe)
    }

    /// The signal that ended the child within the bound (None for a
    /// `sleep 300` that nothing kills).
    fn ended_by(child: &mut Watched) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        child
            .wait_within(crate::testing::READY_BOUND)
            .and_then(|s| s.signal())
    }

    fn alive(pid: u32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid as i32, 0) == 0 }
    }

    /// A process whose guardian's input ends (as when it is killed) takes
    /// its registered children with it, and only those.
    #[test]
    fn the_guardian_kills_what_is_still_registered_when_its_input_ends() {
        let (mut guardian, mut pipe) = own_guardian();
        // Watched as well, so that a failed assertion leaves none behind.
        let sleeper = || watch(Command::new("sleep").arg("300").spawn().expect("sleep"));
        let (kept, mut left, stopped) = (sleeper(), sleeper(), sleeper());
        writeln!(pipe, "+ kill:{}\n+ kill:{}", kept.id(), left.id()).expect("write");
        writeln!(pipe, "+ kill:{0}\n- kill:{0}", stopped.id()).expect("write");
        writeln!(pipe, "- kill:{}", kept.id()).expect("write");
        drop(pipe);
        assert!(guardian.wait().expect("guardian").success());
        // `left` was still registered: killed, so its wait ends.
        assert_eq!(ended_by(&mut left), Some(libc::SIGKILL));
        // The two unregistered ones still run.
        assert!(alive(kept.id()) && alive(stopped.id()));
    }

    /// A registered pid file: the process it names is stopped (a file
    /// that is not there is passed over); then a registered folder is
    /// removed, and one taken back is not.
    #[test]
    fn the_pid_a_registered_file_names_is_stopped_then_the_folder_removed() {
        let (mut guardian, mut pipe) = own_guardian();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut daemon = watch(Command::new("sleep").arg("300").spawn().expect("sleep"));
        let folder = dir.path().join("data");
        let kept = dir.path().join("kept");
        std::fs::create_dir_all(folder.join("sub")).expect("mkdir");
        std::fs::create_dir_all(&kept).expect("mkdir");
        let file = folder.join("daemon.pid");
        std::fs::write(&file, format!("   {}\n", daemon.id())).expect("pid file");
        let missing = dir.path().join("never.pid");
        writeln!(pipe, "+ remove:{}", folder.display()).expect("write");
        writeln!(
            pipe,
            "+ pidfile:{}\n+ pidfile:{}",
            missing.display(),
            file.display()
        )
        .expect("write");
        writeln!(pipe, "+ remove:{0}\n- remove:{0}", kept.display()).expect("write");
        // Reaped as soon as it ends, as init reaps a detached server, so
        // that the guardian sees it gone rather than a zombie.
        let stopped = std::thread::spawn(move || ended_by(&mut daemon));
        drop(pipe);
        assert!(guardian.wait().expect("guardian").success());
        // SIGQUIT: PostgreSQL's immediate shutdown, not the fallback.
        assert_eq!(stopped.join().expect("the waiter"), Some(libc::SIGQUIT));
        assert!(!folder.exists(), "removed");
        assert!(kept.exists(), "taken back, so kept");
    }

    /// A group is killed whole: the leader and what it started.
    #[test]
    fn a_registered_group_goes_with_its_leader() {
        let (mut guardian, mut pipe) = own_guardian();
        let mut leader = spawn_group(
            Command::new("sh")
                .arg("-c")
                .arg("sleep 300 & echo $!; wait")
                .stdout(Stdio::piped()),
        )
        .expect("sh");
        let mut line = String::new();
        BufReader::new(leader.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        let started: i32 = line.trim().parse().expect("a pid");
        writeln!(pipe, "+ kill:-{}", leader.id()).expect("write");
        drop(pipe);
        assert!(guardian.wait().expect("guardian").success());
        assert_eq!(ended_by(&mut leader), Some(libc::SIGKILL));
        // The group's other member was killed too: gone, or a zombie
        // until init reaps it (its parent, the leader, is dead).
        let state = || std::fs::read_to_string(format!("/proc/{started}/stat")).ok();
        crate::testing::wait_for(
            "the leader's child to die",
            crate::testing::READY_BOUND,
            || match state() {
                None => Some(()),
                Some(s) if s.split(' ').nth(2) == Some("Z") => Some(()),
                Some(_) => None,
            },
        );
    }
}
