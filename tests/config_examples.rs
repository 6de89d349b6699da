//! Every shipped config file passes `tern check-config` (with its TLS files
//! swapped for generated ones), so do the ready-to-try ones of
//! `examples/config/`, and a typo'd key fails naming the key.

mod harness;
use std::process::Command;

fn check(path: &std::path::Path) -> std::process::Output {
    Command::new(harness::tern_bin())
        .args(["check-config", "--config"])
        .arg(path)
        .output()
        .expect("tern")
}

#[test]
fn shipped_configs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tern::tls::ensure_self_signed(dir.path(), "mx.example.test").unwrap();
    for name in ["tern.toml", "mx.toml", "relay.toml", "submission.toml"] {
        let text = std::fs::read_to_string(format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
        let text = text
            .replace("/etc/tern/cert.pem", &cert.display().to_string())
            .replace("/etc/tern/key.pem", &key.display().to_string());
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = check(&path);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_typo_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "hostname = \"mx.test\"\n[limits]\nmax_mesage_size = \"1MiB\"\n",
    )
    .unwrap();
    let out = check(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_mesage_size") && err.contains("line 3"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
}

/// The ready-to-try configs of `examples/config/` pass `check-config`;
/// mx.toml's plugin paths (`plugins/dist`, made by `scripts/build-plugins`)
/// point at the same shipped plugins as `cargo test` builds them, so its
/// `[[plugin]]` entries are loaded and checked too.
#[test]
fn example_configs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let stand_ins = [
        (
            "../../plugins/dist/greylist.wasm",
            test_plugins::shipped::GREYLIST,
        ),
        (
            "../../plugins/dist/dnsbl.wasm",
            test_plugins::shipped::DNSBL,
        ),
        (
            "../../plugins/dist/sieve.wasm",
            test_plugins::shipped::SIEVE,
        ),
    ];
    for name in ["mx.toml", "relay.toml", "submission.toml"] {
        let mut text = std::fs::read_to_string(format!(
            "{}/examples/config/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        for (path, built) in stand_ins {
            text = text.replace(&format!("\"{path}\""), &format!("{built:?}"));
        }
        assert!(
            !text.contains("\"../../plugins/dist"),
            "{name}: a plugin path not stood in for"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = check(&path);
        assert!(
            out.status.success(),
            "examples/config/{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("config ok"),
            "{name}"
        );
    }
}
