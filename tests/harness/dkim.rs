//! DKIM keys for the tests, made the way an operator makes them: `tern dkim
//! generate`, and the TXT record read back from what it printed.

use std::path::Path;

/// A key made by `tern dkim generate DOMAIN SELECTOR --algorithm ALG --out
/// DIR`: (key file, record value, what the command printed).
pub fn dkim_generate(
    dir: &Path,
    domain: &str,
    selector: &str,
    algorithm: &str,
) -> (String, String, String) {
    let out = std::process::Command::new(super::tern_bin())
        .args([
            "dkim",
            "generate",
            domain,
            selector,
            "--algorithm",
            algorithm,
            "--out",
        ])
        .arg(dir)
        .output()
        .expect("tern dkim generate");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let record = printed_record(&text);
    let path = dir.join(format!("{domain}.{selector}.key"));
    (path.to_string_lossy().into_owned(), record, text)
}

/// The record value in the zone-file line `tern dkim generate` prints: its
/// quoted strings, joined.
pub fn printed_record(stdout: &str) -> String {
    let (_, rest) = stdout.split_once("\tIN\tTXT\t").expect("TXT line");
    rest.split('"').skip(1).step_by(2).collect()
}
