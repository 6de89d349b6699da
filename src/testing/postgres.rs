//! A private PostgreSQL server for tests: `initdb` in a fresh temporary
//! folder, `pg_ctl start` on a free loopback port, a database `tern` owned
//! by a trusted user `tern`, and `pg_ctl stop` when dropped. Debian's
//! postgresql-15 provides the binaries (`scripts/install-test-deps`
//! installs it); `TERN_PG_BINDIR` points elsewhere. PostgreSQL refuses to
//! run as root, so under root every command runs as the `postgres` user
//! (the Debian package makes it) and the folder is handed to that user.
//! Tests reach it through the engine (`PrivatePostgres::engine`), or
//! through a session of their own (`PrivatePostgres::session`) to hold
//! row locks beside the engine and wait until it blocks on them
//! (`until_a_lock_wait`).
//!
//! A test process that is killed runs no destructor, and the server
//! (`pg_ctl` puts it in a session of its own) would outlive it: its pid
//! file and its folder are registered with the test process's guardian
//! (`reaper.rs`), which then stops the server (SIGQUIT, as `pg_ctl stop
//! -m immediate` does) and removes the folder.

use super::ports::start_on_free_port;
use super::reaper::{Registered, spawn_group, watch_folder, watch_pid_file};
use crate::store::backend::{Backend, EngineSettings, PostgresSettings, SslMode};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct PrivatePostgres {
    dir: PathBuf,
    bindir: PathBuf,
    port: u16,
    /// (uid, gid) commands run as, when the tests run as root.
    run_as: Option<(u32, u32)>,
    running: bool,
    /// The server and the folder, for the guardian should this process
    /// end without dropping them.
    _guarded: (Registered, Registered),
}

