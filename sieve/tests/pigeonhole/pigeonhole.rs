//! Runs Pigeonhole's `sieve-test` on a private copy of the corpus and parses
//! its "Performed actions" / "Implicit keep" listing into the normal form.
//! As root, `sieve-test` must drop privileges: the private config maps mail
//! access to `nobody`, so the copy is world-readable.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use tern_sieve::Envelope;

use crate::normal;

pub struct SieveTest {
    dir: tempfile::TempDir,
}

impl SieveTest {
    pub fn new(corpus: &Path) -> std::io::Result<SieveTest> {
        Command::new("sieve-test").arg("--help").output()?;
        let dir = tempfile::tempdir()?;
        for sub in ["scripts", "messages", "include", "vacation"] {
            let to = dir.path().join(sub);
            std::fs::create_dir(&to)?;
            for e in std::fs::read_dir(corpus.join(sub))? {
                let p = e?.path();
                if let Some(name) = p.file_name() {
                    std::fs::copy(&p, to.join(name))?;
                    std::fs::set_permissions(
                        to.join(name),
                        std::fs::Permissions::from_mode(0o644),
                    )?;
                }
            }
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o777))?;
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let root =
            String::from_utf8_lossy(&Command::new("id").arg("-u").output()?.stdout).trim() == "0";
        let conf = if root {
            "mail_uid = 65534\nmail_gid = 65534\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n"
        } else {
            "first_valid_uid = 1\nfirst_valid_gid = 1\n"
        };
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail)?;
        std::fs::set_permissions(&mail, std::fs::Permissions::from_mode(0o777))?;
        let conf = format!("{conf}mail_location = maildir:{}\n", mail.display());
        std::fs::write(dir.path().join("dovecot.conf"), conf)?;
        Ok(SieveTest { dir })
    }

    /// The normalised actions of `script` on `message`.
    /// Runs `sieve-test` on `dir/script` and `messages/message` with `extra` flags.
    pub fn output(
        &self,
        dir: &str,
        script: &str,
        message: &str,
        env: &Envelope,
        extra: &[&str],
    ) -> Output {
        let d = self.dir.path();
        let inc = d.join("include");
        Command::new("sieve-test")
            .env("TZ", "UTC")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .arg("-C")
            .args(["-x", "+vacation-seconds"])
            .arg("-o")
            .arg(format!("plugin/sieve=file:{}", inc.display()))
            .arg("-o")
            .arg(format!("plugin/sieve_global={}", inc.display()))
            .args(["-a", &env.to, "-f", &env.from])
            .args(extra)
            .arg(d.join(dir).join(script))
            .arg(d.join("messages").join(message))
            .output()
            .expect("sieve-test runs")
    }

    /// The normalised actions of `script` on `message`.
    pub fn run(&self, script: &str, message: &str, env: &Envelope) -> Vec<String> {
        let out = self.output("scripts", script, message, env, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("failed to compile") {
            let line = stderr
                .lines()
                .find_map(|l| {
                    l.split(": line ")
                        .nth(1)
                        .and_then(|r| r.split(':').next())
                        .filter(|_| l.contains("error"))
                })
                .unwrap_or("?");
            return vec![format!("compile-error line {line}")];
        }
        let mut acts = parse(&stdout);
        if acts.last().is_some_and(|a| a == "no-output") {
            acts.push(format!("stderr: {}", stderr.trim()));
        }
        if stderr.contains("resolved with successful implicit keep") {
            acts = vec![
                "runtime-error".to_string(),
                "implicit-keep flags=[]".to_string(),
            ];
        }
        acts
    }
}

#[derive(Default)]
struct Pending {
    kind: &'static str,
    folder: String,
    flags: Vec<String>,
    copy: bool,
    create: bool,
    seconds: u64,
    subject: Option<String>,
    from: Option<String>,
    handle: String,
    reason: String,
}

