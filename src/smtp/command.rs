//! SMTP command lines parsed into `Command` (RFC 5321 section 4.1, with the
//! ESMTP parameters of SIZE, 8BITMIME, SMTPUTF8, DSN, AUTH and CHUNKING).
//! Pure: bytes in, command or the reply for the error out; never touches
//! the socket.

use crate::address::{Address, AddressError, ReversePath};
use crate::mail::params::{Body, MailParams, Notify, RcptParams, Ret};
use crate::mail::reply::Reply;
use crate::mail::xtext::xtext_decode;

/// RCPT TO's argument: a mailbox, or the bare `<Postmaster>` of RFC 5321 4.1.1.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    Postmaster,
    Mailbox(Address),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    Rcpt {
        to: ForwardPath,
        params: RcptParams,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Expn(String),
    Help(Option<String>),
    StartTls,
    Auth {
        mechanism: String,
        initial_response: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unrecognised command")]
    Unknown,
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("bad sender address: {0}")]
    BadSender(AddressError),
    #[error("bad recipient address: {0}")]
    BadRecipient(AddressError),
    #[error("unsupported parameter {0}")]
    UnknownParam(String),
    #[error("command is not valid UTF-8")]
    NotUtf8,
}

impl CommandError {
    pub fn reply(&self) -> Reply {
        match self {
            // RFC 6531 3.7.4.1: non-ASCII addresses without SMTPUTF8.
            CommandError::BadSender(AddressError::Utf8NotAllowed)
            | CommandError::BadRecipient(AddressError::Utf8NotAllowed) => {
                Reply::new(553, "5.6.7", "Non-ASCII addresses need SMTPUTF8")
            }
            CommandError::Unknown => Reply::new(500, "5.5.2", "Error: command not recognized"),
            CommandError::NotUtf8 => Reply::new(500, "5.5.2", "Error: command is not valid UTF-8"),
            CommandError::Syntax(why) => Reply::new(501, "5.5.4", format!("Syntax error: {why}")),
            CommandError::BadSender(e) => {
                Reply::new(501, "5.1.7", format!("Bad sender address syntax: {e}"))
            }
            CommandError::BadRecipient(e) => {
                Reply::new(501, "5.1.3", format!("Bad recipient address syntax: {e}"))
            }
            CommandError::UnknownParam(p) => {
                Reply::new(555, "5.5.4", format!("Unsupported parameter {p}"))
            }
        }
    }
}

fn syntax(why: &str) -> CommandError {
    CommandError::Syntax(why.to_string())
}

