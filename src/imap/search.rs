//! SEARCH and UID SEARCH: the common keys of RFC 3501 6.4.4 plus
//! CONDSTORE's MODSEQ, answered with SEARCH or ESEARCH (RFC 4731; always
//! under IMAP4rev2), and SEARCHRES's SAVE (RFC 5182; `rewrite.rs`
//! substitutes `$`). Messages are looked at one at a time, and only as
//! deep as the criteria need: flags, sizes, dates and UIDs come from the
//! index; header keys read the header block; BODY and TEXT read the message.

use super::render;
use super::sections::load;
use super::session::{Outcome, Session};
use crate::store::MessageMeta;
use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::search::SearchKey;
use std::io;

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Need {
    Index,
    Header,
    Full,
}

fn need(key: &SearchKey<'_>) -> Need {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().map(need).max().unwrap_or(Need::Index),
        SearchKey::Not(k) => need(k),
        SearchKey::Or(a, b) => need(a).max(need(b)),
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Subject(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => Need::Header,
        SearchKey::Body(_) | SearchKey::Text(_) => Need::Full,
        _ => Need::Index,
    }
}

/// One message under test.
struct Candidate<'a> {
    seq: usize,
    meta: &'a MessageMeta,
    bytes: &'a [u8],
    count: usize,
    largest_uid: u32,
    /// \Recent in this session.
    recent: bool,
}

fn contains(hay: &str, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    hay.to_lowercase().contains(&needle)
}

fn header_matches(bytes: &[u8], name: &str, needle: &[u8]) -> bool {
    let block = render::header_block(bytes);
    let fields = render::header_fields(block);
    fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .any(|(_, field)| {
            if needle.is_empty() {
                return true;
            }
            let raw = String::from_utf8_lossy(field);
            // Match the raw text and the decoded one (encoded words).
            let decoded = mail_parser::MessageParser::default()
                .parse_headers(*field)
                .and_then(|m| m.headers().first().map(|h| header_text(&h.value)))
                .unwrap_or_default();
            contains(&raw, needle) || contains(&decoded, needle)
        })
}

/// A parsed header value as text: decoded words, names and addresses.
fn header_text(value: &mail_parser::HeaderValue<'_>) -> String {
    use mail_parser::{Address, HeaderValue};
    let addr = |a: &mail_parser::Addr<'_>| {
        format!(
            "{} <{}>",
            a.name.as_deref().unwrap_or(""),
            a.address.as_deref().unwrap_or("")
        )
    };
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        HeaderValue::Address(Address::List(l)) => l.iter().map(addr).collect::<Vec<_>>().join(", "),
        HeaderValue::Address(Address::Group(g)) => g
            .iter()
            .flat_map(|g| g.addresses.iter().map(addr))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

fn sent_date(bytes: &[u8]) -> Option<chrono::NaiveDate> {
    let m = mail_parser::MessageParser::default().parse_headers(render::header_block(bytes))?;
    let d = m.date()?;
    chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
}

fn internal_day(meta: &MessageMeta) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(meta.internal_date, 0)
        .unwrap_or_default()
        .date_naive()
}

