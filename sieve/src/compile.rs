//! Validation of the syntax tree into a [`Script`]: `require` checks, known
//! commands and their arguments, `if` chains. Argument splitting is in
//! [`crate::args`], string decoding in [`crate::encoded`], tests in
//! [`crate::compile_test`].

use std::collections::HashSet;

use crate::args::{TagArg, Want, positional, single, strings_of, valid_address};
use crate::error::{CompileError, Pos};
use crate::parser::{ArgKind, CommandNode, parse};
use crate::script::{Cmd, FlagOp, Modifier, Script, VacationCmd};
use crate::variables::is_identifier;

/// Extensions this implementation supports (names for `require`).
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "variables",
    "vacation",
    "vacation-seconds",
    "imap4flags",
    "body",
    "relational",
    "subaddress",
    "copy",
    "date",
    "index",
    "mailbox",
    "include",
    "regex",
    "comparator-i;octet",
    "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
];

/// Parses and validates a script.
pub fn compile(src: &str) -> Result<Script, CompileError> {
    let nodes = parse(src)?;
    let mut c = Compiler {
        exts: HashSet::new(),
        encoded: false,
    };
    let mut seen_other = false;
    let mut commands = Vec::new();
    for node in &nodes {
        if node.name == "require" {
            if seen_other {
                return Err(CompileError::new(
                    node.pos,
                    "'require' must come before other commands",
                ));
            }
            c.require(node)?;
            continue;
        }
        seen_other = true;
    }
    let mut i = 0;
    let body: Vec<&CommandNode> = nodes.iter().filter(|n| n.name != "require").collect();
    while i < body.len() {
        i = c.command_at(&body, i, &mut commands)?;
    }
    Ok(Script {
        commands,
        variables: c.exts.contains("variables"),
        imap4flags: c.exts.contains("imap4flags"),
    })
}

pub(crate) struct Compiler {
    pub exts: HashSet<String>,
    pub encoded: bool,
}

impl Compiler {
    fn require(&mut self, node: &CommandNode) -> Result<(), CompileError> {
        if node.block.is_some() || !node.tests.is_empty() || node.args.len() != 1 {
            return Err(CompileError::new(
                node.pos,
                "'require' takes one string list",
            ));
        }
        for name in strings_of(&node.args[0])? {
            if !EXTENSIONS.contains(&name.as_str()) {
                return Err(CompileError::new(
                    node.args[0].pos,
                    format!("unsupported extension \"{name}\""),
                ));
            }
            if name == "encoded-character" {
                self.encoded = true;
            }
            if name == "vacation-seconds" {
                self.exts.insert("vacation".to_string());
            }
            self.exts.insert(name);
        }
        Ok(())
    }

    pub fn need(&self, ext: &str, pos: Pos, what: &str) -> Result<(), CompileError> {
        if self.exts.contains(ext) {
            Ok(())
        } else {
            Err(CompileError::new(
                pos,
                format!("{what} requires 'require \"{ext}\"'"),
            ))
        }
    }

    /// Compiles `body[i]` (with following elsif/else) and returns the next index.
    fn command_at(
        &self,
        body: &[&CommandNode],
        i: usize,
        out: &mut Vec<Cmd>,
    ) -> Result<usize, CompileError> {
        let node = body[i];
        match node.name.as_str() {
            "if" => {
                let mut branches = vec![self.branch(node)?];
                let mut otherwise = None;
                let mut j = i + 1;
                while let Some(n) = body.get(j) {
                    match n.name.as_str() {
                        "elsif" => branches.push(self.branch(n)?),
                        "else" => {
                            if !n.args.is_empty() || !n.tests.is_empty() {
                                return Err(CompileError::new(n.pos, "'else' takes no arguments"));
                            }
                            let block = n
                                .block
                                .as_ref()
                                .ok_or_else(|| CompileError::new(n.pos, "'else' needs a block"))?;
                            otherwise = Some(self.block(block)?);
                            j += 1;
                            break;
                        }
                        _ => break,
                    }
                    j += 1;
                }
                out.push(Cmd::If {
                    branches,
                    otherwise,
                });
                Ok(j)
            }
            "elsif" | "else" => Err(CompileError::new(
                node.pos,
                format!("'{}' without 'if'", node.name),
            )),
            _ => {
                out.push(self.simple(node)?);
                Ok(i + 1)
            }
        }
    }

    fn branch(&self, node: &CommandNode) -> Result<(crate::script::Test, Vec<Cmd>), CompileError> {
        if !node.args.is_empty() || node.tests.len() != 1 {
            return Err(CompileError::new(
                node.pos,
                format!("'{}' takes exactly one test", node.name),
            ));
        }
        let block = node
            .block
            .as_ref()
            .ok_or_else(|| CompileError::new(node.pos, format!("'{}' needs a block", node.name)))?;
        Ok((self.test(&node.tests[0])?, self.block(block)?))
    }

