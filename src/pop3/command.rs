//! POP3 command lines (RFC 1939, 2449, 2595, 5034) parsed into `Command`.
//! Keywords are case-insensitive; arguments are checked here so the session
//! only sees well-formed requests.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    User(String),
    Pass(String),
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Stls,
    Stat,
    List(Option<usize>),
    Retr(usize),
    Dele(usize),
    Noop,
    Rset,
    Top(usize, usize),
    Uidl(Option<usize>),
    Quit,
    Apop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command")]
    Unknown,
    #[error("{0}")]
    Syntax(&'static str),
}

fn number(arg: Option<&str>, what: &'static str) -> Result<usize, CommandError> {
    let a = arg.ok_or(CommandError::Syntax(what))?;
    match a.parse::<usize>() {
        Ok(n) if n > 0 && a.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(CommandError::Syntax("invalid message number")),
    }
}

/// Parses one line (without CRLF).
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| CommandError::Syntax("command is not valid UTF-8"))?;
    // PASS takes the rest of the line: passwords may contain spaces.
    let (keyword, rest) = match text.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (text, None),
    };
    let mut args = rest.unwrap_or("").split(' ').filter(|a| !a.is_empty());
    let a1 = args.next();
    let a2 = args.next();
    let extra = args.next().is_some();
    let no_args = |cmd: Command| {
        if a1.is_some() {
            Err(CommandError::Syntax("no arguments expected"))
        } else {
            Ok(cmd)
        }
    };
    match keyword.to_ascii_uppercase().as_str() {
        "CAPA" => no_args(Command::Capa),
        "USER" => match (a1, a2) {
            (Some(u), None) => Ok(Command::User(u.to_string())),
            _ => Err(CommandError::Syntax("USER needs one argument")),
        },
        "PASS" => match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_string())),
            _ => Err(CommandError::Syntax("PASS needs an argument")),
        },
        "AUTH" => {
            if extra {
                return Err(CommandError::Syntax("too many arguments"));
            }
            Ok(Command::Auth {
                mechanism: a1.map(|m| m.to_ascii_uppercase()),
                initial: a2.map(str::to_string),
            })
        }
        "STLS" => no_args(Command::Stls),
        "STAT" => no_args(Command::Stat),
        "LIST" => match a1 {
            None => Ok(Command::List(None)),
            Some(_) if a2.is_none() => {
                Ok(Command::List(Some(number(a1, "message number expected")?)))
            }
            Some(_) => Err(CommandError::Syntax("too many arguments")),
        },
        "UIDL" => match a1 {
            None => Ok(Command::Uidl(None)),
            Some(_) if a2.is_none() => {
                Ok(Command::Uidl(Some(number(a1, "message number expected")?)))
            }
            Some(_) => Err(CommandError::Syntax("too many arguments")),
        },
        "RETR" if a2.is_none() => Ok(Command::Retr(number(a1, "message number expected")?)),
        "DELE" if a2.is_none() => Ok(Command::Dele(number(a1, "message number expected")?)),
        "RETR" | "DELE" => Err(CommandError::Syntax("too many arguments")),
        "TOP" => {
            if extra {
                return Err(CommandError::Syntax("too many arguments"));
            }
            let n = number(a1, "TOP needs a message number and a line count")?;
            let lines = a2
                .filter(|l| l.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|l| l.parse::<usize>().ok())
                .ok_or(CommandError::Syntax(
                    "TOP needs a message number and a line count",
                ))?;
            Ok(Command::Top(n, lines))
        }
        "NOOP" => no_args(Command::Noop),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "APOP" => Ok(Command::Apop),
        _ => Err(CommandError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(b"user bob"), Ok(Command::User("bob".into())));
        assert_eq!(parse(b"PASS a b c"), Ok(Command::Pass("a b c".into())));
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"list 2"), Ok(Command::List(Some(2))));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse(b"AUTH PLAIN AGJvYgBwdw=="),
            Ok(Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGJvYgBwdw==".into())
            })
        );
        assert_eq!(
            parse(b"AUTH"),
            Ok(Command::Auth {
                mechanism: None,
                initial: None
            })
        );
        assert!(parse(b"RETR 0").is_err());
        assert!(parse(b"RETR x").is_err());
        assert!(parse(b"RETR -1").is_err());
        assert!(parse(b"TOP 1").is_err());
        assert_eq!(parse(b"XYZZY"), Err(CommandError::Unknown));
    }
}
