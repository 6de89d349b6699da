//! Errors of the Sieve crate: compile errors carry the line and column of the
//! offending token; run-time errors end a run (the caller then keeps the
//! message, RFC 5228 section 2.10.6).

/// A position in a script (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A script that does not parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct CompileError {
    pub pos: Pos,
    pub message: String,
}

impl CompileError {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        CompileError {
            pos,
            message: message.into(),
        }
    }
}

/// A failure while running a compiled script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("the script exceeded its step limit of {0}")]
    StepLimit(u64),
    #[error("include of {0:?} failed: {1}")]
    Include(String, String),
    #[error("included scripts nest deeper than {0}")]
    IncludeDepth(usize),
    #[error("{0}")]
    Conflict(String),
}
