//! The interpreter: runs a compiled [`Script`]'s commands against a
//! message, its envelope and the user's context, with a step limit and
//! bounded include nesting, and returns the [`Outcome`]. A run-time failure
//! yields the implicit keep only. Tests are evaluated in
//! [`crate::evaluate`].

use std::collections::{HashMap, HashSet};

use crate::action::{Action, ActionSet, Outcome, VacationAction, split_flags, storable_flags};
use crate::args::valid_address;
use crate::compile::compile;
use crate::error::RuntimeError;
use crate::message::MessageView;
use crate::script::{Cmd, FlagOp, Script};
use crate::variables::{Vars, apply_modifiers};

/// Deepest nesting of `include`.
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// The SMTP envelope of the delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path ("" for the null sender).
    pub from: String,
    /// The recipient being delivered to.
    pub to: String,
}

/// Everything about the run that is not the message.
#[derive(Debug, Clone)]
pub struct Context {
    /// The script owner's address.
    pub user: String,
    pub envelope: Envelope,
    /// Now, as seconds since the Unix epoch (for `currentdate`).
    pub now: i64,
    /// The user's zone in minutes east of UTC (the "local" zone of RFC 5260).
    pub zone: i32,
    /// Most commands plus tests one run may execute.
    pub step_limit: u64,
    /// Bounds for the vacation period, in seconds (Pigeonhole's defaults:
    /// at least a day, no maximum).
    pub vacation_min: u64,
    pub vacation_max: u64,
}

impl Context {
    /// A context with Pigeonhole's defaults and the current time.
    pub fn new(user: &str, envelope: Envelope) -> Context {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Context {
            user: user.to_string(),
            envelope,
            now,
            zone: 0,
            step_limit: 100_000,
            vacation_min: 86400,
            vacation_max: u64::MAX,
        }
    }
}

/// What the interpreter asks of its host.
pub trait Environment {
    /// Whether a mailbox exists (RFC 5490 `mailboxexists`).
    fn mailbox_exists(&self, _name: &str) -> bool {
        false
    }
    /// The source of a personal or global script for `include` (RFC 6609).
    fn load_script(&self, _name: &str, _global: bool) -> Option<String> {
        None
    }
}

/// An environment with no mailboxes and no scripts to include.
pub struct NoEnvironment;
impl Environment for NoEnvironment {}

enum Flow {
    Next,
    Stop,
    Return,
}

/// Runs `script` and returns its outcome.
pub fn run(script: &Script, raw_message: &[u8], ctx: &Context, env: &dyn Environment) -> Outcome {
    let msg = MessageView::new(raw_message);
    let mut r = Run {
        msg: &msg,
        ctx,
        env,
        steps: 0,
        set: ActionSet::default(),
        flags: Vec::new(),
        globals: HashMap::new(),
        once: HashSet::new(),
        stack: Vec::new(),
    };
    let mut frame = Frame {
        vars: Vars::default(),
        global_names: HashSet::new(),
        variables: script.variables,
    };
    match r.block(&script.commands, &mut frame) {
        Ok(_) => Outcome {
            implicit_keep: !r.set.keep_cancelled,
            implicit_flags: storable_flags(&r.flags),
            actions: r.set.actions,
            error: None,
        },
        Err(e) => Outcome {
            actions: Vec::new(),
            implicit_keep: true,
            implicit_flags: Vec::new(),
            error: Some(e),
        },
    }
}

pub(crate) struct Frame {
    pub(crate) vars: Vars,
    global_names: HashSet<String>,
    pub(crate) variables: bool,
}

impl Frame {
    pub(crate) fn expand(&self, s: &str) -> String {
        if self.variables {
            self.vars.expand(s)
        } else {
            s.to_string()
        }
    }
    pub(crate) fn expand_all(&self, l: &[String]) -> Vec<String> {
        l.iter().map(|s| self.expand(s)).collect()
    }
}

pub(crate) struct Run<'a> {
    pub(crate) msg: &'a MessageView<'a>,
    pub(crate) ctx: &'a Context,
    pub(crate) env: &'a dyn Environment,
    steps: u64,
    set: ActionSet,
    /// imap4flags' internal variable.
    pub(crate) flags: Vec<String>,
    globals: HashMap<String, String>,
    once: HashSet<(bool, String)>,
    stack: Vec<(bool, String)>,
}