/// Parses one command line (without CRLF). `smtputf8` says whether the
/// current transaction was opened with SMTPUTF8 (for RCPT addresses); MAIL
/// decides it from its own parameters.
pub fn parse_command(line: &[u8], smtputf8: bool) -> Result<Command, CommandError> {
    let text = std::str::from_utf8(line).map_err(|_| CommandError::NotUtf8)?;
    let (verb, rest) = match text.find(' ') {
        Some(i) => (&text[..i], text[i + 1..].trim_start()),
        None => (text, ""),
    };
    let rest_trim = rest.trim_end();
    let no_args = |c: Command| {
        if rest_trim.is_empty() {
            Ok(c)
        } else {
            Err(syntax("no parameters allowed"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" | "LHLO" if !rest_trim.is_empty() => Ok(Command::Ehlo(rest_trim.to_string())),
        "HELO" if !rest_trim.is_empty() => Ok(Command::Helo(rest_trim.to_string())),
        "EHLO" | "LHLO" | "HELO" => Err(syntax("a host name is required")),
        "MAIL" => parse_mail(rest_trim),
        "RCPT" => parse_rcpt(rest_trim, smtputf8),
        "DATA" => no_args(Command::Data),
        "BDAT" => parse_bdat(rest_trim),
        "RSET" => no_args(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "VRFY" if !rest_trim.is_empty() => Ok(Command::Vrfy(rest_trim.to_string())),
        "EXPN" if !rest_trim.is_empty() => Ok(Command::Expn(rest_trim.to_string())),
        "VRFY" | "EXPN" => Err(syntax("an argument is required")),
        "HELP" => Ok(Command::Help(
            (!rest_trim.is_empty()).then(|| rest_trim.to_string()),
        )),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => {
            let mut parts = rest_trim.split_ascii_whitespace();
            let mechanism = parts
                .next()
                .ok_or_else(|| syntax("AUTH needs a mechanism"))?
                .to_ascii_uppercase();
            let initial_response = parts.next().map(str::to_string);
            if parts.next().is_some() {
                return Err(syntax("too many AUTH parameters"));
            }
            Ok(Command::Auth {
                mechanism,
                initial_response,
            })
        }
        _ => Err(CommandError::Unknown),
    }
}

/// Splits `FROM:<path> params` into the path text and the parameter words.
fn split_path<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, Vec<&'a str>), CommandError> {
    let head = rest
        .get(..keyword.len())
        .filter(|h| h.eq_ignore_ascii_case(keyword));
    let Some(_) = head else {
        return Err(syntax(&format!("expected {keyword}<address>")));
    };
    let after = rest[keyword.len()..].trim_start();
    let Some(inner) = after.strip_prefix('<') else {
        return Err(syntax("the address must be in angle brackets"));
    };
    // The path ends at the first '>' outside a quoted string.
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or_else(|| syntax("missing closing angle bracket"))?;
    let params_text = &inner[end + 1..];
    if !params_text.is_empty() && !params_text.starts_with(' ') {
        return Err(syntax("parameters must follow a space"));
    }
    Ok((
        &inner[..end],
        params_text.split_ascii_whitespace().collect(),
    ))
}

fn split_param(p: &str) -> (String, Option<&str>) {
    match p.split_once('=') {
        Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
        None => (p.to_ascii_uppercase(), None),
    }
}

fn parse_mail(rest: &str) -> Result<Command, CommandError> {
    let (path, words) = split_path(rest, "FROM:")?;
    let mut params = MailParams::default();
    for w in &words {
        let (key, value) = split_param(w);
        match (key.as_str(), value) {
            ("SIZE", Some(v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                // More digits than u64 holds is still a size, just too big (552).
                params.size = Some(v.parse().unwrap_or(u64::MAX))
            }
            ("BODY", Some(v)) => {
                params.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    "BINARYMIME" => Body::BinaryMime,
                    _ => return Err(syntax("BODY must be 7BIT or 8BITMIME")),
                })
            }
            ("SMTPUTF8", None) => params.smtputf8 = true,
            ("REQUIRETLS", None) => params.requiretls = true,
            ("RET", Some(v)) => {
                params.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(syntax("RET must be FULL or HDRS")),
                })
            }
            ("ENVID", Some(v)) => {
                params.envid =
                    Some(xtext_decode(v).ok_or_else(|| syntax("ENVID is not valid xtext"))?)
            }
            ("AUTH", Some(v)) => params.auth = Some(v.to_string()),
            ("SIZE" | "BODY" | "RET" | "ENVID" | "AUTH" | "SMTPUTF8" | "REQUIRETLS", _) => {
                return Err(syntax(&format!("bad value for {key}")));
            }
            _ => return Err(CommandError::UnknownParam(key)),
        }
    }
    if params.body == Some(Body::BinaryMime) {
        return Err(CommandError::UnknownParam("BODY=BINARYMIME".into()));
    }
    let from = if path.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(
            Address::parse(path, params.smtputf8).map_err(CommandError::BadSender)?,
        )
    };
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(rest: &str, smtputf8: bool) -> Result<Command, CommandError> {
    let (path, words) = split_path(rest, "TO:")?;
    let mut params = RcptParams::default();
    for w in &words {
        let (key, value) = split_param(w);
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) => {
                let mut n = Notify::default();
                for item in v.split(',') {
                    match item.to_ascii_uppercase().as_str() {
                        "NEVER" => n.never = true,
                        "SUCCESS" => n.success = true,
                        "FAILURE" => n.failure = true,
                        "DELAY" => n.delay = true,
                        _ => return Err(syntax("NOTIFY takes NEVER or SUCCESS,FAILURE,DELAY")),
                    }
                }
                if n.never && (n.success || n.failure || n.delay) {
                    return Err(syntax("NOTIFY=NEVER cannot be combined"));
                }
                params.notify = Some(n);
            }
            ("ORCPT", Some(v)) => {
                let (kind, addr) = v
                    .split_once(';')
                    .ok_or_else(|| syntax("ORCPT is type;address"))?;
                let addr = xtext_decode(addr).ok_or_else(|| syntax("ORCPT is not valid xtext"))?;
                params.orcpt = Some((kind.to_string(), addr));
            }
            ("NOTIFY" | "ORCPT", None) => return Err(syntax(&format!("{key} needs a value"))),
            _ => return Err(CommandError::UnknownParam(key)),
        }
    }
    if path.eq_ignore_ascii_case("postmaster") {
        return Ok(Command::Rcpt {
            to: ForwardPath::Postmaster,
            params,
        });
    }
    if path.is_empty() {
        return Err(CommandError::BadRecipient(AddressError::EmptyLocal));
    }
    let to = Address::parse(path, smtputf8).map_err(CommandError::BadRecipient)?;
    Ok(Command::Rcpt {
        to: ForwardPath::Mailbox(to),
        params,
    })
}

