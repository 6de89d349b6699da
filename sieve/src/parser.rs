//! The Sieve grammar (RFC 5228 section 8.2): tokens to an untyped syntax tree
//! of commands, arguments, tests and blocks. Nesting is bounded by
//! [`MAX_NESTING`] so hostile scripts cannot exhaust the stack.

use crate::error::{CompileError, Pos};
use crate::lexer::{Tok, tokenize};

/// Deepest nesting of blocks and tests a script may use.
pub const MAX_NESTING: usize = 32;

/// One argument as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgKind {
    /// A single string (not in brackets).
    Str(String),
    /// A bracketed string list.
    List(Vec<String>),
    Number(u64),
    Tag(String),
}

/// An argument and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub kind: ArgKind,
    pub pos: Pos,
}

/// A test: identifier, arguments, nested tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestNode {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<Arg>,
    pub tests: Vec<TestNode>,
}

/// A command: identifier, arguments, tests, optional block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandNode {
    pub name: String,
    pub pos: Pos,
    pub args: Vec<Arg>,
    pub tests: Vec<TestNode>,
    pub block: Option<Vec<CommandNode>>,
}

/// Parses a whole script into its top-level commands.
pub fn parse(src: &str) -> Result<Vec<CommandNode>, CompileError> {
    let (toks, end) = tokenize(src)?;
    let mut p = Parser { toks, i: 0, end };
    let cmds = p.commands(0)?;
    if let Some((_, pos)) = p.toks.get(p.i) {
        return Err(CompileError::new(*pos, "unexpected '}'"));
    }
    Ok(cmds)
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    i: usize,
    end: Pos,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(t, _)| t)
    }

    fn pos(&self) -> Pos {
        self.toks.get(self.i).map(|(_, p)| *p).unwrap_or(self.end)
    }

    fn next(&mut self) -> Option<(Tok, Pos)> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<CommandNode>, CompileError> {
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            if *t == Tok::RBrace {
                break;
            }
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<CommandNode, CompileError> {
        let pos = self.pos();
        let name = match self.next() {
            Some((Tok::Ident(n), _)) => n,
            _ => return Err(CompileError::new(pos, "expected a command")),
        };
        let (args, tests) = self.arguments(depth)?;
        let block = match self.next() {
            Some((Tok::Semicolon, _)) => None,
            Some((Tok::LBrace, bpos)) => {
                if depth >= MAX_NESTING {
                    return Err(CompileError::new(bpos, "blocks nested too deeply"));
                }
                let cmds = self.commands(depth + 1)?;
                match self.next() {
                    Some((Tok::RBrace, _)) => Some(cmds),
                    _ => {
                        return Err(CompileError::new(
                            self.end,
                            "missing '}' to close the block",
                        ));
                    }
                }
            }
            Some((_, p)) => {
                return Err(CompileError::new(p, format!("expected ';' after '{name}'")));
            }
            None => {
                return Err(CompileError::new(
                    self.end,
                    format!("expected ';' after '{name}'"),
                ));
            }
        };
        Ok(CommandNode {
            name,
            pos,
            args,
            tests,
            block,
        })
    }

    fn arguments(&mut self, depth: usize) -> Result<(Vec<Arg>, Vec<TestNode>), CompileError> {
        let mut args = Vec::new();
        loop {
            let pos = self.pos();
            let kind = match self.peek() {
                Some(Tok::Str(_)) => match self.next() {
                    Some((Tok::Str(s), _)) => ArgKind::Str(s),
                    _ => unreachable_token(pos)?,
                },
                Some(Tok::Number(n)) => {
                    let n = *n;
                    self.i += 1;
                    ArgKind::Number(n)
                }
                Some(Tok::Tag(t)) => {
                    let t = t.clone();
                    self.i += 1;
                    ArgKind::Tag(t)
                }
                Some(Tok::LBracket) => {
                    self.i += 1;
                    ArgKind::List(self.string_list()?)
                }
                _ => break,
            };
            args.push(Arg { kind, pos });
        }
        let tests = match self.peek() {
            Some(Tok::LParen) => {
                let ppos = self.pos();
                self.i += 1;
                if depth >= MAX_NESTING {
                    return Err(CompileError::new(ppos, "tests nested too deeply"));
                }
                let mut tests = vec![self.test(depth + 1)?];
                loop {
                    match self.next() {
                        Some((Tok::Comma, _)) => tests.push(self.test(depth + 1)?),
                        Some((Tok::RParen, _)) => break,
                        Some((_, p)) => {
                            return Err(CompileError::new(p, "expected ',' or ')' in test list"));
                        }
                        None => return Err(CompileError::new(self.end, "unterminated test list")),
                    }
                }
                tests
            }
            Some(Tok::Ident(_)) => {
                if depth >= MAX_NESTING {
                    return Err(CompileError::new(self.pos(), "tests nested too deeply"));
                }
                vec![self.test(depth + 1)?]
            }
            _ => Vec::new(),
        };
        Ok((args, tests))
    }

    fn test(&mut self, depth: usize) -> Result<TestNode, CompileError> {
        let pos = self.pos();
        let name = match self.next() {
            Some((Tok::Ident(n), _)) => n,
            _ => return Err(CompileError::new(pos, "expected a test")),
        };
        let (args, tests) = self.arguments(depth)?;
        Ok(TestNode {
            name,
            pos,
            args,
            tests,
        })
    }

    fn string_list(&mut self) -> Result<Vec<String>, CompileError> {
        let mut out = Vec::new();
        loop {
            match self.next() {
                Some((Tok::Str(s), _)) => out.push(s),
                Some((_, p)) => {
                    return Err(CompileError::new(p, "expected a string in the string list"));
                }
                None => return Err(CompileError::new(self.end, "unterminated string list")),
            }
            match self.next() {
                Some((Tok::Comma, _)) => {}
                Some((Tok::RBracket, _)) => return Ok(out),
                Some((_, p)) => {
                    return Err(CompileError::new(p, "expected ',' or ']' in string list"));
                }
                None => return Err(CompileError::new(self.end, "unterminated string list")),
            }
        }
    }
}

fn unreachable_token<T>(pos: Pos) -> Result<T, CompileError> {
    Err(CompileError::new(pos, "internal parser error"))
}