    pub fn block(&self, nodes: &[CommandNode]) -> Result<Vec<Cmd>, CompileError> {
        let refs: Vec<&CommandNode> = nodes.iter().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < refs.len() {
            if refs[i].name == "require" {
                return Err(CompileError::new(
                    refs[i].pos,
                    "'require' must be at the top level",
                ));
            }
            i = self.command_at(&refs, i, &mut out)?;
        }
        Ok(out)
    }

    fn simple(&self, node: &CommandNode) -> Result<Cmd, CompileError> {
        let name = node.name.as_str();
        if node.block.is_some() {
            return Err(CompileError::new(
                node.pos,
                format!("'{name}' takes no block"),
            ));
        }
        if let Some(t) = node.tests.first() {
            return Err(CompileError::new(
                node.pos,
                format!(
                    "'{name}' takes no tests: is a ';' missing before '{}' at {}?",
                    t.name, t.pos
                ),
            ));
        }
        let pos = node.pos;
        let flags_tag =
            |t: &str| (t == "flags" && self.exts.contains("imap4flags")).then_some(TagArg::List);
        let cmd = match name {
            "stop" => {
                self.split(name, &node.args, |_| None)
                    .and_then(|s| positional(name, pos, &s, &[]).map(|_| ()))?;
                Cmd::Stop
            }
            "discard" => {
                self.split(name, &node.args, |_| None)
                    .and_then(|s| positional(name, pos, &s, &[]).map(|_| ()))?;
                Cmd::Discard
            }
            "keep" => {
                let s = self.split(name, &node.args, flags_tag)?;
                positional(name, pos, &s, &[])?;
                Cmd::Keep {
                    flags: s.get("flags").map(strings_of).transpose()?,
                }
            }
            "fileinto" => {
                self.need("fileinto", pos, "fileinto")?;
                let s = self.split(name, &node.args, |t| match t {
                    "copy" if self.exts.contains("copy") => Some(TagArg::None),
                    "create" if self.exts.contains("mailbox") => Some(TagArg::None),
                    _ => flags_tag(t),
                })?;
                let p = positional(name, pos, &s, &[Want::Str])?;
                Cmd::FileInto {
                    folder: single(&p[0])?,
                    copy: s.has("copy"),
                    create: s.has("create"),
                    flags: s.get("flags").map(strings_of).transpose()?,
                }
            }
            "redirect" => {
                let s = self.split(name, &node.args, |t| {
                    (t == "copy" && self.exts.contains("copy")).then_some(TagArg::None)
                })?;
                let p = positional(name, pos, &s, &[Want::Str])?;
                let address = single(&p[0])?;
                if !address.contains("${") && !valid_address(&address) {
                    return Err(CompileError::new(
                        p[0].pos,
                        format!("invalid redirect address \"{address}\""),
                    ));
                }
                Cmd::Redirect {
                    address,
                    copy: s.has("copy"),
                }
            }
            "reject" | "ereject" => {
                self.need(name, pos, name)?;
                let s = self.split(name, &node.args, |_| None)?;
                let p = positional(name, pos, &s, &[Want::Str])?;
                Cmd::Reject {
                    reason: single(&p[0])?,
                    extended: name == "ereject",
                }
            }
            "setflag" | "addflag" | "removeflag" => {
                self.need("imap4flags", pos, name)?;
                let s = self.split(name, &node.args, |_| None)?;
                let op = match name {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                match s.positional.len() {
                    1 => Cmd::Flag {
                        op,
                        variable: None,
                        flags: strings_of(&s.positional[0])?,
                    },
                    2 => {
                        let var = single(&s.positional[0])?;
                        self.check_var_name(&var, s.positional[0].pos)?;
                        Cmd::Flag {
                            op,
                            variable: Some(var),
                            flags: strings_of(&s.positional[1])?,
                        }
                    }
                    _ => {
                        return Err(CompileError::new(
                            pos,
                            format!("'{name}' takes [variable] flag-list"),
                        ));
                    }
                }
            }
            "set" => self.set(node)?,
            "vacation" => self.vacation(node)?,
            "include" => {
                self.need("include", pos, name)?;
                let s = self.split(name, &node.args, |t| {
                    matches!(t, "personal" | "global" | "once" | "optional").then_some(TagArg::None)
                })?;
                if s.has("personal") && s.has("global") {
                    return Err(CompileError::new(
                        pos,
                        "include takes :personal or :global, not both",
                    ));
                }
                let p = positional(name, pos, &s, &[Want::Str])?;
                let script = single(&p[0])?;
                if script.is_empty() || script.contains('/') || script.contains("${") {
                    return Err(CompileError::new(
                        p[0].pos,
                        format!("invalid script name \"{script}\""),
                    ));
                }
                Cmd::Include {
                    name: script,
                    global: s.has("global"),
                    once: s.has("once"),
                    optional: s.has("optional"),
                    pos,
                }
            }
            "return" => {
                self.need("include", pos, name)?;
                self.split(name, &node.args, |_| None)
                    .and_then(|s| positional(name, pos, &s, &[]).map(|_| ()))?;
                Cmd::Return
            }
            "global" => {
                self.need("include", pos, name)?;
                self.need("variables", pos, name)?;
                let s = self.split(name, &node.args, |_| None)?;
                let p = positional(name, pos, &s, &[Want::List])?;
                let names = strings_of(&p[0])?;
                for n in &names {
                    self.check_var_name(n, p[0].pos)?;
                }
                Cmd::Global(names.into_iter().map(|n| n.to_ascii_lowercase()).collect())
            }
            _ => return Err(CompileError::new(pos, format!("unknown command '{name}'"))),
        };
        Ok(cmd)
    }

    fn set(&self, node: &CommandNode) -> Result<Cmd, CompileError> {
        let pos = node.pos;
        self.need("variables", pos, "set")?;
        let s = self.split("set", &node.args, |t| {
            matches!(
                t,
                "lower" | "upper" | "lowerfirst" | "upperfirst" | "quotewildcard" | "length"
            )
            .then_some(TagArg::None)
            .or((t == "quoteregex" && self.exts.contains("regex")).then_some(TagArg::None))
        })?;
        let mut modifiers = Vec::new();
        for (t, tpos, _) in &s.tags {
            let m = match t.as_str() {
                "lower" => Modifier::Lower,
                "upper" => Modifier::Upper,
                "lowerfirst" => Modifier::LowerFirst,
                "upperfirst" => Modifier::UpperFirst,
                "quotewildcard" => Modifier::QuoteWildcard,
                "quoteregex" => Modifier::QuoteRegex,
                _ => Modifier::Length,
            };
            if modifiers
                .iter()
                .any(|o: &Modifier| o.precedence() == m.precedence())
            {
                return Err(CompileError::new(
                    *tpos,
                    format!("modifier :{t} conflicts with another of the same precedence"),
                ));
            }
            modifiers.push(m);
        }
        modifiers.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
        let p = positional("set", pos, &s, &[Want::Str, Want::Str])?;
        let name = single(&p[0])?;
        self.check_var_name(&name, p[0].pos)?;
        Ok(Cmd::Set {
            name: name.to_ascii_lowercase(),
            modifiers,
            value: single(&p[1])?,
        })
    }

    fn vacation(&self, node: &CommandNode) -> Result<Cmd, CompileError> {
        let pos = node.pos;
        self.need("vacation", pos, "vacation")?;
        let seconds = self.exts.contains("vacation-seconds");
        let s = self.split("vacation", &node.args, |t| match t {
            "days" => Some(TagArg::Number),
            "seconds" if seconds => Some(TagArg::Number),
            "subject" | "from" | "handle" => Some(TagArg::Str),
            "addresses" => Some(TagArg::List),
            "mime" => Some(TagArg::None),
            _ => None,
        })?;
        if s.has("days") && s.has("seconds") {
            return Err(CompileError::new(
                pos,
                "vacation takes :days or :seconds, not both",
            ));
        }
        let num = |t: &str| match s.get(t).map(|a| &a.kind) {
            Some(ArgKind::Number(n)) => Some(*n),
            _ => None,
        };
        let period = num("days")
            .map(|d| d.saturating_mul(86400))
            .or(num("seconds"));
        let p = positional("vacation", pos, &s, &[Want::Str])?;
        let from = s.get("from").map(single).transpose()?;
        if let (Some(f), Some(fpos)) = (&from, s.tag_pos("from"))
            && !f.contains("${")
            && !valid_address(f)
        {
            return Err(CompileError::new(
                fpos,
                format!("invalid :from address \"{f}\""),
            ));
        }
        Ok(Cmd::Vacation(Box::new(VacationCmd {
            period,
            subject: s.get("subject").map(single).transpose()?,
            from,
            addresses: s
                .get("addresses")
                .map(strings_of)
                .transpose()?
                .unwrap_or_default(),
            mime: s.has("mime"),
            handle: s.get("handle").map(single).transpose()?,
            reason: single(&p[0])?,
        })))
    }

    fn check_var_name(&self, name: &str, pos: Pos) -> Result<(), CompileError> {
        if name.contains('.') {
            return Err(CompileError::new(
                pos,
                format!("variable \"{name}\" is in an unknown namespace"),
            ));
        }
        if is_identifier(name) {
            Ok(())
        } else {
            Err(CompileError::new(
                pos,
                format!("invalid variable name \"{name}\""),
            ))
        }
    }
}