fn has(meta: &MessageMeta, flag: &str) -> bool {
    meta.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

fn matches(key: &SearchKey<'_>, c: &Candidate<'_>) -> bool {
    use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
    let in_set = |set: &imap_codec::imap_types::sequence::SequenceSet, n: u32, star: u32| {
        set.0.as_ref().iter().any(|s| {
            let v = |x: &SeqOrUid| match x {
                SeqOrUid::Value(v) => v.get(),
                SeqOrUid::Asterisk => star,
            };
            match s {
                Sequence::Single(x) => v(x) == n,
                Sequence::Range(a, b) => (v(a).min(v(b))..=v(a).max(v(b))).contains(&n),
            }
        })
    };
    let m = c.meta;
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c)),
        SearchKey::Not(k) => !matches(k, c),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        SearchKey::All => true,
        SearchKey::SequenceSet(set) => in_set(set, c.seq as u32, c.count as u32),
        SearchKey::Uid(set) => in_set(set, m.uid, c.largest_uid),
        SearchKey::Answered => has(m, "\\Answered"),
        SearchKey::Unanswered => !has(m, "\\Answered"),
        SearchKey::Deleted => has(m, "\\Deleted"),
        SearchKey::Undeleted => !has(m, "\\Deleted"),
        SearchKey::Draft => has(m, "\\Draft"),
        SearchKey::Undraft => !has(m, "\\Draft"),
        SearchKey::Flagged => has(m, "\\Flagged"),
        SearchKey::Unflagged => !has(m, "\\Flagged"),
        SearchKey::Seen => has(m, "\\Seen"),
        SearchKey::Unseen => !has(m, "\\Seen"),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !has(m, "\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Keyword(k) => has(m, k.as_ref()),
        SearchKey::Unkeyword(k) => !has(m, k.as_ref()),
        SearchKey::Larger(n) => m.size > u64::from(*n),
        SearchKey::Smaller(n) => m.size < u64::from(*n),
        SearchKey::Before(d) => internal_day(m) < *d.as_ref(),
        SearchKey::On(d) => internal_day(m) == *d.as_ref(),
        SearchKey::Since(d) => internal_day(m) >= *d.as_ref(),
        SearchKey::SentBefore(d) => sent_date(c.bytes).is_some_and(|s| s < *d.as_ref()),
        SearchKey::SentOn(d) => sent_date(c.bytes).is_some_and(|s| s == *d.as_ref()),
        SearchKey::SentSince(d) => sent_date(c.bytes).is_some_and(|s| s >= *d.as_ref()),
        SearchKey::Bcc(s) => header_matches(c.bytes, "Bcc", s.as_ref()),
        SearchKey::Cc(s) => header_matches(c.bytes, "Cc", s.as_ref()),
        SearchKey::From(s) => header_matches(c.bytes, "From", s.as_ref()),
        SearchKey::To(s) => header_matches(c.bytes, "To", s.as_ref()),
        SearchKey::Subject(s) => header_matches(c.bytes, "Subject", s.as_ref()),
        SearchKey::Header(name, s) => {
            header_matches(c.bytes, &String::from_utf8_lossy(name.as_ref()), s.as_ref())
        }
        SearchKey::Body(s) | SearchKey::Text(s) => {
            let whole = matches!(key, SearchKey::Text(_));
            let body_start = render::header_block(c.bytes).len();
            let raw = if whole {
                c.bytes
            } else {
                &c.bytes[body_start..]
            };
            if contains(&String::from_utf8_lossy(raw), s.as_ref()) {
                return true;
            }
            // Encoded bodies: look at the decoded text parts too.
            render::parse(c.bytes).is_some_and(|msg| {
                (0..msg.text_body_count())
                    .any(|i| msg.body_text(i).is_some_and(|t| contains(&t, s.as_ref())))
            })
        }
        SearchKey::ModSequence { modseq, .. } => m.modseq >= *modseq,
    }
}

fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        _ => false,
    }
}

