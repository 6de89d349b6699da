//! Variables (RFC 5229): `${name}` and `${N}` expansion in strings, the
//! `set` modifiers, and the size limit each value is cut to.

use std::collections::HashMap;

use crate::script::Modifier;

/// Longest value a variable holds (Pigeonhole's default, 4 KiB).
pub const MAX_VARIABLE_SIZE: usize = 4096;

/// Named variables and the match variables of the last successful match.
#[derive(Debug, Default, Clone)]
pub struct Vars {
    pub named: HashMap<String, String>,
    pub matched: Vec<String>,
}

impl Vars {
    /// Expands `${...}` references in `s`; unknown names expand to "",
    /// malformed references stay as written.
    pub fn expand(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            match after.find('}') {
                Some(end) if is_reference(&after[..end]) => {
                    out.push_str(&self.lookup(&after[..end]));
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn lookup(&self, name: &str) -> String {
        if name.bytes().all(|b| b.is_ascii_digit()) {
            let n: usize = name.trim_start_matches('0').parse().unwrap_or(0);
            self.matched.get(n).cloned().unwrap_or_default()
        } else {
            self.named
                .get(&name.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()
        }
    }

    /// Sets a named variable, cut to [`MAX_VARIABLE_SIZE`].
    pub fn set(&mut self, name: &str, value: String) {
        self.named
            .insert(name.to_ascii_lowercase(), truncate(value));
    }

    /// Replaces the match variables (after a successful `:matches`/`:regex`).
    pub fn set_matched(&mut self, caps: Vec<String>) {
        self.matched = caps.into_iter().map(truncate).collect();
    }
}

fn is_reference(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    name.split('.').all(is_identifier)
}

/// An RFC 5228 identifier: a letter or `_`, then letters, digits and `_`.
pub fn is_identifier(p: &str) -> bool {
    !p.is_empty()
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !p.as_bytes()[0].is_ascii_digit()
}

/// Cuts `v` to [`MAX_VARIABLE_SIZE`] bytes at a character boundary.
pub fn truncate(mut v: String) -> String {
    if v.len() > MAX_VARIABLE_SIZE {
        let mut end = MAX_VARIABLE_SIZE;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        v.truncate(end);
    }
    v
}

/// Applies `mods` (already sorted by descending precedence).
pub fn apply_modifiers(mods: &[Modifier], mut v: String) -> String {
    for m in mods {
        v = match m {
            Modifier::Lower => v.to_lowercase(),
            Modifier::Upper => v.to_uppercase(),
            Modifier::LowerFirst => first_with(&v, |c| c.to_lowercase().collect()),
            Modifier::UpperFirst => first_with(&v, |c| c.to_uppercase().collect()),
            Modifier::QuoteWildcard => {
                let mut o = String::with_capacity(v.len());
                for c in v.chars() {
                    if matches!(c, '*' | '?' | '\\') {
                        o.push('\\');
                    }
                    o.push(c);
                }
                o
            }
            Modifier::QuoteRegex => regex::escape(&v),
            Modifier::Length => v.chars().count().to_string(),
        };
    }
    v
}

fn first_with(v: &str, f: impl Fn(char) -> String) -> String {
    let mut it = v.chars();
    match it.next() {
        Some(c) => f(c) + it.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let mut v = Vars::default();
        v.set("Company", "ACME".into());
        v.set_matched(vec!["all".into(), "one".into()]);
        assert_eq!(v.expand("${company}-${1}-${2}-${0}"), "ACME-one--all");
        assert_eq!(v.expand("${bad name}${"), "${bad name}${");
        assert_eq!(v.expand("$${company}}"), "$ACME}");
    }

    #[test]
    fn modifiers() {
        let m = [Modifier::Lower, Modifier::UpperFirst];
        assert_eq!(apply_modifiers(&m, "hELLO".into()), "Hello");
        assert_eq!(
            apply_modifiers(&[Modifier::QuoteWildcard, Modifier::Length], "a*b".into()),
            "4"
        );
    }
}
