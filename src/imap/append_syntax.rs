//! APPEND syntax imap-codec 2.0.0-alpha.10 does not parse: MULTIAPPEND
//! (RFC 3502, several messages in one command) and CATENATE (RFC 4469, a
//! message made of TEXT literals and IMAP URLs). The command is split
//! into one single-message APPEND per message (flags, date and literal
//! bytes kept as sent, literal8 included) for the codec to parse; a
//! CATENATE message gets a one-byte placeholder literal there and its
//! parts beside it, assembled by `catenate.rs`.

use super::rewrite::{Kind, Token, flat_list, tokenize, verb};

/// One part of a CATENATE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    Text(Vec<u8>),
    Url(String),
}

/// One message of an APPEND: a single-message APPEND for the codec and,
/// for CATENATE, the parts that replace its placeholder literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendPiece {
    pub single: Vec<u8>,
    pub catenate: Option<Vec<CatPart>>,
}

/// The pieces of an APPEND with several messages or a CATENATE; `None`
/// for anything else (a plain APPEND goes to the codec as it is);
/// `Some(Err)` is the text of a BAD.
pub fn split_append(msg: &[u8]) -> Option<Result<Vec<AppendPiece>, String>> {
    if verb(msg)? != (false, b"APPEND".to_vec()) {
        return None;
    }
    let tokens = tokenize(msg)?;
    let literal = |t: &Token| matches!(t.kind, Kind::Text(_)) && msg[t.start] != b'"';
    let catenate =
        |t: &Token| t.kind == Kind::Atom && msg[t.start..t.end].eq_ignore_ascii_case(b"CATENATE");
    let literals = tokens.iter().filter(|t| literal(t)).count();
    if literals < 2 && !tokens.iter().any(catenate) {
        return None;
    }
    Some(pieces(msg, &tokens, &literal))
}

fn pieces(
    msg: &[u8],
    tokens: &[Token],
    literal: &dyn Fn(&Token) -> bool,
) -> Result<Vec<AppendPiece>, String> {
    let malformed = || "malformed APPEND".to_string();
    let (tag, mailbox) = match tokens {
        [tag, _, mailbox, ..] => (&msg[tag.start..tag.end], &msg[mailbox.start..mailbox.end]),
        _ => return Err(malformed()),
    };
    let single = |opts: &[u8], content: &[u8]| {
        let mut one = tag.to_vec();
        one.extend_from_slice(b" APPEND ");
        one.extend_from_slice(mailbox);
        one.push(b' ');
        if !opts.is_empty() {
            one.extend_from_slice(opts);
            one.push(b' ');
        }
        one.extend_from_slice(content);
        one.extend_from_slice(b"\r\n");
        one
    };
    let mut out = Vec::new();
    let mut i = 3;
    while i < tokens.len() {
        let first = i;
        let start = tokens[i].start;
        if tokens[i].kind == Kind::Open {
            let (_, used) = flat_list(&tokens[i..]).ok_or_else(malformed)?;
            i += used;
        }
        if tokens
            .get(i)
            .is_some_and(|t| !literal(t) && matches!(t.kind, Kind::Text(_)))
        {
            i += 1;
        }
        let opts: &[u8] = if i > first {
            &msg[start..tokens[i - 1].end]
        } else {
            &[]
        };
        let t = tokens.get(i).ok_or_else(malformed)?;
        if literal(t) {
            out.push(AppendPiece {
                single: single(opts, &msg[t.start..t.end]),
                catenate: None,
            });
            i += 1;
            continue;
        }
        if !(t.kind == Kind::Atom && msg[t.start..t.end].eq_ignore_ascii_case(b"CATENATE")) {
            return Err(malformed());
        }
        i += 1;
        if tokens.get(i).map(|t| &t.kind) != Some(&Kind::Open) {
            return Err(malformed());
        }
        i += 1;
        let mut parts = Vec::new();
        loop {
            let t = tokens.get(i).ok_or_else(malformed)?;
            if t.kind == Kind::Close {
                i += 1;
                break;
            }
            let word = msg[t.start..t.end].to_ascii_uppercase();
            let value = match &tokens.get(i + 1).ok_or_else(malformed)?.kind {
                Kind::Text(v) => v.clone(),
                Kind::Atom => {
                    let v = &tokens[i + 1];
                    msg[v.start..v.end].to_vec()
                }
                _ => return Err(malformed()),
            };
            match (t.kind == Kind::Atom, word.as_slice()) {
                (true, b"TEXT") if literal(&tokens[i + 1]) => parts.push(CatPart::Text(value)),
                (true, b"URL") => {
                    parts.push(CatPart::Url(String::from_utf8_lossy(&value).into_owned()))
                }
                _ => return Err(malformed()),
            }
            i += 2;
        }
        if parts.is_empty() {
            return Err(malformed());
        }
        out.push(AppendPiece {
            single: single(opts, b"{1+}\r\nx"),
            catenate: Some(parts),
        });
    }
    if out.is_empty() {
        return Err(malformed());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(single: &[u8]) -> AppendPiece {
        AppendPiece {
            single: single.to_vec(),
            catenate: None,
        }
    }

    #[test]
    fn multiappend_is_split() {
        let msg = b"a APPEND INBOX (\\Seen) {3+}\r\nabc \"01-Jan-2026 00:00:00 +0000\" ~{2+}\r\nde {1+}\r\nf\r\n";
        assert_eq!(
            split_append(msg).unwrap().unwrap(),
            vec![
                plain(b"a APPEND INBOX (\\Seen) {3+}\r\nabc\r\n"),
                plain(b"a APPEND INBOX \"01-Jan-2026 00:00:00 +0000\" ~{2+}\r\nde\r\n"),
                plain(b"a APPEND INBOX {1+}\r\nf\r\n"),
            ]
        );
        assert!(split_append(b"a APPEND INBOX {1+}\r\nf\r\n").is_none());
        assert!(
            split_append(b"a APPEND INBOX {1+}\r\nf ( {1+}\r\ng\r\n")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn catenate_is_split() {
        let msg = b"a APPEND Sent (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY=9/;UID=2/;SECTION=HEADER\" TEXT {4+}\r\n\r\nhi URL \"/INBOX;UID=2/;SECTION=1\") {1+}\r\nz\r\n";
        let pieces = split_append(msg).unwrap().unwrap();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].single, b"a APPEND Sent (\\Seen) {1+}\r\nx\r\n");
        assert_eq!(
            pieces[0].catenate,
            Some(vec![
                CatPart::Url("/INBOX;UIDVALIDITY=9/;UID=2/;SECTION=HEADER".into()),
                CatPart::Text(b"\r\nhi".to_vec()),
                CatPart::Url("/INBOX;UID=2/;SECTION=1".into()),
            ])
        );
        assert_eq!(pieces[1], plain(b"a APPEND Sent {1+}\r\nz\r\n"));
        assert!(
            split_append(b"a APPEND X CATENATE ()\r\n")
                .unwrap()
                .is_err()
        );
        assert!(
            split_append(b"a APPEND X CATENATE (TEXT \"q\")\r\n")
                .unwrap()
                .is_err()
        );
    }
}
