//! The import rules of ARCHITECTURE.md's module map, checked on the source
//! (test only): no protocol (SMTP/LMTP, POP3, IMAP, web mail, ManageSieve) imports the
//! accept loop or another protocol; nothing but the accept loop and the
//! fuzzing entry points imports the SMTP server; the shared context
//! imports no protocol; the mail vocabulary imports no other module.

use std::collections::BTreeSet;
use std::path::Path;

const PROTOCOLS: [&str; 5] = ["smtp", "pop3", "imap", "web", "managesieve"];

/// The top-level modules each top-level module names through `crate::`
/// (comments left out), keyed by module.
fn imports() -> Vec<(String, BTreeSet<String>)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            // This file names the modules in its messages, not as imports.
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("boundaries.rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let module = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .map(|m| m.trim_end_matches(".rs").to_string())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).expect("read source");
            let mut names = BTreeSet::new();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                let mut rest = code;
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        names.insert(name);
                    }
                }
            }
            out.push((rel.display().to_string(), names));
        }
    }
    out
}

fn top(file: &str) -> &str {
    file.split('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".rs")
}

#[test]
fn protocols_import_neither_the_accept_loop_nor_each_other() {
    for (file, names) in imports() {
        let module = top(&file);
        if !PROTOCOLS.contains(&module) {
            continue;
        }
        assert!(!names.contains("server"), "{file} imports crate::server");
        for other in PROTOCOLS.iter().filter(|p| **p != module) {
            assert!(!names.contains(*other), "{file} imports crate::{other}");
        }
    }
}

#[test]
fn only_the_accept_loop_and_fuzzing_import_the_smtp_server() {
    for (file, names) in imports() {
        if names.contains("smtp") {
            assert!(
                file == "server.rs" || file == "fuzzing.rs",
                "{file} imports crate::smtp; shared vocabulary belongs in crate::mail"
            );
        }
    }
}

#[test]
fn context_and_vocabulary_stay_below_the_protocols() {
    for (file, names) in imports() {
        match top(&file) {
            "mail" => assert!(names.is_empty(), "{file} imports {names:?}"),
            "context" | "submit" => {
                for p in PROTOCOLS.iter().chain(&["server"]) {
                    assert!(!names.contains(*p), "{file} imports crate::{p}");
                }
            }
            _ => {}
        }
    }
}
