//! ManageSieve commands (RFC 5804 section 2) from a framed token list.
//! Command names are case-insensitive atoms; script names and scripts are
//! strings; the session only sees well-formed requests.

use super::wire::Token;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    StartTls,
    Capability,
    Logout,
    Noop(Option<String>),
    Unauthenticate,
    HaveSpace(String, u64),
    PutScript(String, Vec<u8>),
    ListScripts,
    SetActive(String),
    GetScript(String),
    DeleteScript(String),
    RenameScript(String, String),
    CheckScript(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command")]
    Unknown,
    #[error("{0}")]
    Syntax(&'static str),
}

fn text(t: &Token, what: &'static str) -> Result<String, CommandError> {
    match t {
        Token::Str(s) => String::from_utf8(s.clone()).map_err(|_| CommandError::Syntax(what)),
        Token::Atom(_) => Err(CommandError::Syntax(what)),
    }
}

fn bytes(t: &Token, what: &'static str) -> Result<Vec<u8>, CommandError> {
    match t {
        Token::Str(s) => Ok(s.clone()),
        Token::Atom(_) => Err(CommandError::Syntax(what)),
    }
}

/// Parses one framed command.
pub fn parse(tokens: &[Token]) -> Result<Command, CommandError> {
    let Some(Token::Atom(name)) = tokens.first() else {
        return Err(CommandError::Syntax("a command starts with its name"));
    };
    let args = &tokens[1..];
    let name_arg = "expected a script name (a string)";
    let script_arg = "expected a script (a string or a literal)";
    let n = args.len();
    let want = |count: usize, cmd: Command| {
        if n == count {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax("wrong number of arguments"))
        }
    };
    match name.to_ascii_uppercase().as_str() {
        "AUTHENTICATE" => {
            let mechanism = match args.first() {
                Some(Token::Str(s)) => String::from_utf8_lossy(s).into_owned(),
                Some(Token::Atom(a)) => a.clone(),
                None => return Err(CommandError::Syntax("AUTHENTICATE needs a mechanism")),
            };
            let initial = match args.get(1) {
                Some(t) => Some(bytes(t, "the initial response must be a string")?),
                None => None,
            };
            if n > 2 {
                return Err(CommandError::Syntax("wrong number of arguments"));
            }
            Ok(Command::Authenticate {
                mechanism: mechanism.to_ascii_uppercase(),
                initial,
            })
        }
        "STARTTLS" => want(0, Command::StartTls),
        "CAPABILITY" => want(0, Command::Capability),
        "LOGOUT" => want(0, Command::Logout),
        "UNAUTHENTICATE" => want(0, Command::Unauthenticate),
        "LISTSCRIPTS" => want(0, Command::ListScripts),
        "NOOP" => match args {
            [] => Ok(Command::Noop(None)),
            [t] => Ok(Command::Noop(Some(text(t, "NOOP takes a string")?))),
            _ => Err(CommandError::Syntax("wrong number of arguments")),
        },
        "HAVESPACE" => match args {
            [name, Token::Atom(size)] => {
                let size = size
                    .parse::<u64>()
                    .ok()
                    .filter(|_| size.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(CommandError::Syntax("the size must be a number"))?;
                Ok(Command::HaveSpace(text(name, name_arg)?, size))
            }
            _ => Err(CommandError::Syntax("HAVESPACE takes a name and a size")),
        },
        "PUTSCRIPT" => match args {
            [name, script] => Ok(Command::PutScript(
                text(name, name_arg)?,
                bytes(script, script_arg)?,
            )),
            _ => Err(CommandError::Syntax("PUTSCRIPT takes a name and a script")),
        },
        "CHECKSCRIPT" => match args {
            [script] => Ok(Command::CheckScript(bytes(script, script_arg)?)),
            _ => Err(CommandError::Syntax("CHECKSCRIPT takes a script")),
        },
        "SETACTIVE" => match args {
            [name] => Ok(Command::SetActive(text(name, name_arg)?)),
            _ => Err(CommandError::Syntax(name_arg)),
        },
        "GETSCRIPT" => match args {
            [name] => Ok(Command::GetScript(text(name, name_arg)?)),
            _ => Err(CommandError::Syntax(name_arg)),
        },
        "DELETESCRIPT" => match args {
            [name] => Ok(Command::DeleteScript(text(name, name_arg)?)),
            _ => Err(CommandError::Syntax(name_arg)),
        },
        "RENAMESCRIPT" => match args {
            [old, new] => Ok(Command::RenameScript(
                text(old, name_arg)?,
                text(new, name_arg)?,
            )),
            _ => Err(CommandError::Syntax("RENAMESCRIPT takes two names")),
        },
        _ => Err(CommandError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::tokenize;
    use super::*;

    fn parsed(line: &[u8], literal: Option<&[u8]>) -> Result<Command, CommandError> {
        let mut t = Vec::new();
        tokenize(line, &mut t).unwrap();
        if let Some(l) = literal {
            t.push(Token::Str(l.to_vec()));
        }
        parse(&t)
    }

    #[test]
    fn parses_commands() {
        assert_eq!(
            parsed(b"putscript \"a b\"", Some(b"keep;")),
            Ok(Command::PutScript("a b".into(), b"keep;".to_vec()))
        );
        assert_eq!(
            parsed(b"HAVESPACE \"s\" 42", None),
            Ok(Command::HaveSpace("s".into(), 42))
        );
        assert_eq!(
            parsed(b"AUTHENTICATE \"PLAIN\" \"AGEAYg==\"", None),
            Ok(Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(b"AGEAYg==".to_vec())
            })
        );
        assert_eq!(
            parsed(b"SETACTIVE \"\"", None),
            Ok(Command::SetActive(String::new()))
        );
        assert_eq!(
            parsed(b"NOOP \"t1\"", None),
            Ok(Command::Noop(Some("t1".into())))
        );
        assert!(
            parsed(b"GETSCRIPT name", None).is_err(),
            "names are strings"
        );
        assert!(parsed(b"HAVESPACE \"s\" -1", None).is_err());
        assert!(parsed(b"LISTSCRIPTS \"x\"", None).is_err());
        assert_eq!(parsed(b"XYZZY", None), Err(CommandError::Unknown));
    }
}
