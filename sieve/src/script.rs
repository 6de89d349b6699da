//! The compiled, validated form of a script: typed commands and tests with
//! every tag resolved. Strings may still hold `${...}` variable references,
//! which the interpreter expands when the `variables` extension is in use.

use crate::error::Pos;

/// A compiled script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub commands: Vec<Cmd>,
    /// Whether `require "variables"` was given (strings are expanded).
    pub variables: bool,
    /// Whether `require "imap4flags"` was given (keep/fileinto carry flags).
    pub imap4flags: bool,
}

/// Comparators (RFC 4790 collations named by RFC 5228).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

/// Relational operators (RFC 5231).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// Match types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    Is,
    Contains,
    Matches,
    Regex,
    Count(RelOp),
    Value(RelOp),
}

/// Comparator plus match type of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matcher {
    pub comparator: Comparator,
    pub kind: MatchType,
}

/// Address parts (RFC 5228 section 2.7.4, RFC 5233).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPart {
    All,
    LocalPart,
    Domain,
    User,
    Detail,
}

/// `:index N [:last]` (RFC 5260 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub n: u64,
    pub last: bool,
}

/// What part of the body a `body` test sees (RFC 5173).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyTransform {
    Raw,
    Content(Vec<String>),
    Text,
}

/// Time zone of a date test (RFC 5260 section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    Local,
    Original,
    Fixed(String),
}

/// Variable modifiers (RFC 5229 section 4.1), applied highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modifier {
    Length,
    QuoteWildcard,
    QuoteRegex,
    LowerFirst,
    UpperFirst,
    Lower,
    Upper,
}

impl Modifier {
    /// RFC 5229 precedence (higher first).
    pub fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard | Modifier::QuoteRegex => 20,
            Modifier::Length => 10,
        }
    }
}

/// imap4flags commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Set,
    Add,
    Remove,
}

/// The vacation command's parameters as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationCmd {
    /// Period in seconds (`:days` converted).
    pub period: Option<u64>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    If {
        branches: Vec<(Test, Vec<Cmd>)>,
        otherwise: Option<Vec<Cmd>>,
    },
    Stop,
    Keep {
        flags: Option<Vec<String>>,
    },
    Discard,
    FileInto {
        folder: String,
        copy: bool,
        create: bool,
        flags: Option<Vec<String>>,
    },
    Redirect {
        address: String,
        copy: bool,
    },
    Reject {
        reason: String,
        extended: bool,
    },
    Vacation(Box<VacationCmd>),
    Flag {
        op: FlagOp,
        variable: Option<String>,
        flags: Vec<String>,
    },
    Set {
        name: String,
        modifiers: Vec<Modifier>,
        value: String,
    },
    Include {
        name: String,
        global: bool,
        once: bool,
        optional: bool,
        pos: Pos,
    },
    Return,
    Global(Vec<String>),
}

/// A test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Address {
        m: Matcher,
        part: AddressPart,
        index: Option<Index>,
        headers: Vec<String>,
        keys: Vec<String>,
    },
    Envelope {
        m: Matcher,
        part: AddressPart,
        fields: Vec<String>,
        keys: Vec<String>,
    },
    Header {
        m: Matcher,
        index: Option<Index>,
        headers: Vec<String>,
        keys: Vec<String>,
    },
    Exists(Vec<String>),
    Size {
        over: bool,
        limit: u64,
    },
    Body {
        m: Matcher,
        transform: BodyTransform,
        keys: Vec<String>,
    },
    String {
        m: Matcher,
        sources: Vec<String>,
        keys: Vec<String>,
    },
    HasFlag {
        m: Matcher,
        variables: Option<Vec<String>>,
        keys: Vec<String>,
    },
    Date {
        m: Matcher,
        zone: Zone,
        index: Option<Index>,
        header: String,
        part: String,
        keys: Vec<String>,
    },
    CurrentDate {
        m: Matcher,
        zone: Zone,
        part: String,
        keys: Vec<String>,
    },
    MailboxExists(Vec<String>),
}