fn parse_bdat(rest: &str) -> Result<Command, CommandError> {
    let mut parts = rest.split_ascii_whitespace();
    let size = parts
        .next()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| syntax("BDAT needs a chunk size"))?;
    let last = match parts.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(syntax("BDAT size [LAST]")),
    };
    if parts.next().is_some() {
        return Err(syntax("BDAT size [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, CommandError> {
        parse_command(s.as_bytes(), false)
    }

    #[test]
    fn mail_with_params() {
        let Command::Mail { from, params } =
            p("mail from:<a@b.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x+2By").unwrap()
        else {
            panic!()
        };
        assert_eq!(from.to_string(), "a@b.test");
        assert_eq!(params.size, Some(100));
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("x+y"));
        assert!(!params.requiretls);
        let Ok(Command::Mail { params, .. }) = p("MAIL FROM:<a@b.test> requiretls") else {
            panic!()
        };
        assert!(params.requiretls);
        assert!(p("MAIL FROM:<a@b.test> REQUIRETLS=yes").is_err());
        assert!(matches!(
            p("MAIL FROM:<>"),
            Ok(Command::Mail {
                from: ReversePath::Null,
                ..
            })
        ));
        assert!(matches!(
            p("MAIL FROM: <a@b.test>"),
            Ok(Command::Mail { .. })
        ));
    }

    #[test]
    fn mail_errors_map_to_replies() {
        assert_eq!(p("MAIL FROM:a@b.test").unwrap_err().reply().code, 501);
        assert_eq!(
            p("MAIL FROM:<a@b.test> FOO=1").unwrap_err().reply().code,
            555
        );
        assert_eq!(
            p("MAIL FROM:<ab.test>")
                .unwrap_err()
                .reply()
                .enhanced
                .as_deref(),
            Some("5.1.7")
        );
        assert_eq!(
            p("MAIL FROM:<a@b.test> SIZE=x").unwrap_err().reply().code,
            501
        );
        assert_eq!(p("XYZZY").unwrap_err().reply().code, 500);
        assert_eq!(
            parse_command(b"MAIL FROM:<\xff@x>", false)
                .unwrap_err()
                .reply()
                .code,
            500
        );
    }

    #[test]
    fn utf8_needs_smtputf8() {
        assert!(p("MAIL FROM:<用户@example.test>").is_err());
        assert!(p("MAIL FROM:<用户@example.test> SMTPUTF8").is_ok());
        assert!(parse_command("RCPT TO:<用户@example.test>".as_bytes(), true).is_ok());
        assert_eq!(
            p("RCPT TO:<用户@example.test>")
                .unwrap_err()
                .reply()
                .enhanced
                .as_deref(),
            Some("5.6.7")
        );
    }

    #[test]
    fn rcpt_forms() {
        assert!(matches!(
            p("RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt {
                to: ForwardPath::Postmaster,
                ..
            })
        ));
        let Command::Rcpt { params, .. } =
            p("RCPT TO:<\"x y\"@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y").unwrap()
        else {
            panic!()
        };
        assert!(
            params
                .notify
                .as_ref()
                .is_some_and(|n| n.success && n.failure && !n.delay)
        );
        assert_eq!(params.orcpt, Some(("rfc822".into(), "x@y".into())));
        assert!(p("RCPT TO:<a@b.test> NOTIFY=NEVER,DELAY").is_err());
        assert!(p("RCPT TO:<>").is_err());
    }

    #[test]
    fn other_verbs() {
        assert_eq!(
            p("BDAT 100 LAST"),
            Ok(Command::Bdat {
                size: 100,
                last: true
            })
        );
        assert_eq!(
            p("bdat 5"),
            Ok(Command::Bdat {
                size: 5,
                last: false
            })
        );
        assert!(p("BDAT x").is_err());
        assert_eq!(
            p("AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            p("EHLO client.test"),
            Ok(Command::Ehlo("client.test".into()))
        );
        assert!(p("EHLO").is_err());
        assert_eq!(p("DATA"), Ok(Command::Data));
        assert!(p("DATA x").is_err());
    }
}