impl Session {
    pub async fn search(
        &mut self,
        charset: Option<Charset<'static>>,
        criteria: Vec<SearchKey<'static>>,
        uid: bool,
        tag: &str,
    ) -> io::Result<Outcome> {
        // RETURN options (RFC 4731); IMAP4rev2 answers ESEARCH always.
        let options = match self.search_return.take() {
            Some((_, options)) => Some(options),
            None if self.rev2 => Some(Vec::new()),
            None => None,
        };
        let save = options
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "SAVE"));
        if save {
            // A failed SEARCH ... RETURN (SAVE) leaves `$` empty (RFC 5182 2.1).
            self.saved_result = Some(Vec::new());
        }
        let kept = match self.to_keep(options.as_deref(), tag, &criteria) {
            Ok(kept) => kept,
            Err(outcome) => return Ok(outcome),
        };
        let (positions, with_modseq) = match self.matching(charset, criteria).await {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        let Some(view) = self.view.as_ref() else {
            return Ok(Outcome::Bad("no folder selected".into()));
        };
        let mut found = Vec::new();
        let mut found_uids = Vec::new();
        let mut modseqs = Vec::new();
        for p in positions {
            let meta = &view.messages[p];
            found.push(if uid { meta.uid } else { p as u32 + 1 });
            found_uids.push(meta.uid);
            modseqs.push(meta.modseq);
        }
        if let Some(criteria) = kept {
            self.keep_live(super::updates::LiveSearch {
                tag: tag.to_string(),
                uid,
                criteria,
                sort: None,
                uids: found_uids.clone(),
            })
            .await?;
        }
        let highest = modseqs.iter().copied().max().unwrap_or(0);
        if let Some(options) = options {
            let shown: Vec<String> = options.into_iter().filter(|o| o != "SAVE").collect();
            if save {
                // With only MIN and/or MAX, only those are saved (RFC 5182 2.1).
                let ends_only = !shown.is_empty() && shown.iter().all(|o| o == "MIN" || o == "MAX");
                let picked: Vec<u32> = if ends_only {
                    let mut ends = Vec::new();
                    if shown.iter().any(|o| o == "MIN") {
                        ends.extend(found_uids.first());
                    }
                    if shown.iter().any(|o| o == "MAX") {
                        ends.extend(found_uids.last());
                    }
                    ends.dedup();
                    ends
                } else {
                    found_uids
                };
                self.saved_result = Some(picked);
            }
            // RETURN (SAVE) alone answers nothing but the tagged OK.
            if !save || !shown.is_empty() {
                let line = esearch(tag, uid, &shown, &found, &modseqs, with_modseq);
                self.conn.write_buffered(line.as_bytes()).await?;
            }
            return Ok(Outcome::Ok("SEARCH completed".into()));
        }
        let mut line = String::from("* SEARCH");
        for n in &found {
            line.push_str(&format!(" {n}"));
        }
        if with_modseq && !found.is_empty() {
            line.push_str(&format!(" (MODSEQ {highest})"));
        }
        line.push_str("\r\n");
        self.conn.write_buffered(line.as_bytes()).await?;
        Ok(Outcome::Ok("SEARCH completed".into()))
    }

    /// The positions in the selected folder that match `criteria`
    /// (ascending), and whether they used CONDSTORE's MODSEQ (which
    /// enables CONDSTORE). `Err` is the command's answer: a charset other
    /// than UTF-8 / US-ASCII, or no criteria. Shared by SEARCH, SORT and
    /// THREAD.
    pub async fn matching(
        &mut self,
        charset: Option<Charset<'static>>,
        criteria: Vec<SearchKey<'static>>,
    ) -> Result<(Vec<usize>, bool), Outcome> {
        if let Some(cs) = &charset {
            let cs = cs.as_ref();
            if !cs.eq_ignore_ascii_case("UTF-8") && !cs.eq_ignore_ascii_case("US-ASCII") {
                return Err(Outcome::No(
                    "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset".into(),
                ));
            }
        }
        let key = SearchKey::And(match criteria.try_into() {
            Ok(v) => v,
            Err(_) => return Err(Outcome::Bad("empty search".into())),
        });
        let with_modseq = uses_modseq(&key);
        if with_modseq {
            self.condstore = true;
        }
        let depth = need(&key);
        let store = self.ctx.store.clone();
        let Some(view) = self.view.as_ref() else {
            return Err(Outcome::Bad("no folder selected".into()));
        };
        let count = view.messages.len();
        let largest_uid = view.messages.last().map(|m| m.uid).unwrap_or(0);
        let mut found = Vec::new();
        for (i, meta) in view.messages.iter().enumerate() {
            let bytes = match depth {
                Need::Index => Vec::new(),
                d => match load(&store, meta, d == Need::Header).await {
                    Ok(b) => b,
                    Err(_) => continue,
                },
            };
            let c = Candidate {
                seq: i + 1,
                meta,
                bytes: &bytes,
                count,
                largest_uid,
                recent: view.recent.contains(&meta.uid),
            };
            if matches(&key, &c) {
                found.push(i);
            }
        }
        Ok((found, with_modseq))
    }
}

