//! The interpreter: runs a compiled [`Script`] against a message, its
//! envelope and the user's context, with a step limit and bounded include
//! nesting, and returns the [`Outcome`]. A run-time failure yields the
//! implicit keep only.

use std::collections::{HashMap, HashSet};

use crate::action::{Action, ActionSet, Outcome, VacationAction, split_flags, storable_flags};
use crate::compile::{compile, valid_address};
use crate::compile_test::parse_zone;
use crate::date::Instant;
use crate::error::RuntimeError;
use crate::matching::{match_count, match_value};
use crate::message::{Addr, MessageView};
use crate::script::{AddressPart, Cmd, FlagOp, Index, MatchType, Matcher, Script, Test, Zone};
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
        Context { user: user.to_string(), envelope, now, zone: 0, step_limit: 100_000, vacation_min: 86400, vacation_max: u64::MAX }
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
    let mut frame = Frame { vars: Vars::default(), global_names: HashSet::new(), variables: script.variables };
    match r.block(&script.commands, &mut frame) {
        Ok(_) => Outcome {
            implicit_keep: !r.set.keep_cancelled,
            implicit_flags: storable_flags(&r.flags),
            actions: r.set.actions,
            error: None,
        },
        Err(e) => Outcome { actions: Vec::new(), implicit_keep: true, implicit_flags: Vec::new(), error: Some(e) },
    }
}

struct Frame {
    vars: Vars,
    global_names: HashSet<String>,
    variables: bool,
}

impl Frame {
    fn expand(&self, s: &str) -> String {
        if self.variables { self.vars.expand(s) } else { s.to_string() }
    }
    fn expand_all(&self, l: &[String]) -> Vec<String> {
        l.iter().map(|s| self.expand(s)).collect()
    }
}

struct Run<'a> {
    msg: &'a MessageView<'a>,
    ctx: &'a Context,
    env: &'a dyn Environment,
    steps: u64,
    set: ActionSet,
    /// imap4flags' internal variable.
    flags: Vec<String>,
    globals: HashMap<String, String>,
    once: HashSet<(bool, String)>,
    stack: Vec<(bool, String)>,
}