impl Run<'_> {
    pub(crate) fn step(&mut self) -> Result<(), RuntimeError> {
        self.steps += 1;
        if self.steps > self.ctx.step_limit {
            Err(RuntimeError::StepLimit(self.ctx.step_limit))
        } else {
            Ok(())
        }
    }

    fn block(&mut self, cmds: &[Cmd], f: &mut Frame) -> Result<Flow, RuntimeError> {
        for c in cmds {
            match self.command(c, f)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn store_flags(&self, explicit: &Option<Vec<String>>, f: &Frame) -> Vec<String> {
        match explicit {
            Some(l) => storable_flags(&split_flags(f.expand_all(l).iter().map(String::as_str))),
            None => storable_flags(&self.flags),
        }
    }

    fn command(&mut self, c: &Cmd, f: &mut Frame) -> Result<Flow, RuntimeError> {
        self.step()?;
        match c {
            Cmd::If {
                branches,
                otherwise,
            } => {
                for (t, body) in branches {
                    if self.test(t, f)? {
                        return self.block(body, f);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body, f);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Return => return Ok(Flow::Return),
            Cmd::Keep { flags } => {
                let flags = self.store_flags(flags, f);
                self.set.add(Action::Keep { flags })?;
            }
            Cmd::Discard => self.set.add(Action::Discard)?,
            Cmd::FileInto {
                folder,
                copy,
                create,
                flags,
            } => {
                let flags = self.store_flags(flags, f);
                self.set.add(Action::FileInto {
                    folder: f.expand(folder),
                    flags,
                    copy: *copy,
                    create: *create,
                })?;
            }
            Cmd::Redirect { address, copy } => {
                let address = f.expand(address);
                if !valid_address(&address) {
                    return Err(RuntimeError::Conflict(format!(
                        "invalid redirect address \"{address}\""
                    )));
                }
                self.set.add(Action::Redirect {
                    address,
                    copy: *copy,
                })?;
            }
            Cmd::Reject { reason, extended } => {
                self.set.add(Action::Reject {
                    reason: f.expand(reason),
                    extended: *extended,
                })?;
            }
            Cmd::Vacation(v) => {
                let subject = v.subject.as_ref().map(|s| f.expand(s).trim().to_string());
                let from = v.from.as_ref().map(|s| f.expand(s));
                // The reason is message text: bare LFs become CRLF (as in Pigeonhole).
                let reason = to_crlf(&f.expand(&v.reason));
                let handle = match &v.handle {
                    Some(h) => f.expand(h),
                    None => format!(
                        "{reason}{}{}{}",
                        subject.as_deref().unwrap_or("<default-subject>"),
                        from.as_deref().unwrap_or("<default-from>"),
                        if v.mime { "<MIME>" } else { "<NO-MIME>" }
                    ),
                };
                let period = v.period.unwrap_or(7 * 86400).clamp(
                    self.ctx.vacation_min,
                    self.ctx.vacation_max.max(self.ctx.vacation_min),
                );
                self.set.add(Action::Vacation(VacationAction {
                    period,
                    subject,
                    from,
                    addresses: f.expand_all(&v.addresses),
                    mime: v.mime,
                    handle,
                    reason,
                }))?;
            }
            Cmd::Flag {
                op,
                variable,
                flags,
            } => {
                let given = f.expand_all(flags);
                let current = match variable {
                    Some(name) => split_flags([f.vars.expand(&format!("${{{name}}}")).as_str()]),
                    None => self.flags.clone(),
                };
                let next = match op {
                    FlagOp::Set => split_flags(given.iter().map(String::as_str)),
                    FlagOp::Add => {
                        split_flags(current.iter().chain(given.iter()).map(String::as_str))
                    }
                    FlagOp::Remove => {
                        let remove = split_flags(given.iter().map(String::as_str));
                        current
                            .into_iter()
                            .filter(|c| !remove.iter().any(|r| r.eq_ignore_ascii_case(c)))
                            .collect()
                    }
                };
                match variable {
                    Some(name) => self.set_var(f, name, next.join(" ")),
                    None => self.flags = next,
                }
            }
            Cmd::Set {
                name,
                modifiers,
                value,
            } => {
                let v = apply_modifiers(modifiers, f.expand(value));
                self.set_var(f, name, v);
            }
            Cmd::Global(names) => {
                for n in names {
                    f.global_names.insert(n.clone());
                    let v = self.globals.get(n).cloned().unwrap_or_default();
                    f.vars.set(n, v);
                }
            }
            Cmd::Include {
                name,
                global,
                once,
                optional,
                ..
            } => return self.include(name, *global, *once, *optional, f),
        }
        Ok(Flow::Next)
    }

    fn set_var(&mut self, f: &mut Frame, name: &str, v: String) {
        f.vars.set(name, v);
        let lname = name.to_ascii_lowercase();
        if f.global_names.contains(&lname)
            && let Some(v) = f.vars.named.get(&lname)
        {
            self.globals.insert(lname, v.clone());
        }
    }

    fn include(
        &mut self,
        name: &str,
        global: bool,
        once: bool,
        optional: bool,
        f: &mut Frame,
    ) -> Result<Flow, RuntimeError> {
        let key = (global, name.to_string());
        if once && self.once.contains(&key) {
            return Ok(Flow::Next);
        }
        if self.stack.contains(&key) {
            return Err(RuntimeError::Include(
                name.into(),
                "the script includes itself".into(),
            ));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(RuntimeError::IncludeDepth(MAX_INCLUDE_DEPTH));
        }
        let Some(src) = self.env.load_script(name, global) else {
            return if optional {
                Ok(Flow::Next)
            } else {
                Err(RuntimeError::Include(name.into(), "no such script".into()))
            };
        };
        let script =
            compile(&src).map_err(|e| RuntimeError::Include(name.into(), e.to_string()))?;
        self.once.insert(key.clone());
        self.stack.push(key);
        let mut child = Frame {
            vars: Vars::default(),
            global_names: HashSet::new(),
            variables: script.variables,
        };
        let flow = self.block(&script.commands, &mut child);
        self.stack.pop();
        for n in f.global_names.clone() {
            let v = self.globals.get(&n).cloned().unwrap_or_default();
            f.vars.set(&n, v);
        }
        Ok(match flow? {
            Flow::Stop => Flow::Stop,
            _ => Flow::Next,
        })
    }
}

/// Turns bare LFs into CRLF.
fn to_crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = '\0';
    for c in s.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}
