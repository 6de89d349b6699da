//! Command syntax of IMAP4rev2 that imap-codec 2.0.0-alpha.10 does not
//! parse: LIST-EXTENDED's selection and return options and multiple
//! patterns (RFC 5258, with LIST-STATUS, RFC 5819, and SPECIAL-USE's
//! options, RFC 6154), SEARCHRES's `$` (RFC 5182), which is replaced by
//! the saved result before the codec sees the command. APPEND's
//! MULTIAPPEND and CATENATE are split in `append_syntax.rs` on the same
//! tokenizer. A small tokenizer
//! over the framed message (atoms, quoted strings, literals, parentheses)
//! keeps strings and literals intact.

use imap_codec::imap_types::status::StatusDataItemName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Open,
    Close,
    Atom,
    /// A quoted string or a literal, with its value.
    Text(Vec<u8>),
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: Kind,
}

impl Token {
    fn atom<'a>(&self, msg: &'a [u8]) -> Option<&'a [u8]> {
        (self.kind == Kind::Atom).then(|| &msg[self.start..self.end])
    }

    fn is_atom(&self, msg: &[u8], word: &str) -> bool {
        self.atom(msg)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// An astring's value (atom, quoted string or literal).
    fn value(&self, msg: &[u8]) -> Option<Vec<u8>> {
        match &self.kind {
            Kind::Atom => Some(msg[self.start..self.end].to_vec()),
            Kind::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

/// Splits a framed message into tokens; `None` if it is malformed.
pub(super) fn tokenize(msg: &[u8]) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < msg.len() {
        let start = i;
        match msg[i] {
            b' ' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                out.push(Token {
                    start,
                    end: i,
                    kind: Kind::Open,
                });
            }
            b')' => {
                i += 1;
                out.push(Token {
                    start,
                    end: i,
                    kind: Kind::Close,
                });
            }
            b'"' => {
                let mut value = Vec::new();
                i += 1;
                loop {
                    match *msg.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            value.push(*msg.get(i + 1)?);
                            i += 2;
                        }
                        b'\r' | b'\n' => return None,
                        b => {
                            value.push(b);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push(Token {
                    start,
                    end: i,
                    kind: Kind::Text(value),
                });
            }
            b'{' | b'~' => {
                let open = if msg[i] == b'~' { i + 1 } else { i };
                if msg.get(open) != Some(&b'{') {
                    return None;
                }
                let close = open + msg[open..].iter().position(|&b| b == b'}')?;
                let digits = std::str::from_utf8(&msg[open + 1..close]).ok()?;
                let len: usize = digits.trim_end_matches('+').parse().ok()?;
                let data = close + 3; // "}\r\n"
                let end = data.checked_add(len)?;
                let value = msg.get(data..end)?.to_vec();
                i = end;
                out.push(Token {
                    start,
                    end: i,
                    kind: Kind::Text(value),
                });
            }
            _ => {
                while i < msg.len() && !matches!(msg[i], b' ' | b'(' | b')' | b'\r' | b'\n') {
                    i += 1;
                }
                out.push(Token {
                    start,
                    end: i,
                    kind: Kind::Atom,
                });
            }
        }
    }
    Some(out)
}

/// The command word of a message (after the tag and any `UID`), read from
/// its first line only, so that a big APPEND is never tokenized.
pub(super) fn verb(msg: &[u8]) -> Option<(bool, Vec<u8>)> {
    let line_end = msg.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let mut words = msg[..line_end].split(|&b| b == b' ');
    words.next()?;
    let mut word = words.next()?;
    let by_uid = word.eq_ignore_ascii_case(b"UID");
    if by_uid {
        word = words.next()?;
    }
    Some((by_uid, word.to_ascii_uppercase()))
}

/// CONTEXT=SEARCH's `CANCELUPDATE tag...` (RFC 5267 4.3): `None` for
/// other commands, `Some(None)` when malformed, else the search tags.
pub fn parse_cancel_update(msg: &[u8]) -> Option<Option<Vec<String>>> {
    if verb(msg)? != (false, b"CANCELUPDATE".to_vec()) {
        return None;
    }
    let tokens = tokenize(msg)?;
    let tags: Option<Vec<String>> = tokens
        .get(2..)?
        .iter()
        .map(|t| match &t.kind {
            Kind::Text(v) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        })
        .collect();
    Some(tags.filter(|t| !t.is_empty()))
}

/// What an extended LIST asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListOptions {
    /// Selection: subscribed names only (\Subscribed).
    pub subscribed: bool,
    /// Selection: parents of selected names get CHILDINFO.
    pub recursive: bool,
    /// Selection: special-use folders only.
    pub special_use: bool,
    /// Return \Subscribed.
    pub return_subscribed: bool,
    /// LIST-STATUS: a STATUS response after each selectable folder.
    pub status: Option<Vec<StatusDataItemName>>,
}

/// An extended LIST command, its strings still as the client wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    pub tag: String,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    pub options: ListOptions,
}

