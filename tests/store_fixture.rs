//! A data directory written by the release before the storage seam
//! (`tests/fixtures/store-v1/`, made by its `make.py` with that release)
//! opens with today's code, and IMAP and the CLI find in it exactly what
//! they found then: every user, folder, UIDVALIDITY, UID, flag, message
//! byte and queued recipient (the fixture's `manifest.json`).

use std::process::{Command, Output};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/store-v1/make.py"
);

fn check(extra: &[&str]) -> Output {
    Command::new("python3")
        .args([SCRIPT, "check", env!("CARGO_BIN_EXE_tern")])
        .args(extra)
        .output()
        .expect("run python3")
}

#[test]
fn a_data_directory_from_the_release_before_the_seam_opens_with_everything_in_it() {
    let out = check(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the fixture did not open as it was written:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("fixture ok: 9 messages"), "{stdout}");
}

/// `tern store migrate` takes the fixture to a private PostgreSQL and back
/// to sled, verifying each copy by counts and checksums; the server then
/// finds everything the manifest lists in the round-tripped directory.
#[test]
fn store_migrate_moves_the_fixture_to_postgres_and_back_intact() {
    let pg = tern::testing::postgres::PrivatePostgres::start();
    let out = check(&["--through-postgres", &pg.url()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the round trip lost something:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("equal on both sides").count(),
        4,
        "two spaces verified in each direction:\n{stdout}"
    );
    assert!(stdout.contains("fixture ok: 9 messages"), "{stdout}");
}
