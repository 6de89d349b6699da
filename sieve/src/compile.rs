//! Validation of the syntax tree into a [`Script`]: `require` checks, known
//! commands and their arguments (tags, positional types), `if` chains, and
//! the decoding of `${hex:..}`/`${unicode:..}` (RFC 5228 section 2.4.2.4).
//! Tests are validated in [`crate::compile_test`].

use std::collections::HashSet;

use crate::error::{CompileError, Pos};
use crate::parser::{Arg, ArgKind, CommandNode, parse};
use crate::script::{Cmd, FlagOp, Modifier, Script, VacationCmd};

/// Extensions this implementation supports (names for `require`).
pub const EXTENSIONS: &[&str] = &[
    "fileinto", "reject", "ereject", "envelope", "encoded-character", "variables", "vacation",
    "vacation-seconds", "imap4flags", "body", "relational", "subaddress", "copy", "date", "index",
    "mailbox", "include", "regex", "comparator-i;octet", "comparator-i;ascii-casemap",
    "comparator-i;ascii-numeric",
];

/// Parses and validates a script.
pub fn compile(src: &str) -> Result<Script, CompileError> {
    let nodes = parse(src)?;
    let mut c = Compiler { exts: HashSet::new(), encoded: false };
    let mut seen_other = false;
    let mut commands = Vec::new();
    for node in &nodes {
        if node.name == "require" {
            if seen_other {
                return Err(CompileError::new(node.pos, "'require' must come before other commands"));
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

/// What a tag takes after it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagArg {
    None,
    Str,
    Number,
    List,
}

/// A command's or test's arguments split into tags and positionals.
pub(crate) struct Split {
    pub tags: Vec<(String, Pos, Option<Arg>)>,
    pub positional: Vec<Arg>,
}

impl Split {
    pub fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|(t, _, _)| t == tag)
    }

    pub fn get(&self, tag: &str) -> Option<&Arg> {
        self.tags.iter().find(|(t, _, _)| t == tag).and_then(|(_, _, a)| a.as_ref())
    }

    pub fn tag_pos(&self, tag: &str) -> Option<Pos> {
        self.tags.iter().find(|(t, _, _)| t == tag).map(|(_, p, _)| *p)
    }
}

pub(crate) struct Compiler {
    pub exts: HashSet<String>,
    pub encoded: bool,
}

impl Compiler {
    fn require(&mut self, node: &CommandNode) -> Result<(), CompileError> {
        if node.block.is_some() || !node.tests.is_empty() || node.args.len() != 1 {
            return Err(CompileError::new(node.pos, "'require' takes one string list"));
        }
        for name in strings_of(&node.args[0])? {
            if !EXTENSIONS.contains(&name.as_str()) {
                return Err(CompileError::new(node.args[0].pos, format!("unsupported extension \"{name}\"")));
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
            Err(CompileError::new(pos, format!("{what} requires 'require \"{ext}\"'")))
        }
    }

    /// Splits arguments by `arity`, which returns `None` for unknown tags.
    pub fn split(
        &self,
        what: &str,
        args: &[Arg],
        arity: impl Fn(&str) -> Option<TagArg>,
    ) -> Result<Split, CompileError> {
        let mut out = Split { tags: Vec::new(), positional: Vec::new() };
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            match &a.kind {
                ArgKind::Tag(t) => {
                    if !out.positional.is_empty() {
                        return Err(CompileError::new(a.pos, format!("tag :{t} after positional arguments of '{what}'")));
                    }
                    let Some(kind) = arity(t) else {
                        return Err(CompileError::new(a.pos, format!("unknown tag :{t} for '{what}'")));
                    };
                    if out.has(t) {
                        return Err(CompileError::new(a.pos, format!("tag :{t} given twice")));
                    }
                    let val = match kind {
                        TagArg::None => None,
                        _ => {
                            let v = it.next().cloned().ok_or_else(|| {
                                CompileError::new(a.pos, format!("tag :{t} needs an argument"))
                            })?;
                            let ok = matches!(
                                (kind, &v.kind),
                                (TagArg::Str, ArgKind::Str(_))
                                    | (TagArg::Str, ArgKind::List(_))
                                    | (TagArg::Number, ArgKind::Number(_))
                                    | (TagArg::List, ArgKind::Str(_) | ArgKind::List(_))
                            );
                            if !ok {
                                return Err(CompileError::new(v.pos, format!("wrong argument type for tag :{t}")));
                            }
                            if kind == TagArg::Str {
                                if let ArgKind::List(l) = &v.kind {
                                    if l.len() != 1 {
                                        return Err(CompileError::new(v.pos, format!("tag :{t} takes a single string")));
                                    }
                                }
                            }
                            Some(self.decode_arg(v)?)
                        }
                    };
                    out.tags.push((t.clone(), a.pos, val));
                }
                _ => out.positional.push(self.decode_arg(a.clone())?),
            }
        }
        Ok(out)
    }

    fn decode_arg(&self, mut a: Arg) -> Result<Arg, CompileError> {
        let pos = a.pos;
        let strings: Vec<&mut String> = match &mut a.kind {
            ArgKind::Str(s) => vec![s],
            ArgKind::List(l) => l.iter_mut().collect(),
            _ => Vec::new(),
        };
        for s in strings {
            if self.encoded {
                *s = decode_encoded(s).map_err(|m| CompileError::new(pos, m))?;
            }
            if self.exts.contains("variables") {
                check_namespaces(s).map_err(|m| CompileError::new(pos, m))?;
            }
        }
        Ok(a)
    }

    /// Compiles `body[i]` (with following elsif/else) and returns the next index.
    fn command_at(&self, body: &[&CommandNode], i: usize, out: &mut Vec<Cmd>) -> Result<usize, CompileError> {
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
                            let block = n.block.as_ref().ok_or_else(|| CompileError::new(n.pos, "'else' needs a block"))?;
                            otherwise = Some(self.block(block)?);
                            j += 1;
                            break;
                        }
                        _ => break,
                    }
                    j += 1;
                }
                out.push(Cmd::If { branches, otherwise });
                Ok(j)
            }
            "elsif" | "else" => Err(CompileError::new(node.pos, format!("'{}' without 'if'", node.name))),
            _ => {
                out.push(self.simple(node)?);
                Ok(i + 1)
            }
        }
    }

    fn branch(&self, node: &CommandNode) -> Result<(crate::script::Test, Vec<Cmd>), CompileError> {
        if !node.args.is_empty() || node.tests.len() != 1 {
            return Err(CompileError::new(node.pos, format!("'{}' takes exactly one test", node.name)));
        }
        let block = node.block.as_ref().ok_or_else(|| CompileError::new(node.pos, format!("'{}' needs a block", node.name)))?;
        Ok((self.test(&node.tests[0])?, self.block(block)?))
    }

    pub fn block(&self, nodes: &[CommandNode]) -> Result<Vec<Cmd>, CompileError> {
        let refs: Vec<&CommandNode> = nodes.iter().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < refs.len() {
            if refs[i].name == "require" {
                return Err(CompileError::new(refs[i].pos, "'require' must be at the top level"));
            }
            i = self.command_at(&refs, i, &mut out)?;
        }
        Ok(out)
    }

    fn simple(&self, node: &CommandNode) -> Result<Cmd, CompileError> {
        let name = node.name.as_str();
        if node.block.is_some() {
            return Err(CompileError::new(node.pos, format!("'{name}' takes no block")));
        }
        if let Some(t) = node.tests.first() {
            return Err(CompileError::new(node.pos, format!("'{name}' takes no tests: is a ';' missing before '{}' at {}?", t.name, t.pos)));
        }
        let pos = node.pos;
        let flags_tag = |t: &str| (t == "flags" && self.exts.contains("imap4flags")).then_some(TagArg::List);
        let cmd = match name {
            "stop" => {
                self.split(name, &node.args, |_| None).and_then(|s| positional(name, pos, &s, &[]).map(|_| ()))?;
                Cmd::Stop
            }
            "discard" => {
                self.split(name, &node.args, |_| None).and_then(|s| positional(name, pos, &s, &[]).map(|_| ()))?;
                Cmd::Discard
            }
            "keep" => {
                let s = self.split(name, &node.args, flags_tag)?;
                positional(name, pos, &s, &[])?;
                Cmd::Keep { flags: s.get("flags").map(strings_of).transpose()? }
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
                let s = self.split(name, &node.args, |t| (t == "copy" && self.exts.contains("copy")).then_some(TagArg::None))?;
                let p = positional(name, pos, &s, &[Want::Str])?;
                let address = single(&p[0])?;
                if !address.contains("${") && !valid_address(&address) {
                    return Err(CompileError::new(p[0].pos, format!("invalid redirect address \"{address}\"")));
                }
                Cmd::Redirect { address, copy: s.has("copy") }
            }
            "reject" | "ereject" => {
                self.need(name, pos, name)?;
                let s = self.split(name, &node.args, |_| None)?;
                let p = positional(name, pos, &s, &[Want::Str])?;
                Cmd::Reject { reason: single(&p[0])?, extended: name == "ereject" }
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
                    1 => Cmd::Flag { op, variable: None, flags: strings_of(&s.positional[0])? },
                    2 => {
                        let var = single(&s.positional[0])?;
                        self.check_var_name(&var, s.positional[0].pos)?;
                        Cmd::Flag { op, variable: Some(var), flags: strings_of(&s.positional[1])? }
                    }
                    _ => return Err(CompileError::new(pos, format!("'{name}' takes [variable] flag-list"))),
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
                    return Err(CompileError::new(pos, "include takes :personal or :global, not both"));
                }
                let p = positional(name, pos, &s, &[Want::Str])?;
                let script = single(&p[0])?;
                if script.is_empty() || script.contains('/') || script.contains("${") {
                    return Err(CompileError::new(p[0].pos, format!("invalid script name \"{script}\"")));
                }
                Cmd::Include { name: script, global: s.has("global"), once: s.has("once"), optional: s.has("optional"), pos }
            }
            "return" => {
                self.need("include", pos, name)?;
                self.split(name, &node.args, |_| None).and_then(|s| positional(name, pos, &s, &[]).map(|_| ()))?;
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
            matches!(t, "lower" | "upper" | "lowerfirst" | "upperfirst" | "quotewildcard" | "length")
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
            if modifiers.iter().any(|o: &Modifier| o.precedence() == m.precedence()) {
                return Err(CompileError::new(*tpos, format!("modifier :{t} conflicts with another of the same precedence")));
            }
            modifiers.push(m);
        }
        modifiers.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
        let p = positional("set", pos, &s, &[Want::Str, Want::Str])?;
        let name = single(&p[0])?;
        self.check_var_name(&name, p[0].pos)?;
        Ok(Cmd::Set { name: name.to_ascii_lowercase(), modifiers, value: single(&p[1])? })
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
            return Err(CompileError::new(pos, "vacation takes :days or :seconds, not both"));
        }
        let num = |t: &str| match s.get(t).map(|a| &a.kind) {
            Some(ArgKind::Number(n)) => Some(*n),
            _ => None,
        };
        let period = num("days").map(|d| d.saturating_mul(86400)).or(num("seconds"));
        let p = positional("vacation", pos, &s, &[Want::Str])?;
        let from = s.get("from").map(single).transpose()?;
        if let (Some(f), Some(fpos)) = (&from, s.tag_pos("from")) {
            if !f.contains("${") && !valid_address(f) {
                return Err(CompileError::new(fpos, format!("invalid :from address \"{f}\"")));
            }
        }
        Ok(Cmd::Vacation(Box::new(VacationCmd {
            period,
            subject: s.get("subject").map(single).transpose()?,
            from,
            addresses: s.get("addresses").map(strings_of).transpose()?.unwrap_or_default(),
            mime: s.has("mime"),
            handle: s.get("handle").map(single).transpose()?,
            reason: single(&p[0])?,
        })))
    }

    fn check_var_name(&self, name: &str, pos: Pos) -> Result<(), CompileError> {
        if name.contains('.') {
            return Err(CompileError::new(pos, format!("variable \"{name}\" is in an unknown namespace")));
        }
        let ok = !name.is_empty()
            && name.split('.').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !part.as_bytes()[0].is_ascii_digit()
            });
        if ok { Ok(()) } else { Err(CompileError::new(pos, format!("invalid variable name \"{name}\""))) }
    }
}

