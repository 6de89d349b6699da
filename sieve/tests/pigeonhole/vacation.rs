//! The vacation decision compared with Pigeonhole: `sieve-test -e` really
//! executes the vacation action (the reply is printed, never sent) or logs
//! why it discards it. Each script of `tests/sieve-corpus/vacation` runs on
//! every message; whether a reply goes out must agree, and when it does its
//! recipient, sender, subject, In-Reply-To, References and Auto-Submitted
//! must agree too (RFC 5230 section 4.5, RFC 3834).

use mail_parser::MessageParser;
use tern_sieve::message::MessageView;
use tern_sieve::vacation::{ReplyLog, decide};
use tern_sieve::{Action, Context, NoEnvironment, compile, run};

use crate::pigeonhole::SieveTest;
use crate::{corpus, envelopes};

struct NeverReplied;
impl ReplyLog for NeverReplied {
    fn already_replied(&self, _: &str, _: &str, _: u64) -> bool {
        false
    }
}

/// Pigeonhole sanitises the reply subject (a TAB becomes U+FFFD); both
/// sides show control characters and U+FFFD as `?`.
fn subject(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{FFFD}' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

fn bare(a: &str) -> String {
    a.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

/// The reply's key fields from Pigeonhole's printed message (on stdout,
/// announced on stderr), or `None`.
fn theirs(stdout: &str, stderr: &str) -> Option<Vec<String>> {
    if !stderr.contains("sending message from <>") {
        return None;
    }
    let end = stdout.find("\nRECIPIENT:").unwrap_or(stdout.len());
    let msg = MessageParser::default().parse(&stdout.as_bytes()[..end])?;
    let addr = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address.as_deref())
            .map(bare)
            .unwrap_or_default()
    };
    let auto = msg.header_raw("Auto-Submitted").unwrap_or_default();
    Some(vec![
        format!("to={}", addr(msg.to())),
        format!("from={}", addr(msg.from())),
        format!("subject={}", subject(msg.subject().unwrap_or_default())),
        format!(
            "in-reply-to={}",
            msg.header_raw("In-Reply-To").map(bare).unwrap_or_default()
        ),
        format!(
            "references={}",
            msg.header_raw("References")
                .map(|r| r.trim().to_string())
                .unwrap_or_default()
        ),
        format!(
            "auto-submitted={}",
            auto.split('(').next().unwrap_or_default().trim()
        ),
    ])
}

fn ours(script: &str, message: &[u8], env: &tern_sieve::Envelope) -> Option<Vec<String>> {
    let compiled = compile(script).expect("vacation scripts compile");
    let ctx = Context::new(&env.to, env.clone());
    let out = run(&compiled, message, &ctx, &NoEnvironment);
    let v = out.actions.iter().find_map(|a| match a {
        Action::Vacation(v) => Some(v.clone()),
        _ => None,
    })?;
    let reply = decide(&MessageView::new(message), env, &env.to, &v, &NeverReplied).ok()?;
    Some(vec![
        format!("to={}", bare(&reply.to)),
        format!("from={}", bare(&reply.from)),
        format!("subject={}", subject(&reply.subject)),
        format!(
            "in-reply-to={}",
            reply.in_reply_to.as_deref().map(bare).unwrap_or_default()
        ),
        format!("references={}", reply.references.unwrap_or_default()),
        format!("auto-submitted={}", reply.auto_submitted),
    ])
}

#[test]
fn vacation_decisions_agree_with_pigeonhole() {
    let ph = SieveTest::new(&corpus()).unwrap_or_else(|e| {
        panic!("sieve-test (Debian's dovecot-sieve) is needed: run scripts/install-test-deps ({e})")
    });
    let mut scripts: Vec<_> = std::fs::read_dir(corpus().join("vacation"))
        .expect("vacation dir")
        .map(|e| e.expect("entry").path())
        .collect();
    scripts.sort();
    let (mut pairs, mut sent, mut failures) = (0, 0, Vec::new());
    for script in &scripts {
        let name = script
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let src = std::fs::read_to_string(script).expect("script");
        for (msg_name, env) in envelopes() {
            let message =
                std::fs::read(corpus().join("messages").join(&msg_name)).expect("message");
            let out = ph.output("vacation", &name, &msg_name, &env, &["-e", "-r", &env.to]);
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            let (t, o) = (theirs(&stdout, &stderr), ours(&src, &message, &env));
            pairs += 1;
            sent += usize::from(t.is_some());
            if t != o {
                let why = stderr
                    .lines()
                    .filter(|l| l.contains("vacation"))
                    .collect::<Vec<_>>()
                    .join(" / ");
                failures.push(format!(
                    "{name} × {msg_name}\n  pigeonhole: {t:?} ({why})\n  tern-sieve: {o:?}"
                ));
            }
        }
    }
    eprintln!(
        "vacation decisions: {pairs} pairs, {sent} replies, {} disagree",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} pairs disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        sent > 0 && sent < pairs,
        "the corpus must have both replies and refusals"
    );
}
