//! The language as the RFCs define it, beyond what the Pigeonhole corpus
//! shows: compile errors at line and column, the nesting and step limits,
//! run-time failures falling back to the implicit keep, include loops, the
//! null sender, and that arbitrary input never panics.

use tern_sieve::{
    Action, Context, Envelope, Environment, NoEnvironment, RuntimeError, compile, run,
};

const MSG: &[u8] = b"From: Alice <alice@example.net>\r\nTo: bob@example.com\r\nSubject: Hello there\r\n\r\nBody text\r\n";

fn ctx() -> Context {
    Context::new(
        "bob@example.com",
        Envelope {
            from: "alice@example.net".into(),
            to: "bob@example.com".into(),
        },
    )
}

fn error_at(src: &str) -> (u32, u32, String) {
    let e = compile(src).expect_err("the script must not compile");
    (e.pos.line, e.pos.col, e.message)
}

#[test]
fn compile_errors_name_line_and_column() {
    let cases: &[(&str, u32, u32, &str)] = &[
        (
            "require \"fileinto\";\nif true {\n  frobnicate;\n}\n",
            3,
            3,
            "unknown command 'frobnicate'",
        ),
        (
            "keep;\nfileinto \"x\";\n",
            2,
            1,
            "requires 'require \"fileinto\"'",
        ),
        (
            "if header :is \"subject\" 42 { keep; }",
            1,
            25,
            "expects a string list",
        ),
        (
            "keep;\n  redirect \"not an address\";",
            2,
            12,
            "invalid redirect address",
        ),
        ("require \"nosuch\";", 1, 9, "unsupported extension"),
        ("keep\nstop;", 1, 1, "is a ';' missing before 'stop' at 2:1"),
        ("keep\n", 2, 1, "expected ';' after 'keep'"),
        ("if true { keep;", 1, 16, "missing '}'"),
        ("fileinto \"unterminated;\n", 1, 10, "unterminated string"),
        (
            "require \"relational\";\nif header :count \"eq\" :is \"to\" \"1\" { keep; }",
            2,
            23,
            "more than one match type",
        ),
        (
            "require \"variables\";\nset \"a.b\" \"x\";",
            2,
            5,
            "unknown namespace",
        ),
        (
            "require \"variables\";\nset \"1a\" \"x\";",
            2,
            5,
            "invalid variable name",
        ),
        ("elsif true { keep; }", 1, 1, "'elsif' without 'if'"),
        (
            "keep; require \"fileinto\";",
            1,
            7,
            "'require' must come before",
        ),
        (
            "if header :comparator \"i;nosuch\" \"a\" \"b\" { keep; }",
            1,
            23,
            "unknown comparator",
        ),
        (
            "require \"date\";\nif date :zone \"+2500\" \"date\" \"year\" \"2024\" { keep; }",
            2,
            15,
            "invalid time zone",
        ),
        ("/* open comment", 1, 1, "unterminated comment"),
        (
            "size :over 99999999999999999999G;",
            1,
            12,
            "number too large",
        ),
    ];
    for (src, line, col, msg) in cases {
        let (l, c, m) = error_at(src);
        assert_eq!((l, c), (*line, *col), "position for {src:?}: {m}");
        assert!(m.contains(msg), "message for {src:?}: {m:?} lacks {msg:?}");
    }
    // Display carries line:column for the CLI.
    let e = compile("keep;\n  bogus;").expect_err("error");
    assert_eq!(e.to_string(), "2:3: unknown command 'bogus'");
}