impl Run<'_> {
    fn step(&mut self) -> Result<(), RuntimeError> {
        self.steps += 1;
        if self.steps > self.ctx.step_limit { Err(RuntimeError::StepLimit(self.ctx.step_limit)) } else { Ok(()) }
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
            Cmd::If { branches, otherwise } => {
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
            Cmd::FileInto { folder, copy, create, flags } => {
                let flags = self.store_flags(flags, f);
                self.set.add(Action::FileInto { folder: f.expand(folder), flags, copy: *copy, create: *create })?;
            }
            Cmd::Redirect { address, copy } => {
                let address = f.expand(address);
                if !valid_address(&address) {
                    return Err(RuntimeError::Conflict(format!("invalid redirect address \"{address}\"")));
                }
                self.set.add(Action::Redirect { address, copy: *copy })?;
            }
            Cmd::Reject { reason, extended } => {
                self.set.add(Action::Reject { reason: f.expand(reason), extended: *extended })?;
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
                let period = v.period.unwrap_or(7 * 86400).clamp(self.ctx.vacation_min, self.ctx.vacation_max.max(self.ctx.vacation_min));
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
            Cmd::Flag { op, variable, flags } => {
                let given = f.expand_all(flags);
                let current = match variable {
                    Some(name) => split_flags([f.vars.expand(&format!("${{{name}}}")).as_str()]),
                    None => self.flags.clone(),
                };
                let next = match op {
                    FlagOp::Set => split_flags(given.iter().map(String::as_str)),
                    FlagOp::Add => split_flags(current.iter().chain(given.iter()).map(String::as_str)),
                    FlagOp::Remove => {
                        let remove = split_flags(given.iter().map(String::as_str));
                        current.into_iter().filter(|c| !remove.iter().any(|r| r.eq_ignore_ascii_case(c))).collect()
                    }
                };
                match variable {
                    Some(name) => self.set_var(f, name, next.join(" ")),
                    None => self.flags = next,
                }
            }
            Cmd::Set { name, modifiers, value } => {
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
            Cmd::Include { name, global, once, optional, .. } => return self.include(name, *global, *once, *optional, f),
        }
        Ok(Flow::Next)
    }

    fn set_var(&mut self, f: &mut Frame, name: &str, v: String) {
        f.vars.set(name, v);
        let lname = name.to_ascii_lowercase();
        if f.global_names.contains(&lname) {
            if let Some(v) = f.vars.named.get(&lname) {
                self.globals.insert(lname, v.clone());
            }
        }
    }

    fn include(&mut self, name: &str, global: bool, once: bool, optional: bool, f: &mut Frame) -> Result<Flow, RuntimeError> {
        let key = (global, name.to_string());
        if once && self.once.contains(&key) {
            return Ok(Flow::Next);
        }
        if self.stack.contains(&key) {
            return Err(RuntimeError::Include(name.into(), "the script includes itself".into()));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(RuntimeError::IncludeDepth(MAX_INCLUDE_DEPTH));
        }
        let Some(src) = self.env.load_script(name, global) else {
            return if optional { Ok(Flow::Next) } else { Err(RuntimeError::Include(name.into(), "no such script".into())) };
        };
        let script = compile(&src).map_err(|e| RuntimeError::Include(name.into(), e.to_string()))?;
        self.once.insert(key.clone());
        self.stack.push(key);
        let mut child = Frame { vars: Vars::default(), global_names: HashSet::new(), variables: script.variables };
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

    fn test(&mut self, t: &Test, f: &mut Frame) -> Result<bool, RuntimeError> {
        self.step()?;
        Ok(match t {
            Test::True => true,
            Test::False => false,
            Test::Not(t) => !self.test(t, f)?,
            Test::AllOf(ts) => {
                for t in ts {
                    if !self.test(t, f)? {
                        return Ok(false);
                    }
                }
                true
            }
            Test::AnyOf(ts) => {
                for t in ts {
                    if self.test(t, f)? {
                        return Ok(true);
                    }
                }
                false
            }
            Test::Exists(names) => f.expand_all(names).iter().all(|n| self.msg.exists(n)),
            Test::Size { over, limit } => {
                if *over { self.msg.size() > *limit } else { self.msg.size() < *limit }
            }
            Test::Header { m, index, headers, keys } => {
                let mut values = Vec::new();
                for h in f.expand_all(headers) {
                    values.extend(pick(self.msg.header_values(&h), *index));
                }
                self.matches(*m, &values, keys, f)
            }
            Test::Address { m, part, index, headers, keys } => {
                let mut values = Vec::new();
                for h in f.expand_all(headers) {
                    for addrs in pick(self.msg.addresses(&h), *index) {
                        values.extend(addrs.iter().filter_map(|a| address_part(a, *part)));
                    }
                }
                self.matches(*m, &values, keys, f)
            }
            Test::Envelope { m, part, fields, keys } => {
                let mut values = Vec::new();
                for field in f.expand_all(fields) {
                    let a = match field.to_ascii_lowercase().as_str() {
                        "from" => &self.ctx.envelope.from,
                        "to" => &self.ctx.envelope.to,
                        _ => continue,
                    };
                    if a.is_empty() || a == "<>" {
                        values.push(String::new());
                    } else if let Some(v) = address_part(&Addr::split(a), *part) {
                        values.push(v);
                    }
                }
                self.matches(*m, &values, keys, f)
            }
            Test::Body { m, transform, keys } => {
                let values = match transform {
                    crate::script::BodyTransform::Raw => vec![self.msg.raw_body()],
                    crate::script::BodyTransform::Text => self.msg.text_parts(),
                    crate::script::BodyTransform::Content(types) => self.msg.body_parts(&f.expand_all(types)),
                };
                self.matches(*m, &values, keys, f)
            }
            Test::String { m, sources, keys } => {
                let mut values = f.expand_all(sources);
                if matches!(m.kind, MatchType::Count(_)) {
                    values.retain(|v| !v.is_empty());
                }
                self.matches(*m, &values, keys, f)
            }
            Test::HasFlag { m, variables, keys } => {
                let values = match variables {
                    Some(vs) => split_flags(vs.iter().map(|v| f.vars.expand(&format!("${{{v}}}"))).collect::<Vec<_>>().iter().map(String::as_str)),
                    None => self.flags.clone(),
                };
                self.matches(*m, &values, keys, f)
            }
            Test::Date { m, zone, index, header, part, keys } => {
                let part = f.expand(part);
                let dates = pick(self.msg.dates(&f.expand(header)), *index);
                let values: Vec<String> = dates
                    .into_iter()
                    .flatten()
                    .filter_map(|d| Instant::from_header(&d))
                    .filter_map(|i| self.zoned(i, zone).part(&part))
                    .collect();
                self.matches(*m, &values, keys, f)
            }
            Test::CurrentDate { m, zone, part, keys } => {
                let now = Instant { utc: self.ctx.now, offset: self.ctx.zone };
                let values: Vec<String> = self.zoned(now, zone).part(&f.expand(part)).into_iter().collect();
                self.matches(*m, &values, keys, f)
            }
            Test::MailboxExists(names) => f.expand_all(names).iter().all(|n| self.env.mailbox_exists(n)),
        })
    }

    fn zoned(&self, i: Instant, zone: &Zone) -> Instant {
        match zone {
            Zone::Original => i,
            Zone::Local => i.in_zone(self.ctx.zone),
            Zone::Fixed(z) => i.in_zone(parse_zone(z).unwrap_or(0)),
        }
    }

    /// Matches any of `values` against any of `keys`, setting match variables.
    fn matches(&mut self, m: Matcher, values: &[String], keys: &[String], f: &mut Frame) -> bool {
        let keys = f.expand_all(keys);
        if matches!(m.kind, MatchType::Count(_)) {
            return match_count(m, values.len(), &keys);
        }
        for v in values {
            for k in &keys {
                let mut caps = None;
                if match_value(m, v, k, &mut caps) {
                    if let (Some(c), true) = (caps, f.variables) {
                        f.vars.set_matched(c);
                    }
                    return true;
                }
            }
        }
        false
    }
}

/// Applies `:index` (1-based, `:last` counting from the end).
fn pick<T>(mut v: Vec<T>, index: Option<Index>) -> Vec<T> {
    let Some(ix) = index else { return v };
    let n = usize::try_from(ix.n).unwrap_or(usize::MAX);
    if n == 0 || n > v.len() {
        return Vec::new();
    }
    let at = if ix.last { v.len() - n } else { n - 1 };
    vec![v.swap_remove(at)]
}

fn address_part(a: &Addr, part: AddressPart) -> Option<String> {
    Some(match part {
        AddressPart::All => {
            if a.domain.is_empty() { a.local.clone() } else { format!("{}@{}", a.local, a.domain) }
        }
        AddressPart::LocalPart => a.local.clone(),
        AddressPart::Domain => a.domain.clone(),
        AddressPart::User => a.local.split_once('+').map(|(u, _)| u).unwrap_or(&a.local).to_string(),
        AddressPart::Detail => a.local.split_once('+')?.1.to_string(),
    })
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