/// Positional argument shapes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Str,
    List,
    Number,
}

/// Checks the positional arguments against `want`.
pub(crate) fn positional<'a>(what: &str, pos: Pos, s: &'a Split, want: &[Want]) -> Result<&'a [Arg], CompileError> {
    if s.positional.len() != want.len() {
        let at = s.positional.get(want.len()).map(|a| a.pos).unwrap_or(pos);
        return Err(CompileError::new(
            at,
            format!("'{what}' takes {} positional argument(s), {} given", want.len(), s.positional.len()),
        ));
    }
    for (a, w) in s.positional.iter().zip(want) {
        let ok = match (w, &a.kind) {
            (Want::Str, ArgKind::Str(_)) => true,
            (Want::Str, ArgKind::List(l)) => l.len() == 1,
            (Want::List, ArgKind::Str(_) | ArgKind::List(_)) => true,
            (Want::Number, ArgKind::Number(_)) => true,
            _ => false,
        };
        if !ok {
            let expected = match w {
                Want::Str => "a string",
                Want::List => "a string list",
                Want::Number => "a number",
            };
            return Err(CompileError::new(a.pos, format!("'{what}' expects {expected} here")));
        }
    }
    Ok(&s.positional)
}

/// The strings of a string or string-list argument.
pub(crate) fn strings_of(a: &Arg) -> Result<Vec<String>, CompileError> {
    match &a.kind {
        ArgKind::Str(s) => Ok(vec![s.clone()]),
        ArgKind::List(l) => Ok(l.clone()),
        _ => Err(CompileError::new(a.pos, "expected a string or string list")),
    }
}