impl PrivatePostgres {
    /// Creates and starts a new server; panics with the tool's output if
    /// any step fails (a test cannot go on without it).
    pub fn start() -> PrivatePostgres {
        let bindir = std::env::var_os("TERN_PG_BINDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        assert!(
            bindir.join("initdb").exists(),
            "PostgreSQL 15 is not installed ({}/initdb missing): run scripts/install-test-deps",
            bindir.display()
        );
        let dir = std::env::temp_dir().join(format!(
            "tern-pg-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        // Registered before it exists, so that no moment leaves it behind.
        let guarded = (
            watch_pid_file(&dir.join("data/postmaster.pid")),
            watch_folder(&dir),
        );
        std::fs::create_dir_all(&dir).expect("create the PostgreSQL test folder");
        let run_as = hand_to_postgres_if_root(&dir);
        let mut pg = PrivatePostgres {
            dir,
            bindir,
            port: 0,
            run_as,
            running: false,
            _guarded: guarded,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                "tern",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        start_on_free_port(|port| {
            pg.port = port;
            pg.try_start()
        });
        pg.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "tern",
                "tern",
            ],
        );
        pg
    }

    /// `postgresql://tern@127.0.0.1:PORT/tern` (TLS off: loopback).
    pub fn url(&self) -> String {
        format!(
            "postgresql://tern@127.0.0.1:{}/tern?sslmode=disable",
            self.port
        )
    }

    /// Settings for the PostgreSQL engine on this server (without TLS:
    /// it listens on loopback only).
    pub fn settings(&self) -> PostgresSettings {
        let mut settings = PostgresSettings::new(self.url());
        settings.sslmode = SslMode::Disable;
        settings
    }

    /// The PostgreSQL engine on this server, opened with `settings`
    /// changed by `adjust` (a pool size, a statement timeout).
    pub async fn engine(&self, adjust: impl FnOnce(&mut PostgresSettings)) -> Backend {
        let mut settings = self.settings();
        adjust(&mut settings);
        Backend::open(&EngineSettings::Postgres(settings))
            .await
            .expect("open the PostgreSQL engine")
    }

    /// A session of its own on this server (as the superuser `tern`), for
    /// a test to hold locks or change settings beside the engine's pool.
    pub async fn session(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("a session on the private PostgreSQL");
        tokio::spawn(connection);
        client
    }

    /// Creates another empty database owned by `tern` and returns its URL
    /// (the form of [`PrivatePostgres::url`]).
    pub fn create_database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "tern",
                name,
            ],
        );
        format!(
            "postgresql://tern@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server at once, as a crash would (`-m immediate`).
    pub fn stop_immediate(&mut self) {
        if self.running {
            let data = self.data().display().to_string();
            self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
            self.running = false;
        }
    }

    /// Starts the (stopped) server again on the same port; panics with
    /// the server's log if it does not start.
    pub fn start_again(&mut self) {
        if let Err(failure) = self.try_start() {
            panic!("{failure}");
        }
    }

    /// `pg_ctl start` on `self.port`; on failure, the tool's output and
    /// what this attempt wrote to the server's log.
    fn try_start(&mut self) -> Result<(), String> {
        let data = self.data().display().to_string();
        let log_path = self.dir.join("server.log");
        let log_before = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let log = log_path.display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        match self.output(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        ) {
            Ok(()) => {
                self.running = true;
                Ok(())
            }
            Err(failure) => {
                let written = std::fs::read(&log_path).unwrap_or_default();
                let start = usize::try_from(log_before).unwrap_or(0).min(written.len());
                Err(format!(
                    "{failure}\nserver log:\n{}",
                    String::from_utf8_lossy(&written[start..])
                ))
            }
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        if let Err(failure) = self.output(tool, args) {
            panic!("{failure}");
        }
    }

    /// Runs one of the server's tools; on failure, what it printed.
    /// Watched, so that a tool still writing to the folder (`initdb`) is
    /// stopped before the guardian removes it.
    fn output(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bindir.join(tool);
        let mut command = Command::new(&program);
        command
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        let output = spawn_group(&mut command)
            .and_then(|tool| tool.wait_with_output())
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{tool} {args:?} failed: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data().display().to_string();
            let mut command = Command::new(self.bindir.join("pg_ctl"));
            command.args(["-D", &data, "-m", "immediate", "-w", "stop"]);
            if let Some((uid, gid)) = self.run_as {
                use std::os::unix::process::CommandExt;
                command.uid(uid).gid(gid);
            }
            let _ = command.output();
        }
        remove_tree(&self.dir);
    }
}

fn remove_tree(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Under root, gives `dir` to Debian's `postgres` user and returns its
/// (uid, gid), what the server's commands must then run as (PostgreSQL
/// refuses root); otherwise None.
pub fn hand_to_postgres_if_root(dir: &Path) -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let ids = postgres_user().expect("the `postgres` user (Debian's postgresql package)");
    std::os::unix::fs::chown(dir, Some(ids.0), Some(ids.1))
        .expect("hand the test folder to postgres");
    Some(ids)
}

/// The uid and gid of Debian's `postgres` user (what PostgreSQL runs as
/// when the tests run as root).
fn postgres_user() -> Option<(u32, u32)> {
    let name = std::ffi::CString::new("postgres").ok()?;
    // SAFETY: a valid NUL-terminated name; the returned record is read at
    // once, before any other getpw* call could reuse it.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: checked non-null above.
    let pw = unsafe { &*pw };
    Some((pw.pw_uid, pw.pw_gid))
}

/// Returns once some session of the server waits for a lock (asked through
/// `session`): the write a test started has reached the row it holds.
/// Panics naming `what` if none does within `READY_BOUND`.
pub async fn until_a_lock_wait(session: &tokio_postgres::Client, what: &str) {
    let started = std::time::Instant::now();
    loop {
        let waiting: i64 = session
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting > 0 {
            return;
        }
        assert!(
            started.elapsed() < super::READY_BOUND,
            "{what} never waited for a lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
