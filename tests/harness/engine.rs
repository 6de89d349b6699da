//! The engine the integration tests run Tern on. By default sled in each
//! test's data folder, as a fresh install has it. With
//! `TERN_TEST_STORE=postgres` (the second pass of `.ci/run`) every server a
//! test starts gets its own empty database in one private PostgreSQL per
//! test process (`tern::testing::postgres`: `initdb` in a temporary folder
//! at first use, stopped when the process exits), so the same suite
//! checks both engines.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use tern::testing::postgres::PrivatePostgres;

static SERVER: OnceLock<Mutex<Option<PrivatePostgres>>> = OnceLock::new();
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(1);

/// Is this run on PostgreSQL?
pub fn on_postgres() -> bool {
    std::env::var("TERN_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// The engine's name, for test output.
pub fn name() -> &'static str {
    if on_postgres() { "postgres" } else { "sled" }
}

/// The `[store]` section a new test server's config gets: None on sled
/// (no section: the default), else a fresh database's.
pub fn store_section() -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let url = fresh_database();
    Some(format!(
        "\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nsslmode = \"disable\"\npool_size = 4\n"
    ))
}

/// Whether PostgreSQL's `initdb` is where `PrivatePostgres` looks for it
/// (suites that need PostgreSQL in every pass skip, saying so, without it).
pub fn postgres_installed() -> bool {
    let bindir = std::env::var_os("TERN_PG_BINDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/lib/postgresql/15/bin".into());
    let found = bindir.join("initdb").exists();
    if !found {
        eprintln!(
            "SKIPPED: {}/initdb is missing (PostgreSQL 15: scripts/install-test-deps)",
            bindir.display()
        );
    }
    found
}

/// The URL of a new empty database on the test process's private
/// PostgreSQL (started at the first call).
pub fn fresh_database() -> String {
    let server = SERVER.get_or_init(|| {
        // SAFETY: registers a plain `extern "C"` function with no
        // arguments; it runs once, at process exit.
        unsafe { libc::atexit(stop_at_exit) };
        Mutex::new(Some(PrivatePostgres::start()))
    });
    let guard = server.lock().unwrap_or_else(|e| e.into_inner());
    let pg = guard.as_ref().expect("the private PostgreSQL was stopped");
    let name = format!("t{}", NEXT_DATABASE.fetch_add(1, Ordering::Relaxed));
    pg.create_database(&name)
}

/// Stops the private PostgreSQL when the test process ends (test binaries
/// return from `main`, so `exit` runs this).
extern "C" fn stop_at_exit() {
    if let Some(server) = SERVER.get() {
        let taken = server.lock().map(|mut g| g.take()).unwrap_or(None);
        drop(taken);
    }
}