/// The string of a single-string argument.
pub(crate) fn single(a: &Arg) -> Result<String, CompileError> {
    match &a.kind {
        ArgKind::Str(s) => Ok(s.clone()),
        ArgKind::List(l) if l.len() == 1 => Ok(l[0].clone()),
        _ => Err(CompileError::new(a.pos, "expected a single string")),
    }
}

/// A plausible RFC 5321 mailbox (local@domain).
pub(crate) fn valid_address(a: &str) -> bool {
    let a = a.trim();
    let a = a.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(a);
    match a.rsplit_once('@') {
        Some((l, d)) => !l.is_empty() && !d.is_empty() && !a.contains(char::is_whitespace) && !d.contains(['<', '>', ',']),
        None => false,
    }
}

/// Rejects `${a.b}` references: no variable namespaces are supported here
/// (RFC 5229 section 3), and Pigeonhole refuses unknown ones too.
fn check_namespaces(s: &str) -> Result<(), String> {
    let ident = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !p.as_bytes()[0].is_ascii_digit();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        if let Some(name) = after.find('}').map(|end| &after[..end]) {
            if name.contains('.') && name.split('.').all(ident) {
                let ns = name.split('.').next().unwrap_or_default();
                return Err(format!("variable in unknown namespace '{ns}'"));
            }
        }
        rest = after;
    }
    Ok(())
}

