//! The Pigeonhole comparison: every script of `tests/sieve-corpus/scripts`
//! runs against every message of `tests/sieve-corpus/messages`, once through
//! Dovecot Pigeonhole's `sieve-test` (Debian's dovecot-sieve; no running
//! Dovecot needed) and once through `tern-sieve`. Both action lists are
//! normalised ([`normal`]) and must agree, except for the pairs listed in
//! [`KNOWN_DIFFERENCES`], each with the RFC reason.

mod normal;
mod pigeonhole;
mod vacation;

use std::path::{Path, PathBuf};

use tern_sieve::{Context, Envelope, Environment, compile, run};

/// Pairs (script, message) where we differ from Pigeonhole because the RFC
/// says otherwise. Each must still differ (a stale entry fails the test).
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "comparators.sieve",
        "list.eml",
        "RFC 4790 section 9.2.1: i;ascii-casemap orders after mapping a-z to upper case, so \"[dev]..\"          (0x5B) is above \"m\" (M, 0x4D); Pigeonhole's header :value maps to lower case (0x5B < 0x6D)",
    ),
    (
        "variables-count.sieve",
        "big.eml",
        "RFC 4790 section 9.2.1 again: \"big one\" :value \"ge\" \"M\" is false under i;ascii-casemap          (BIG ONE < M); Pigeonhole's string :value compares octets here (b > M)",
    ),
    (
        "index.sieve",
        "plain.eml",
        "RFC 5260 section 6: date :index N :last picks the Nth Received field from the end;          Pigeonhole's date test always uses the first Received field",
    ),
    (
        "index.sieve",
        "numbers.eml",
        "RFC 5260 section 6, as for plain.eml",
    ),
    (
        "matches-unicode.sieve",
        "encoded.eml",
        "RFC 5228 sections 2.4.2 and 2.7.1: strings are UTF-8 and \"?\" matches one character; \
         Pigeonhole matches one octet, captures half of \"ü\", and its fileinto then fails on the \
         invalid UTF-8",
    ),
    (
        "matches-unicode.sieve",
        "list.eml",
        "RFC 5228 section 2.7.1: \"?ob*\" cannot match \"dev\" (o and b must match themselves); \
         Pigeonhole 0.5.19 lets keys shaped like \"?xyz*\" match values that lack xyz",
    ),
    (
        "matches-unicode.sieve",
        "groups.eml",
        "RFC 5228 section 2.7.1, as for list.eml (\"Gr??e*\" on \"Group addressing\")",
    ),
    (
        "matches-unicode.sieve",
        "autono.eml",
        "RFC 5228 section 2.7.1, as for list.eml (\"?ob*\" on \"other\")",
    ),
    (
        "relational.sieve",
        "groups.eml",
        "RFC 5322 section 3.4: \"Cc: undisclosed-recipients:;\" is a valid empty group with no          addresses, so address :count is 0; Pigeonhole counts the raw field as one address",
    ),
];

pub(crate) fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sieve-corpus")
}

struct Includes(PathBuf);

impl Environment for Includes {
    /// Pigeonhole's private mail store holds only INBOX.
    fn mailbox_exists(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("INBOX")
    }

    fn load_script(&self, name: &str, _global: bool) -> Option<String> {
        std::fs::read_to_string(self.0.join(format!("{name}.sieve"))).ok()
    }
}

pub(crate) fn envelopes() -> Vec<(String, Envelope)> {
    let text = std::fs::read_to_string(corpus().join("envelopes.txt")).expect("envelopes.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "bad envelopes.txt line {l:?}");
            (
                f[0].to_string(),
                Envelope {
                    from: f[1].to_string(),
                    to: f[2].to_string(),
                },
            )
        })
        .collect()
}

fn ours(script_src: &str, message: &[u8], env: &Envelope, now: i64) -> Vec<String> {
    match compile(script_src) {
        Err(e) => vec![format!("compile-error line {}", e.pos.line)],
        Ok(script) => {
            let mut ctx = Context::new(&env.to, env.clone());
            ctx.now = now;
            let out = run(&script, message, &ctx, &Includes(corpus().join("include")));
            normal::from_outcome(&out)
        }
    }
}

#[test]
fn corpus_agrees_with_pigeonhole() {
    let ph = pigeonhole::SieveTest::new(&corpus()).unwrap_or_else(|e| {
        panic!("sieve-test (Debian's dovecot-sieve) is needed: run scripts/install-test-deps ({e})")
    });
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(corpus().join("scripts"))
        .expect("scripts dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sieve"))
        .collect();
    scripts.sort();
    let envs = envelopes();
    let (mut pairs, mut agree, mut known) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for script in &scripts {
        let name = script
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let src = std::fs::read_to_string(script).expect("script");
        for (msg_name, env) in &envs {
            let message = std::fs::read(corpus().join("messages").join(msg_name)).expect("message");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let theirs = ph.run(&name, msg_name, env);
            let mine = ours(&src, &message, env, now);
            pairs += 1;
            if theirs == mine {
                agree += 1;
            } else if KNOWN_DIFFERENCES
                .iter()
                .any(|(s, m, _)| *s == name && *m == msg_name)
            {
                known += 1;
                continue;
            } else {
                failures.push(format!(
                    "{name} × {msg_name}\n  pigeonhole: {theirs:?}\n  tern-sieve: {mine:?}"
                ));
            }
            if KNOWN_DIFFERENCES
                .iter()
                .any(|(s, m, _)| *s == name && *m == msg_name)
            {
                failures.push(format!(
                    "{name} × {msg_name} is listed as a known difference but agrees now"
                ));
            }
        }
    }
    eprintln!(
        "sieve corpus: {pairs} pairs, {agree} agree, {known} known differences, {} disagree",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} pairs disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(pairs >= 100, "the corpus has only {pairs} pairs");
    assert!(agree + known == pairs);
}
