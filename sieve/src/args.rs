//! Argument handling shared by command and test validation: splitting
//! tagged from positional arguments (RFC 5228 section 2.6), checking their
//! shapes, and reading strings out of them.

use crate::compile::Compiler;
use crate::encoded::{check_namespaces, decode_encoded};
use crate::error::{CompileError, Pos};
use crate::parser::{Arg, ArgKind};

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
        self.tags
            .iter()
            .find(|(t, _, _)| t == tag)
            .and_then(|(_, _, a)| a.as_ref())
    }

    pub fn tag_pos(&self, tag: &str) -> Option<Pos> {
        self.tags
            .iter()
            .find(|(t, _, _)| t == tag)
            .map(|(_, p, _)| *p)
    }
}

impl Compiler {
    /// Splits arguments by `arity`, which returns `None` for unknown tags.
    pub fn split(
        &self,
        what: &str,
        args: &[Arg],
        arity: impl Fn(&str) -> Option<TagArg>,
    ) -> Result<Split, CompileError> {
        let mut out = Split {
            tags: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            match &a.kind {
                ArgKind::Tag(t) => {
                    if !out.positional.is_empty() {
                        return Err(CompileError::new(
                            a.pos,
                            format!("tag :{t} after positional arguments of '{what}'"),
                        ));
                    }
                    let Some(kind) = arity(t) else {
                        return Err(CompileError::new(
                            a.pos,
                            format!("unknown tag :{t} for '{what}'"),
                        ));
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
                                return Err(CompileError::new(
                                    v.pos,
                                    format!("wrong argument type for tag :{t}"),
                                ));
                            }
                            if kind == TagArg::Str
                                && let ArgKind::List(l) = &v.kind
                                && l.len() != 1
                            {
                                return Err(CompileError::new(
                                    v.pos,
                                    format!("tag :{t} takes a single string"),
                                ));
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
}

/// Positional argument shapes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Str,
    List,
    Number,
}

/// Checks the positional arguments against `want`.
pub(crate) fn positional<'a>(
    what: &str,
    pos: Pos,
    s: &'a Split,
    want: &[Want],
) -> Result<&'a [Arg], CompileError> {
    if s.positional.len() != want.len() {
        let at = s.positional.get(want.len()).map(|a| a.pos).unwrap_or(pos);
        return Err(CompileError::new(
            at,
            format!(
                "'{what}' takes {} positional argument(s), {} given",
                want.len(),
                s.positional.len()
            ),
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
            return Err(CompileError::new(
                a.pos,
                format!("'{what}' expects {expected} here"),
            ));
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
    let a = crate::message::unbracket(a);
    match a.rsplit_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && !d.is_empty()
                && !a.contains(char::is_whitespace)
                && !d.contains(['<', '>', ','])
        }
        None => false,
    }
}
