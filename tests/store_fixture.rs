//! A data directory written by the release before the storage seam
//! (`tests/fixtures/store-v1/`, made by its `make.py` with that release)
//! opens with today's code, and IMAP and the CLI find in it exactly what
//! they found then: every user, folder, UIDVALIDITY, UID, flag, message
//! byte and queued recipient (the fixture's `manifest.json`).

use std::process::Command;

#[test]
fn a_data_directory_from_the_release_before_the_seam_opens_with_everything_in_it() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-v1/make.py"
    );
    let out = Command::new("python3")
        .args([script, "check", env!("CARGO_BIN_EXE_tern")])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the fixture did not open as it was written:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("fixture ok: 9 messages"), "{stdout}");
}