/// Replaces `${hex:..}` and `${unicode:..}` sequences; malformed ones stay,
/// but a code point outside Unicode is an error (RFC 5228 section 2.4.2.4).
pub fn decode_encoded(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match decode_one(after)? {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &after[used..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn decode_one(after: &str) -> Result<Option<(String, usize)>, String> {
    let Some(colon) = after.find(':') else { return Ok(None) };
    let kind = after[..colon].to_ascii_lowercase();
    if kind != "hex" && kind != "unicode" {
        return Ok(None);
    }
    let Some(close) = after.find('}') else { return Ok(None) };
    if close < colon {
        return Ok(None);
    }
    let inner = &after[colon + 1..close];
    if inner.trim().is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    let mut text = String::new();
    for word in inner.split([' ', '\t', '\r', '\n']).filter(|w| !w.is_empty()) {
        if !word.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        if kind == "hex" {
            // hex-pair = 1*2HEXDIG
            match u8::from_str_radix(word, 16) {
                Ok(b) if word.len() <= 2 => bytes.push(b),
                _ => return Ok(None),
            }
        } else {
            let trimmed = word.trim_start_matches('0');
            let cp = if trimmed.len() > 8 { u32::MAX } else { u32::from_str_radix(if trimmed.is_empty() { "0" } else { trimmed }, 16).unwrap_or(u32::MAX) };
            match char::from_u32(cp) {
                Some(c) => text.push(c),
                None => return Err(format!("invalid unicode character U+{trimmed} in encoded character")),
            }
        }
    }
    if kind == "hex" {
        match String::from_utf8(bytes) {
            Ok(t) => text = t,
            Err(_) => return Ok(None),
        }
    }
    Ok(Some((text, close + 1)))
}