fn status_item(name: &[u8]) -> Option<StatusDataItemName> {
    Some(match name.to_ascii_uppercase().as_slice() {
        b"MESSAGES" => StatusDataItemName::Messages,
        b"RECENT" => StatusDataItemName::Recent,
        b"UIDNEXT" => StatusDataItemName::UidNext,
        b"UIDVALIDITY" => StatusDataItemName::UidValidity,
        b"UNSEEN" => StatusDataItemName::Unseen,
        b"DELETED" => StatusDataItemName::Deleted,
        b"SIZE" => StatusDataItemName::Size,
        b"HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        b"DELETED-STORAGE" => StatusDataItemName::DeletedStorage,
        _ => return None,
    })
}

/// The items of a parenthesised list starting at `tokens[0]` (an Open);
/// returns them and the number of tokens used. Nested lists are not allowed.
pub(super) fn flat_list(tokens: &[Token]) -> Option<(&[Token], usize)> {
    if tokens.first()?.kind != Kind::Open {
        return None;
    }
    let close = tokens.iter().position(|t| t.kind == Kind::Close)?;
    let inner = &tokens[1..close];
    if inner.iter().any(|t| t.kind == Kind::Open) {
        return None;
    }
    Some((inner, close + 1))
}

/// An extended LIST (`Some(Ok)`), a malformed one (`Some(Err)` with the
/// text of a BAD), or `None` for anything else, plain LIST included.
pub fn parse_list(msg: &[u8]) -> Option<Result<ListCommand, String>> {
    if verb(msg)? != (false, b"LIST".to_vec()) {
        return None;
    }
    let tokens = tokenize(msg)?;
    let tag = String::from_utf8_lossy(tokens.first()?.atom(msg)?).into_owned();
    if !tokens.get(1)?.is_atom(msg, "LIST") {
        return None;
    }
    let rest = &tokens[2..];
    let extended = rest.first().is_some_and(|t| t.kind == Kind::Open)
        || rest.get(1).is_some_and(|t| t.kind == Kind::Open)
        || rest.len() > 2;
    if !extended {
        return None;
    }
    Some(parse_extended(msg, tag, rest))
}