/// The ESEARCH response (RFC 4731) for RETURN `options` (empty: ALL), with
/// CONDSTORE's MODSEQ (RFC 7162 3.1.5: of the returned MIN/MAX messages
/// when only those were asked for, else the highest of all matches).
fn esearch(
    tag: &str,
    uid: bool,
    options: &[String],
    found: &[u32],
    modseqs: &[u64],
    with_modseq: bool,
) -> String {
    let want = |o: &str| options.is_empty() && o == "ALL" || options.iter().any(|x| x == o);
    let mut line = String::from("* ESEARCH (TAG ");
    let mut quoted = Vec::new();
    super::wire::string(&mut quoted, tag.as_bytes());
    line.push_str(&String::from_utf8_lossy(&quoted));
    line.push(')');
    if uid {
        line.push_str(" UID");
    }
    // `found` is ascending (sequence or UID order alike).
    let (min, max) = (found.first(), found.last());
    if let (true, Some(m)) = (want("MIN"), min) {
        line.push_str(&format!(" MIN {m}"));
    }
    if let (true, Some(m)) = (want("MAX"), max) {
        line.push_str(&format!(" MAX {m}"));
    }
    if want("COUNT") {
        line.push_str(&format!(" COUNT {}", found.len()));
    }
    if want("ALL") && !found.is_empty() {
        line.push_str(&format!(" ALL {}", super::wire::sequence_set(found)));
    }
    if let Some(range) = partial_option(options) {
        line.push_str(&partial_item(range, found, super::wire::sequence_set));
    }
    if with_modseq && !found.is_empty() {
        let only_ends = !want("ALL") && !want("COUNT");
        let modseq = if only_ends {
            let mut m = 0;
            if want("MIN") {
                m = m.max(modseqs[0]);
            }
            if want("MAX") {
                m = m.max(modseqs[modseqs.len() - 1]);
            }
            m
        } else {
            modseqs.iter().copied().max().unwrap_or(0)
        };
        line.push_str(&format!(" MODSEQ {modseq}"));
    }
    line.push_str("\r\n");
    line
}

/// PARTIAL's range `m:n` (either order), both non-zero numbers.
fn partial_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && b > 0).then_some((a.min(b), a.max(b)))
}

/// The PARTIAL option among `options`, if any.
pub fn partial_option(options: &[String]) -> Option<(u32, u32)> {
    options
        .iter()
        .find_map(|o| o.strip_prefix("PARTIAL ").and_then(partial_range))
}

/// ` PARTIAL (m:n set)` or ` PARTIAL (m:n NIL)`: the `lo`-th to `hi`-th
/// of `results` (in their order), rendered by `set`.
pub fn partial_item(range: (u32, u32), results: &[u32], set: impl Fn(&[u32]) -> String) -> String {
    let (lo, hi) = range;
    let start = (lo as usize - 1).min(results.len());
    let end = (hi as usize).min(results.len());
    let picked = &results[start..end];
    let shown = if picked.is_empty() {
        "NIL".to_string()
    } else {
        set(picked)
    };
    format!(" PARTIAL ({lo}:{hi} {shown})")
}

/// A command without its RETURN part, and the RETURN options.
pub type Stripped = (Vec<u8>, Vec<String>);

