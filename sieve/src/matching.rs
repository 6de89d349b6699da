//! Comparators and match types: `:is`, `:contains`, `:matches` (with the
//! wildcard captures that become `${1}`..), `:regex` (the `regex` crate:
//! linear-time, no backreferences, size-limited) and the relational
//! `:value`/`:count` (RFC 5231) under `i;octet`, `i;ascii-casemap` and
//! `i;ascii-numeric` (RFC 4790).

use std::cmp::Ordering;

use crate::script::{Comparator, MatchType, Matcher, RelOp};

/// Longest value or key the wildcard matcher accepts (longer ones are cut).
const MAX_WILDCARD_INPUT: usize = 64 * 1024;

/// Compares `value` with `key` under `m`; on a `:matches`/`:regex` success,
/// `captures` receives `${0}`.. (`None` when the match type captures nothing).
pub fn match_value(m: Matcher, value: &str, key: &str, captures: &mut Option<Vec<String>>) -> bool {
    match m.kind {
        MatchType::Is => compare(m.comparator, value, key) == Some(Ordering::Equal),
        MatchType::Contains => match m.comparator {
            Comparator::Octet => value.contains(key),
            _ => value
                .to_ascii_lowercase()
                .contains(&key.to_ascii_lowercase()),
        },
        MatchType::Matches => {
            let fold = m.comparator != Comparator::Octet;
            match wildcard(value, key, fold) {
                Some(caps) => {
                    *captures = Some(caps);
                    true
                }
                None => false,
            }
        }
        MatchType::Regex => {
            compile_regex(m, key).is_some_and(|re| regex_match(&re, value, captures))
        }
        MatchType::Value(op) => compare(m.comparator, value, key).is_some_and(|o| relop(op, o)),
        MatchType::Count(_) => false,
    }
}

/// Builds the regex of a `:regex` key (case-insensitive unless i;octet;
/// size- and nesting-limited). `None` for an invalid expression, which
/// matches nothing.
pub fn compile_regex(m: Matcher, key: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(key)
        .case_insensitive(m.comparator != Comparator::Octet)
        .size_limit(1 << 20)
        .nest_limit(64)
        .build()
        .ok()
}

/// Matches `value` against a compiled `:regex` key; `${0}`..`${9}` on success.
pub fn regex_match(re: &regex::Regex, value: &str, captures: &mut Option<Vec<String>>) -> bool {
    match re.captures(value) {
        Some(c) => {
            *captures = Some(
                (0..c.len().min(10))
                    .map(|i| c.get(i).map(|g| g.as_str().to_string()).unwrap_or_default())
                    .collect(),
            );
            true
        }
        None => false,
    }
}

/// The `:count` match: `count` values against each key.
pub fn match_count(m: Matcher, count: usize, keys: &[String]) -> bool {
    let MatchType::Count(op) = m.kind else {
        return false;
    };
    let v = count.to_string();
    keys.iter()
        .any(|k| compare(m.comparator, &v, k).is_some_and(|o| relop(op, o)))
}

fn relop(op: RelOp, o: Ordering) -> bool {
    match op {
        RelOp::Gt => o == Ordering::Greater,
        RelOp::Ge => o != Ordering::Less,
        RelOp::Lt => o == Ordering::Less,
        RelOp::Le => o != Ordering::Greater,
        RelOp::Eq => o == Ordering::Equal,
        RelOp::Ne => o != Ordering::Equal,
    }
}

/// Orders `a` against `b`; `None` never happens today but keeps room for
/// comparators with undefined orderings.
pub fn compare(c: Comparator, a: &str, b: &str) -> Option<Ordering> {
    Some(match c {
        Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
        // RFC 4790 section 9.2: i;ascii-casemap maps to upper case.
        Comparator::AsciiCasemap => a
            .to_ascii_uppercase()
            .as_bytes()
            .cmp(b.to_ascii_uppercase().as_bytes()),
        Comparator::AsciiNumeric => numeric(a).cmp(&numeric(b)),
    })
}