fn parse_extended(msg: &[u8], tag: String, rest: &[Token]) -> Result<ListCommand, String> {
    let malformed = || "malformed LIST".to_string();
    let mut options = ListOptions::default();
    let mut pos = 0;
    if rest.first().is_some_and(|t| t.kind == Kind::Open) {
        let (items, used) = flat_list(rest).ok_or_else(malformed)?;
        pos = used;
        for item in items {
            let word = item.atom(msg).ok_or_else(malformed)?.to_ascii_uppercase();
            match word.as_slice() {
                b"SUBSCRIBED" => options.subscribed = true,
                b"RECURSIVEMATCH" => options.recursive = true,
                b"SPECIAL-USE" => options.special_use = true,
                b"REMOTE" => {}
                _ => {
                    return Err(format!(
                        "unknown LIST selection option {}",
                        String::from_utf8_lossy(&word)
                    ));
                }
            }
        }
        if options.recursive && !options.subscribed && !options.special_use {
            return Err("RECURSIVEMATCH needs another selection option".into());
        }
    }
    let reference = rest
        .get(pos)
        .and_then(|t| t.value(msg))
        .ok_or_else(malformed)?;
    pos += 1;
    let mut patterns = Vec::new();
    match rest.get(pos) {
        Some(t) if t.kind == Kind::Open => {
            let (items, used) = flat_list(&rest[pos..]).ok_or_else(malformed)?;
            for item in items {
                patterns.push(item.value(msg).ok_or_else(malformed)?);
            }
            pos += used;
        }
        Some(t) => {
            patterns.push(t.value(msg).ok_or_else(malformed)?);
            pos += 1;
        }
        None => return Err(malformed()),
    }
    if patterns.is_empty() {
        return Err(malformed());
    }
    if let Some(word) = rest.get(pos) {
        if !word.is_atom(msg, "RETURN") || rest.get(pos + 1).map(|t| &t.kind) != Some(&Kind::Open) {
            return Err(malformed());
        }
        pos += 2;
        loop {
            let t = rest.get(pos).ok_or_else(malformed)?;
            pos += 1;
            if t.kind == Kind::Close {
                break;
            }
            let word = t.atom(msg).ok_or_else(malformed)?.to_ascii_uppercase();
            match word.as_slice() {
                b"SUBSCRIBED" => options.return_subscribed = true,
                b"CHILDREN" | b"SPECIAL-USE" => {}
                b"STATUS" => {
                    let (items, used) = flat_list(&rest[pos..]).ok_or_else(malformed)?;
                    pos += used;
                    let mut wanted = Vec::new();
                    for item in items {
                        let name = item.atom(msg).ok_or_else(malformed)?;
                        wanted.push(status_item(name).ok_or_else(|| {
                            format!("unknown STATUS item {}", String::from_utf8_lossy(name))
                        })?);
                    }
                    options.status = Some(wanted);
                }
                _ => {
                    return Err(format!(
                        "unknown LIST return option {}",
                        String::from_utf8_lossy(&word)
                    ));
                }
            }
        }
        if pos != rest.len() {
            return Err(malformed());
        }
    }
    Ok(ListCommand {
        tag,
        reference,
        patterns,
        options,
    })
}

/// Where SEARCHRES's `$` stands in a command.
pub enum Saved {
    /// No `$` (or not a command that takes one): decode as it is.
    Absent,
    /// The command with `$` replaced.
    Replaced(Vec<u8>),
    /// `$` names no messages: the command has nothing to do.
    Empty { tag: String },
}

/// SEARCH keys whose next argument is a string or number, never a set.
const KEYS_WITH_ARGUMENT: [&str; 17] = [
    "BCC",
    "BODY",
    "CC",
    "FROM",
    "KEYWORD",
    "UNKEYWORD",
    "SUBJECT",
    "TEXT",
    "TO",
    "BEFORE",
    "ON",
    "SINCE",
    "SENTBEFORE",
    "SENTON",
    "SENTSINCE",
    "LARGER",
    "SMALLER",
];