/// ESEARCH's `SEARCH RETURN (...)` and ESORT's `SORT RETURN (...)` (RFC
/// 5267), which imap-codec does not parse: if the command `message` is
/// `tag [UID] SEARCH|SORT RETURN (opts) ...`, returns
/// it without the RETURN part (for the codec) and the options, upper case.
/// `Err` for options other than MIN, MAX, ALL, COUNT and SAVE (SORT: no SAVE).
pub fn strip_search_return(message: &[u8]) -> Option<Result<Stripped, String>> {
    let line_end = message
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(message.len());
    let line = &message[..line_end];
    let mut pos = line.iter().position(|&b| b == b' ')? + 1;
    let word = |pos: usize| -> &[u8] {
        let end = line[pos..]
            .iter()
            .position(|&b| b == b' ')
            .map(|e| pos + e)
            .unwrap_or(line.len());
        &line[pos..end]
    };
    if word(pos).eq_ignore_ascii_case(b"UID") {
        pos += 4;
    }
    let sort = word(pos).eq_ignore_ascii_case(b"SORT");
    if !sort && !word(pos).eq_ignore_ascii_case(b"SEARCH") {
        return None;
    }
    pos += if sort { 5 } else { 7 };
    let rest = line.get(pos..)?;
    if rest.len() < 8 || !rest[..8].eq_ignore_ascii_case(b"RETURN (") {
        return None;
    }
    let open = pos + 8;
    let close = open + line[open..].iter().position(|&b| b == b')')?;
    let words: Vec<String> = String::from_utf8_lossy(&line[open..close])
        .split_ascii_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let mut options = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "MIN" | "MAX" | "ALL" | "COUNT" | "UPDATE" => options.push(word),
            "SAVE" if !sort => options.push(word),
            // RFC 5267 4.4: PARTIAL m:n, both non-zero numbers.
            "PARTIAL" => match words.next().as_deref().and_then(partial_range) {
                Some((lo, hi)) => options.push(format!("PARTIAL {lo}:{hi}")),
                None => return Some(Err("PARTIAL needs a range m:n".into())),
            },
            bad => return Some(Err(format!("RETURN option {bad} is not supported"))),
        }
    }
    // Skip the space after ")", keep everything else (literals included).
    let after = message.get(close + 1..)?;
    let after = after.strip_prefix(b" ").unwrap_or(after);
    let mut out = message[..pos].to_vec();
    out.extend_from_slice(after);
    Some(Ok((out, options)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_return_is_stripped() {
        let (cmd, opts) = strip_search_return(b"a1 UID SEARCH RETURN (min Count) SEEN\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cmd, b"a1 UID SEARCH SEEN\r\n");
        assert_eq!(opts, vec!["MIN", "COUNT"]);
        let (cmd, opts) = strip_search_return(b"a SEARCH RETURN () SUBJECT {3}\r\nabc\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cmd, b"a SEARCH SUBJECT {3}\r\nabc\r\n");
        assert!(opts.is_empty());
        assert!(strip_search_return(b"a SEARCH ALL\r\n").is_none());
        let (cmd, opts) = strip_search_return(b"a UID SORT RETURN (COUNT) (DATE) UTF-8 ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(cmd, b"a UID SORT (DATE) UTF-8 ALL\r\n");
        assert_eq!(opts, vec!["COUNT"]);
        assert!(strip_search_return(b"a FETCH 1 ALL\r\n").is_none());
        assert!(
            strip_search_return(b"a SEARCH RETURN (PARTIAL 1:*) ALL\r\n")
                .unwrap()
                .is_err()
        );
        let (_, opts) = strip_search_return(b"a SEARCH RETURN (PARTIAL 5:2 COUNT) ALL\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(opts, vec!["PARTIAL 2:5", "COUNT"]);
        assert!(
            strip_search_return(b"a SEARCH RETURN (PARTIAL 1) ALL\r\n")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn esearch_lines() {
        let l = esearch("t", true, &[], &[1, 2, 3, 5], &[4, 9, 2, 3], false);
        assert_eq!(l, "* ESEARCH (TAG \"t\") UID ALL 1:3,5\r\n");
        let l = esearch(
            "t",
            false,
            &["MIN".into(), "MAX".into()],
            &[2, 3],
            &[7, 5],
            true,
        );
        assert_eq!(l, "* ESEARCH (TAG \"t\") MIN 2 MAX 3 MODSEQ 7\r\n");
        let l = esearch("t", false, &["COUNT".into()], &[], &[], true);
        assert_eq!(l, "* ESEARCH (TAG \"t\") COUNT 0\r\n");
    }
}