/// RFC 4790 section 9.1: the leading digits as a number; none means
/// positive infinity (sorted after every number).
fn numeric(s: &str) -> (bool, usize, String) {
    let digits: &str = &s[..s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len())];
    if digits.is_empty() {
        return (true, 0, String::new());
    }
    let t = digits.trim_start_matches('0');
    (false, t.len(), t.to_string())
}

/// A `:matches` pattern element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pat {
    Lit(char),
    One,
    Any,
}

fn compile_pattern(key: &str) -> Vec<Pat> {
    let mut out = Vec::new();
    let mut it = key.chars();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => Pat::Any,
            '?' => Pat::One,
            '\\' => match it.next() {
                Some(e) => Pat::Lit(e),
                None => Pat::Lit('\\'),
            },
            c => Pat::Lit(c),
        });
    }
    out
}

/// Matches `value` against the wildcard `key`; each `*` takes as little as
/// it can (as Pigeonhole does). Returns `${0}`, then one capture per
/// wildcard. Only the latest `*` is ever widened (the earliest placement of
/// each literal run is always safe), so this is O(len(value) × len(key)).
pub fn wildcard(value: &str, key: &str, fold: bool) -> Option<Vec<String>> {
    let v: Vec<char> = value.chars().take(MAX_WILDCARD_INPUT).collect();
    let p = compile_pattern(&key.chars().take(MAX_WILDCARD_INPUT).collect::<String>());
    let eq = |a: char, b: char| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let mut caps: Vec<(usize, usize)> = Vec::new();
    // The latest `*`: its pattern index, capture start, capture end, capture slot.
    let mut star: Option<(usize, usize, usize, usize)> = None;
    let (mut pi, mut vi) = (0usize, 0usize);
    loop {
        match p.get(pi) {
            Some(Pat::Any) => {
                star = Some((pi, vi, vi, caps.len()));
                caps.push((vi, vi));
                pi += 1;
                continue;
            }
            Some(Pat::Lit(c)) if vi < v.len() && eq(v[vi], *c) => {
                pi += 1;
                vi += 1;
                continue;
            }
            Some(Pat::One) if vi < v.len() => {
                caps.push((vi, vi + 1));
                pi += 1;
                vi += 1;
                continue;
            }
            None if vi == v.len() => {
                let mut out = vec![value.to_string()];
                out.extend(
                    caps.iter()
                        .map(|&(a, b)| v[a..b].iter().collect::<String>()),
                );
                return Some(out);
            }
            _ => {}
        }
        let (sp, start, end, slot) = star?;
        if end >= v.len() {
            return None;
        }
        star = Some((sp, start, end + 1, slot));
        caps.truncate(slot);
        caps.push((start, end + 1));
        pi = sp + 1;
        vi = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_take_the_shortest() {
        assert_eq!(
            wildcard("aXbYbZ", "*b*", false),
            Some(vec!["aXbYbZ".into(), "aX".into(), "YbZ".into()])
        );
        assert_eq!(
            wildcard("aXbYbZ", "a*?b*", false),
            Some(vec!["aXbYbZ".into(), "".into(), "X".into(), "YbZ".into()])
        );
        assert_eq!(wildcard("abc", "a\\*c", false), None);
        assert!(wildcard("a*c", "a\\*c", false).is_some());
        assert!(wildcard("ABC", "a?c", true).is_some());
        assert!(wildcard("", "*", true).is_some());
        assert!(wildcard(&"a".repeat(5000), &"*a".repeat(200), true).is_some());
        assert!(wildcard(&"a".repeat(3000), &format!("{}b", "*a".repeat(100)), true).is_none());
    }

    #[test]
    fn numeric_ordering() {
        assert_eq!(
            compare(Comparator::AsciiNumeric, "010", "10"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(Comparator::AsciiNumeric, "abc", "99999"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(Comparator::AsciiNumeric, "9", "10"),
            Some(Ordering::Less)
        );
    }
}