/// Replaces `$` in FETCH, STORE, COPY, MOVE, UID EXPUNGE and SEARCH (and
/// their UID forms). `uids` is the saved result; `seqs` the same messages
/// as sequence numbers (for the commands that take those).
pub fn substitute_saved(msg: &[u8], uids: &[u32], seqs: &[u32]) -> Saved {
    let wanted = [
        &b"FETCH"[..],
        b"STORE",
        b"COPY",
        b"MOVE",
        b"EXPUNGE",
        b"SEARCH",
    ];
    if !verb(msg).is_some_and(|(_, v)| wanted.contains(&v.as_slice())) || !msg.contains(&b'$') {
        return Saved::Absent;
    }
    let Some(tokens) = tokenize(msg) else {
        return Saved::Absent;
    };
    let Some(tag) = tokens.first().and_then(|t| t.atom(msg)) else {
        return Saved::Absent;
    };
    let tag = String::from_utf8_lossy(tag).into_owned();
    let mut i = 1;
    let by_uid = tokens.get(i).is_some_and(|t| t.is_atom(msg, "UID"));
    if by_uid {
        i += 1;
    }
    let Some(verb) = tokens.get(i).and_then(|t| t.atom(msg)) else {
        return Saved::Absent;
    };
    let verb = verb.to_ascii_uppercase();
    let set = |numbers: &[u32]| super::wire::sequence_set(numbers).into_bytes();
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    match verb.as_slice() {
        b"FETCH" | b"STORE" | b"COPY" | b"MOVE" | b"EXPUNGE" => {
            let Some(arg) = tokens.get(i + 1).filter(|t| t.is_atom(msg, "$")) else {
                return Saved::Absent;
            };
            let numbers = if by_uid { uids } else { seqs };
            if numbers.is_empty() {
                return Saved::Empty { tag };
            }
            edits.push((arg.start, arg.end, set(numbers)));
        }
        b"SEARCH" => {
            for j in i + 1..tokens.len() {
                if !tokens[j].is_atom(msg, "$") {
                    continue;
                }
                let before = |k: usize| j.checked_sub(k).and_then(|p| tokens.get(p));
                let is_argument = before(1)
                    .is_some_and(|t| KEYS_WITH_ARGUMENT.iter().any(|k| t.is_atom(msg, k)))
                    || before(2).is_some_and(|t| t.is_atom(msg, "HEADER"))
                    || before(1).is_some_and(|t| t.is_atom(msg, "HEADER"));
                if is_argument {
                    continue;
                }
                let after_uid = j > i + 1 && before(1).is_some_and(|t| t.is_atom(msg, "UID"));
                let (start, text) = match (after_uid, uids.is_empty()) {
                    (true, false) => (tokens[j].start, set(uids)),
                    (true, true) => (tokens[j - 1].start, b"NOT ALL".to_vec()),
                    (false, false) => (tokens[j].start, [b"UID ".as_slice(), &set(uids)].concat()),
                    (false, true) => (tokens[j].start, b"NOT ALL".to_vec()),
                };
                edits.push((start, tokens[j].end, text));
            }
        }
        _ => return Saved::Absent,
    }
    if edits.is_empty() {
        return Saved::Absent;
    }
    let mut out = Vec::with_capacity(msg.len() + 32);
    let mut at = 0;
    for (start, end, text) in edits {
        out.extend_from_slice(&msg[at..start]);
        out.extend_from_slice(&text);
        at = end;
    }
    out.extend_from_slice(&msg[at..]);
    Saved::Replaced(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_list_is_parsed() {
        let cmd = parse_list(
            b"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"x/*\" {2}\r\ny%) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(cmd.tag, "a");
        assert_eq!(cmd.reference, b"");
        assert_eq!(cmd.patterns, vec![b"x/*".to_vec(), b"y%".to_vec()]);
        assert!(cmd.options.subscribed && cmd.options.recursive);
        assert_eq!(
            cmd.options.status,
            Some(vec![StatusDataItemName::Messages, StatusDataItemName::Size])
        );
        assert!(parse_list(b"a LIST \"\" *\r\n").is_none());
        assert!(parse_list(b"a LSUB \"\" *\r\n").is_none());
        for bad in [
            &b"a LIST (imaptest) \"\" \"\"\r\n"[..],
            b"a LIST (RECURSIVEMATCH) \"\" \"\"\r\n",
            b"a LIST (RECURSIVEMATCH REMOTE) \"\" \"\"\r\n",
            b"a LIST \"\" \"\" RETURN (imaptest)\r\n",
        ] {
            assert!(parse_list(bad).unwrap().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn saved_result_is_substituted() {
        let Saved::Replaced(out) = substitute_saved(b"a FETCH $ (FLAGS)\r\n", &[7, 9], &[2, 3])
        else {
            panic!()
        };
        assert_eq!(out, b"a FETCH 2:3 (FLAGS)\r\n");
        let Saved::Replaced(out) = substitute_saved(b"a UID COPY $ x\r\n", &[7, 9], &[2, 3]) else {
            panic!()
        };
        assert_eq!(out, b"a UID COPY 7,9 x\r\n");
        let Saved::Replaced(out) =
            substitute_saved(b"a SEARCH SUBJECT $ OR $ UID $\r\n", &[7], &[1])
        else {
            panic!()
        };
        assert_eq!(out, b"a SEARCH SUBJECT $ OR UID 7 UID 7\r\n");
        let Saved::Replaced(out) = substitute_saved(b"a SEARCH UID $ SEEN\r\n", &[], &[]) else {
            panic!()
        };
        assert_eq!(out, b"a SEARCH NOT ALL SEEN\r\n");
        assert!(matches!(
            substitute_saved(b"a STORE $ +FLAGS (x)\r\n", &[], &[]),
            Saved::Empty { .. }
        ));
        assert!(matches!(
            substitute_saved(b"a SELECT $\r\n", &[1], &[1]),
            Saved::Absent
        ));
    }
}