impl Pending {
    fn finish(self, implicit: bool) -> Option<String> {
        Some(match self.kind {
            "store" if implicit => format!("implicit-keep flags=[{}]", normal::flags(&self.flags)),
            "store" => normal::store(&self.folder, &self.flags, self.copy, self.create),
            "redirect" => format!(
                "redirect {}{}",
                self.folder,
                if self.copy { " copy" } else { "" }
            ),
            "vacation" => normal::vacation(
                self.seconds,
                self.subject.as_deref(),
                self.from.as_deref(),
                &self.handle,
                &self.reason,
            ),
            "" => return None,
            other => other.to_string(),
        })
    }
}

fn parse(stdout: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut implicit = false;
    let mut saw_implicit = false;
    let mut cur = Pending::default();
    let mut in_message = false;
    // A handle with line breaks goes on over the next lines, up to the blank
    // line before START MESSAGE. Lines are split at LF only: a CR that
    // `sieve-test` prints raw stays part of the text.
    let mut in_handle = false;
    for raw in stdout.split('\n') {
        if in_handle {
            if raw == "START MESSAGE" {
                in_handle = false;
                cur.handle = cur
                    .handle
                    .strip_suffix('\n')
                    .unwrap_or(&cur.handle)
                    .to_string();
            } else {
                cur.handle.push('\n');
                cur.handle.push_str(raw);
                continue;
            }
        }
        let line = raw.trim_end_matches('\r');
        if in_message {
            if line == "END MESSAGE" {
                in_message = false;
                cur.reason = cur
                    .reason
                    .strip_suffix('\n')
                    .unwrap_or(&cur.reason)
                    .to_string();
            } else {
                cur.reason.push_str(raw);
                cur.reason.push('\n');
            }
            continue;
        }
        let new = |kind: &'static str| Pending {
            kind,
            ..Pending::default()
        };
        let mut start = |p: Pending, out: &mut Vec<String>, implicit: bool| {
            out.extend(std::mem::replace(&mut cur, p).finish(implicit));
        };
        if line == "Implicit keep:" {
            start(Pending::default(), &mut out, implicit);
            implicit = true;
            saw_implicit = true;
        } else if line == "  (none)" && implicit {
            out.push("no-implicit-keep".into());
        } else if let Some(f) = line.strip_prefix(" * store message in folder: ") {
            start(
                Pending {
                    folder: f.to_string(),
                    ..new("store")
                },
                &mut out,
                implicit,
            );
        } else if let Some(a) = line.strip_prefix(" * redirect message to: ") {
            start(
                Pending {
                    folder: a.to_string(),
                    ..new("redirect")
                },
                &mut out,
                implicit,
            );
        } else if line == " * discard" {
            start(new("discard"), &mut out, implicit);
        } else if let Some(r) = line.strip_prefix(" * reject message with reason: ") {
            let s = format!("reject {:?}", normal::text(r));
            start(Pending::default(), &mut out, implicit);
            out.push(s);
        } else if line == " * send vacation message:" {
            start(new("vacation"), &mut out, implicit);
        } else if line.trim() == "+ preserve implicit keep" {
            cur.copy = true;
        } else if line.trim() == "+ create mailbox if it does not exist" {
            cur.create = true;
        } else if let Some(f) = line.trim().strip_prefix("+ add IMAP flags: ") {
            cur.flags = f.split_whitespace().map(str::to_string).collect();
        } else if let Some(v) = line.trim().strip_prefix("=> seconds : ") {
            cur.seconds = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.trim().strip_prefix("=> subject : ") {
            cur.subject = Some(v.to_string());
        } else if let Some(v) = line.trim().strip_prefix("=> from    : ") {
            cur.from = Some(v.to_string());
        } else if let Some(v) = raw.trim_start().strip_prefix("=> handle  : ") {
            cur.handle = v.to_string();
            in_handle = true;
            continue;
        } else if line == "START MESSAGE" {
            in_message = true;
        } else if line.starts_with(" * ") {
            start(Pending::default(), &mut out, implicit);
            out.push(format!("unparsed: {line}"));
        }
    }
    out.extend(cur.finish(implicit));
    if !saw_implicit {
        out.push("no-output".into());
    }
    out
}
