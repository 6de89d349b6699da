//! `tern sieve check FILE` through the real binary: a valid script prints
//! "ok", a broken one fails with FILE:LINE:COLUMN and the reason.

use std::process::Command;

fn check(script: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("test.sieve");
    std::fs::write(&file, script).expect("write script");
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["sieve", "check"])
        .arg(&file)
        .output()
        .expect("tern runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).replace(&*file.to_string_lossy(), "FILE"),
        String::from_utf8_lossy(&out.stderr).replace(&*file.to_string_lossy(), "FILE"),
    )
}

#[test]
fn sieve_check_reports_line_and_column() {
    let (ok, stdout, _) = check(
        "require [\"fileinto\", \"imap4flags\"];\nif address :domain :is \"from\" \"example.com\" {\n  fileinto :flags \"\\\\Seen\" \"work\";\n}\n",
    );
    assert!(ok);
    assert_eq!(stdout.trim(), "FILE: ok");

    let (ok, _, stderr) = check("require \"fileinto\";\nif true {\n    fileinto :copy \"x\";\n}\n");
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "tern: FILE:3:14: unknown tag :copy for 'fileinto'"
    );

    let (ok, _, stderr) =
        check("if header :contains \"subject\" \"x\" {\n  vacation \"away\";\n}\n");
    assert!(!ok);
    assert_eq!(
        stderr.trim(),
        "tern: FILE:2:3: vacation requires 'require \"vacation\"'"
    );
}
