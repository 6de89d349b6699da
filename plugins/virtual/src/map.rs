//! The alias map: parsing the `map` config value and resolving an address
//! through it (sub-address details, catch-alls, domain aliases, chains).
//! Standard library only, so the host workspace's tests include this file
//! and run its unit tests natively.

use std::collections::{BTreeMap, BTreeSet};

/// How deep alias chains are followed.
const MAX_DEPTH: usize = 8;

/// What an address resolves to.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not in the map, not a virtual domain: leave it to others.
    NotOurs,
    /// In a virtual domain, but matching nothing.
    Unknown,
    /// Deliver to these addresses instead.
    To(Vec<String>),
}

#[derive(Debug, Default)]
pub struct AliasMap {
    /// `local@domain` or `@domain` (lower case) → targets as written.
    entries: BTreeMap<String, Vec<String>>,
    /// Domains whose every address must be in the map.
    virtual_domains: BTreeSet<String>,
    /// Domains whose unmatched `local+detail` becomes `local`.
    subaddress_domains: BTreeSet<String>,
    /// The detail separator (empty: no sub-addressing).
    separator: String,
}

fn domains(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// `local@domain` with the domain lower-cased (local parts compare
/// case-insensitively here too: the map is the operator's, not a mailbox).
fn split(address: &str) -> Option<(String, String)> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (l, d) = a.rsplit_once('@')?;
    Some((l.to_ascii_lowercase(), d.to_ascii_lowercase()))
}

impl AliasMap {
    /// Parses `map` (`key = target, target; …`, newlines also separate
    /// entries) and the domain lists.
    pub fn from_config(
        map: &str,
        virtual_domains: &str,
        subaddress_domains: &str,
        separator: &str,
    ) -> Result<AliasMap, String> {
        let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in map
            .split([';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (key, targets) = entry
                .split_once('=')
                .ok_or_else(|| format!("config map: {entry:?} is not `address = target, …`"))?;
            let key = key.trim().to_ascii_lowercase();
            if split(&key).is_none_or(|(_, d)| d.is_empty()) {
                return Err(format!(
                    "config map: key {key:?} is not an address or @domain"
                ));
            }
            let targets: Vec<String> = targets
                .split([',', ' ', '\t'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            if targets.is_empty() {
                return Err(format!("config map: {key:?} has no target"));
            }
            for t in &targets {
                if split(t).is_none_or(|(_, d)| d.is_empty()) {
                    return Err(format!(
                        "config map: target {t:?} of {key:?} is not an address or @domain"
                    ));
                }
            }
            entries.entry(key).or_default().extend(targets);
        }
        Ok(AliasMap {
            entries,
            virtual_domains: domains(virtual_domains),
            subaddress_domains: domains(subaddress_domains),
            separator: separator.trim().to_string(),
        })
    }

    /// The entry an address falls under: itself, without its detail, the
    /// domain's catch-all. Returns the entry's targets and the local part
    /// they apply to (for `@domain` targets).
    fn find(&self, local: &str, domain: &str) -> Option<(&Vec<String>, String)> {
        if let Some(t) = self.entries.get(&format!("{local}@{domain}")) {
            return Some((t, local.to_string()));
        }
        if let Some(base) = self.base(local)
            && let Some(t) = self.entries.get(&format!("{base}@{domain}"))
        {
            return Some((t, base.to_string()));
        }
        self.entries
            .get(&format!("@{domain}"))
            .map(|t| (t, local.to_string()))
    }

    /// `bob` of `bob+lists`, when there is a detail.
    fn base<'a>(&self, local: &'a str) -> Option<&'a str> {
        if self.separator.is_empty() {
            return None;
        }
        local
            .split_once(self.separator.as_str())
            .map(|(b, _)| b)
            .filter(|b| !b.is_empty())
    }

    /// Where mail for `address` goes.
    pub fn resolve(&self, address: &str) -> Lookup {
        let Some((local, domain)) = split(address) else {
            return Lookup::NotOurs;
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        if self.expand(&local, &domain, 0, &mut seen, &mut out) {
            return Lookup::To(out);
        }
        if self.virtual_domains.contains(&domain) {
            return Lookup::Unknown;
        }
        if self.subaddress_domains.contains(&domain)
            && let Some(base) = self.base(&local)
        {
            return Lookup::To(vec![format!("{base}@{domain}")]);
        }
        Lookup::NotOurs
    }

    /// Appends the final targets of `local@domain` to `out`; false when the
    /// map has no entry for it.
    fn expand(
        &self,
        local: &str,
        domain: &str,
        depth: usize,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) -> bool {
        let Some((targets, matched_local)) = self.find(local, domain) else {
            return false;
        };
        if !seen.insert(format!("{local}@{domain}")) {
            return true; // a loop: this branch adds nothing more
        }
        for t in targets {
            let target = match t.strip_prefix('@') {
                Some(d) => format!("{matched_local}@{}", d.to_ascii_lowercase()),
                None => t.clone(),
            };
            let further = depth + 1 < MAX_DEPTH
                && split(&target).is_some_and(|(l, d)| {
                    // Only exact keys chain: a catch-all must not swallow
                    // the addresses it points at in its own domain.
                    self.entries.contains_key(&format!("{l}@{d}"))
                        && self.expand(&l, &d, depth + 1, seen, out)
                });
            if !further && !out.iter().any(|o| o.eq_ignore_ascii_case(&target)) {
                out.push(target);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> AliasMap {
        AliasMap::from_config(
            "sales@v.test = bob@example.test, carol@example.test; info@v.test=bob@example.test\n\
             ext@v.test = dave@remote.test; team@v.test = sales@v.test, ext@v.test, Erin@Remote.test;\
             @catch.test = carol@example.test; @old.test = @new.test; loop@v.test = loop2@v.test; loop2@v.test = loop@v.test, bob@example.test",
            "v.test",
            "example.test",
            "+",
        )
        .expect("map")
    }

    fn to(list: &[&str]) -> Lookup {
        Lookup::To(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn aliases_catch_alls_details_and_chains() {
        let m = map();
        assert_eq!(
            m.resolve("Sales@V.test"),
            to(&["bob@example.test", "carol@example.test"])
        );
        assert_eq!(m.resolve("info+news@v.test"), to(&["bob@example.test"]));
        assert_eq!(m.resolve("nobody@v.test"), Lookup::Unknown);
        assert_eq!(m.resolve("whoever@catch.test"), to(&["carol@example.test"]));
        assert_eq!(m.resolve("zed@old.test"), to(&["zed@new.test"]));
        assert_eq!(
            m.resolve("bob+lists@example.test"),
            to(&["bob@example.test"])
        );
        assert_eq!(m.resolve("bob@example.test"), Lookup::NotOurs);
        assert_eq!(m.resolve("x+y@elsewhere.test"), Lookup::NotOurs);
        assert_eq!(
            m.resolve("team@v.test"),
            to(&[
                "bob@example.test",
                "carol@example.test",
                "dave@remote.test",
                "Erin@Remote.test"
            ])
        );
        assert_eq!(m.resolve("loop@v.test"), to(&["bob@example.test"]));
    }

    #[test]
    fn bad_maps_are_refused() {
        for bad in [
            "sales@v.test",
            "sales = bob@x.test",
            "sales@v.test =",
            "a@v.test = nobody",
        ] {
            assert!(AliasMap::from_config(bad, "", "", "+").is_err(), "{bad}");
        }
        let m = AliasMap::from_config("a@v.test = b@x.test", "", "", "").expect("map");
        assert_eq!(m.resolve("a+z@v.test"), Lookup::NotOurs);
    }
}
