//! What a killed test process leaves running. A test that is killed
//! (SIGKILL, a CI job's time limit) runs no destructor, so the servers it
//! started (`tern serve`, Dovecot, the Python peers, rspamd…) would go on
//! running, holding ports and CPU. One guardian per test process stops
//! them: `sh` reading registrations from a pipe whose only writer is this
//! process (Rust opens it close-on-exec, so no other child holds it), which
//! the kernel closes however the process ends; at its end the guardian
//! kills with SIGKILL every process, or process group, still registered.
//! A child is registered by wrapping it (`watch`, or `spawn_group` for a
//! daemon that starts processes of its own); the wrapper kills it when it
//! drops, if the owner has not stopped it by then, and unregisters it. A
//! daemon that detaches is registered by its pid file (`watch_pid_file`).
//!
//! The guardian is in a process group of its own and ignores SIGINT,
//! SIGTERM and SIGHUP, so that stopping the tests' group leaves it to do
//! its work. If it cannot be started, children are still stopped by their
//! owners' destructors, as before.

use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The guardian: a set of ids (` 12 -34 /tmp/x/pid `) kept in the shell,
/// `+ ID` adds one, `- ID` removes it; at the end of its input, each is
/// killed: a pid, a process group (negative), or the pid a file names
/// (an absolute path: a daemon that detaches from its starter).
const GUARDIAN: &str = r#"trap '' INT TERM HUP
live=' '
while read -r op id; do
  case "$op" in
    +) live="$live$id " ;;
    -) case "$live" in *" $id "*) live="${live%% $id *} ${live#* $id }" ;; esac ;;
  esac
done
for id in $live; do
  case "$id" in
    /*) read -r pid < "$id" && kill -s KILL -- "$pid" ;;
    *) kill -s KILL -- "$id" ;;
  esac 2>/dev/null
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
fn tell(op: char, id: &str) {
    if let Some(pipe) = guardian() {
        let mut pipe = pipe.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(pipe, "{op} {id}");
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
        tell('+', &id.to_string());
        Watched {
            child: Some(child),
            id,
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
        tell('-', &self.id.to_string());
    }
}

/// A daemon that leaves the process the test started (Postfix's master,
/// a PostgreSQL that Patroni starts in a session of its own), known by
/// the file it writes its pid to: the guardian kills the pid the file
/// holds then, if it exists. Unregistered on drop; the owner stops the
/// daemon itself.
#[derive(Debug)]
pub struct PidFile {
    /// None: a path the guardian's line format cannot carry (relative,
    /// or with blanks), not registered.
    path: Option<String>,
}

/// Watches the daemon whose pid `path` (absolute) will hold.
pub fn watch_pid_file(path: &std::path::Path) -> PidFile {
    let path = path
        .to_str()
        .filter(|p| p.starts_with('/') && !p.contains(char::is_whitespace))
        .map(str::to_string);
    if let Some(p) = &path {
        tell('+', p);
    }
    PidFile { path }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            tell('-', p);
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
        writeln!(pipe, "+ {}\n+ {}", kept.id(), left.id()).expect("write");
        writeln!(pipe, "+ {}\n- {}", stopped.id(), stopped.id()).expect("write");
        writeln!(pipe, "- {}", kept.id()).expect("write");
        drop(pipe);
        assert!(guardian.wait().expect("guardian").success());
        // `left` was still registered: killed, so its wait ends.
        assert!(!left.wait().expect("wait").success(), "killed, not exited");
        // The two unregistered ones still run.
        assert!(alive(kept.id()) && alive(stopped.id()));
    }

    /// A registered pid file: the process it names is killed; a file that
    /// is not there is passed over.
    #[test]
    fn the_pid_a_registered_file_names_is_killed() {
        let (mut guardian, mut pipe) = own_guardian();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut daemon = watch(Command::new("sleep").arg("300").spawn().expect("sleep"));
        let file = dir.path().join("daemon.pid");
        std::fs::write(&file, format!("   {}\n", daemon.id())).expect("pid file");
        let missing = dir.path().join("never.pid");
        writeln!(pipe, "+ {}\n+ {}", missing.display(), file.display()).expect("write");
        drop(pipe);
        assert!(guardian.wait().expect("guardian").success());
        assert!(!daemon.wait().expect("wait").success(), "killed");
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
        writeln!(pipe, "+ -{}", leader.id()).expect("write");
        drop(pipe);
        assert!(guardian.wait().expect("guardian").success());
        assert!(!leader.wait().expect("wait").success(), "killed");
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