#[test]
fn nesting_is_bounded_without_stack_overflow() {
    let deep_blocks = format!("{}keep;{}", "if true {".repeat(10_000), "}".repeat(10_000));
    assert!(error_at(&deep_blocks).2.contains("nested too deeply"));
    let deep_tests = format!("if {}true{} {{ keep; }}", "not ".repeat(10_000), "");
    assert!(error_at(&deep_tests).2.contains("nested too deeply"));
    let deep_lists = format!(
        "if {}true{} {{ keep; }}",
        "allof(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(error_at(&deep_lists).2.contains("nested too deeply"));
    let ok = format!("{}keep;{}", "if true {".repeat(20), "}".repeat(20));
    assert!(compile(&ok).is_ok());
}

#[test]
fn step_limit_ends_the_run_with_the_implicit_keep() {
    let src = format!(
        "require \"fileinto\";\n{}",
        "if header :contains \"subject\" \"hello\" { fileinto \"x\"; }\n".repeat(50)
    );
    let script = compile(&src).expect("compiles");
    let mut c = ctx();
    c.step_limit = 40;
    let out = run(&script, MSG, &c, &NoEnvironment);
    assert_eq!(out.error, Some(RuntimeError::StepLimit(40)));
    assert!(out.actions.is_empty() && out.implicit_keep);
    c.step_limit = 1000;
    let out = run(&script, MSG, &c, &NoEnvironment);
    assert_eq!(out.error, None);
    assert_eq!(
        out.actions.len(),
        1,
        "fifty identical fileintos collapse into one"
    );
    assert!(!out.implicit_keep);
}

#[test]
fn runtime_conflicts_fall_back_to_the_implicit_keep() {
    let script = compile("require [\"reject\", \"fileinto\"];\nfileinto \"a\";\nreject \"no\";")
        .expect("compiles");
    let out = run(&script, MSG, &ctx(), &NoEnvironment);
    assert!(matches!(out.error, Some(RuntimeError::Conflict(_))));
    assert!(out.actions.is_empty() && out.implicit_keep);
    let script =
        compile("require \"variables\";\nset \"a\" \"not an address\";\nredirect \"${a}\";")
            .expect("compiles");
    let out = run(&script, MSG, &ctx(), &NoEnvironment);
    assert!(out.error.is_some() && out.implicit_keep);
}

#[test]
fn implicit_keep_and_copy() {
    let script = compile("require [\"fileinto\", \"copy\"];\nfileinto :copy \"a\";\nredirect :copy \"x@example.org\";").expect("compiles");
    let out = run(&script, MSG, &ctx(), &NoEnvironment);
    assert!(out.implicit_keep, ":copy keeps the implicit keep");
    assert_eq!(out.actions.len(), 2);
    let script = compile("discard;").expect("compiles");
    let out = run(&script, MSG, &ctx(), &NoEnvironment);
    assert_eq!(
        (out.actions.as_slice(), out.implicit_keep),
        (&[Action::Discard][..], false)
    );
}

struct Loop;
impl Environment for Loop {
    fn load_script(&self, name: &str, _global: bool) -> Option<String> {
        match name {
            "a" => Some("require \"include\";\ninclude \"b\";".into()),
            "b" => Some("require \"include\";\ninclude \"a\";".into()),
            "deep" => Some("require [\"include\", \"fileinto\"];\nfileinto \"deep\";".into()),
            _ => None,
        }
    }
}

#[test]
fn include_loops_and_missing_scripts_are_errors() {
    let script = compile("require \"include\";\ninclude \"a\";").expect("compiles");
    let out = run(&script, MSG, &ctx(), &Loop);
    assert!(
        matches!(out.error, Some(RuntimeError::Include(..))),
        "{:?}",
        out.error
    );
    assert!(out.implicit_keep);
    let script = compile("require \"include\";\ninclude \"missing\";").expect("compiles");
    assert!(run(&script, MSG, &ctx(), &Loop).error.is_some());
    let script = compile("require \"include\";\ninclude :optional \"missing\";\ninclude \"deep\";")
        .expect("compiles");
    let out = run(&script, MSG, &ctx(), &Loop);
    assert_eq!(out.error, None);
    assert_eq!(out.actions.len(), 1);
}

#[test]
fn null_sender_matches_as_empty() {
    let script = compile("require [\"envelope\", \"fileinto\"];\nif envelope :all :is \"from\" \"\" { fileinto \"null\"; }\nif envelope :domain :is \"from\" \"\" { fileinto \"null-domain\"; }").expect("compiles");
    let c = Context::new(
        "bob@example.com",
        Envelope {
            from: String::new(),
            to: "bob@example.com".into(),
        },
    );
    let out = run(&script, MSG, &c, &NoEnvironment);
    assert_eq!(
        out.actions.len(),
        2,
        "RFC 5228 2.7.4: the null reverse-path is the empty string for every address part"
    );
}

/// A small deterministic generator, so the property below needs no crate.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn arbitrary_scripts_and_messages_never_panic() {
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sieve-corpus/scripts");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    seeds.sort();
    let alphabet = b"{}[]();,:\"\\*?$#/ \n\r\tifheaderkeep${hex:41}${1}text:\n.\n";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut compiled = 0;
    for round in 0..4000 {
        let mut s = seeds[round % seeds.len()].clone();
        for _ in 0..(rng.next() % 8 + 1) {
            let at = (rng.next() as usize) % (s.len() + 1);
            match rng.next() % 3 {
                0 => s.insert(at, alphabet[(rng.next() as usize) % alphabet.len()]),
                1 if at < s.len() => {
                    s.remove(at);
                }
                _ => s.truncate(at),
            }
        }
        let text = String::from_utf8_lossy(&s);
        if let Ok(script) = compile(&text) {
            compiled += 1;
            let mut m = MSG.to_vec();
            m.extend_from_slice(&s[..s.len().min(200)]);
            let _ = run(&script, &m, &ctx(), &NoEnvironment);
        }
    }
    assert!(
        compiled > 100,
        "the mutations should leave some scripts valid ({compiled})"
    );
}

#[test]
fn ereject_is_a_reject_marked_extended() {
    // Pigeonhole lacks ereject, so the corpus cannot compare it (RFC 5429 section 2.2).
    let script = compile("require \"ereject\";\nereject \"no thanks\";").expect("compiles");
    let out = run(&script, MSG, &ctx(), &NoEnvironment);
    assert_eq!(
        out.actions,
        vec![Action::Reject {
            reason: "no thanks".into(),
            extended: true
        }]
    );
    assert!(!out.implicit_keep);
    assert!(
        compile("require \"reject\";\nereject \"x\";").is_err(),
        "ereject needs its own require"
    );
}
