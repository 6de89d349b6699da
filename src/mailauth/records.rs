//! Policy records published twice. mail-auth (0.15.1, the newest release)
//! takes the first TXT record that parses, but RFC 7208 section 4.5 makes
//! two `v=spf1` records a `permerror`, and RFC 7489 section 6.6.3 says DMARC
//! is not applied when policy discovery finds more than one `v=DMARC1`
//! record. Tern counts the records itself, through `crate::dns` (same
//! `[dns]` servers), before handing the check to mail-auth.
//!
//! For SPF this covers the `include:` and `redirect=` targets too (section
//! 4.5 applies to every check_host): before the check, the names the
//! record reaches (literal domain-specs, within the 10-lookup limit) are
//! looked at, and those with two records go to mail-auth as a cached parse
//! error (`SpfVerdicts`), which it turns into `permerror` exactly when its
//! evaluation reaches them.

use crate::dns::{Dns, DnsError};
use mail_auth::dns::{DnsCache, NoCache, ResolverCache, TxtRecord, TxtRecordParser as _};
use mail_auth::spf::{Macro, Mechanism, SpfRecord};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Does `record` begin with the version tag `tag` (case-insensitive),
/// followed by the end, a space or (for DMARC) a semicolon?
fn has_version(record: &str, tag: &str) -> bool {
    let r = record.trim_start();
    r.len() >= tag.len()
        && r.as_bytes()[..tag.len()].eq_ignore_ascii_case(tag.as_bytes())
        && matches!(
            r.as_bytes().get(tag.len()),
            None | Some(b' ' | b';' | b'\t')
        )
}

/// How many of `records` carry the version tag `tag`.
fn count(records: &[String], tag: &str) -> usize {
    records.iter().filter(|r| has_version(r, tag)).count()
}

/// RFC 7208 section 4.6.4: at most 10 names reached through DNS.
const SPF_LOOKUP_LIMIT: usize = 10;

/// The names whose SPF records are published more than once, answered to
/// mail-auth as a parse error (its way to `permerror`); every other TXT
/// look-up goes to DNS as usual. A cache in mail-auth's terms, written to
/// by Tern only.
#[derive(Default)]
pub(super) struct SpfVerdicts {
    txt: Verdicts,
}

#[derive(Default)]
pub(super) struct Verdicts(HashMap<Box<str>, TxtRecord>);

impl ResolverCache<Box<str>, TxtRecord> for Verdicts {
    fn get<Q>(&self, name: &Q) -> Option<TxtRecord>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<TxtRecord>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    /// mail-auth's own answers are not kept: this holds verdicts only.
    fn insert(&self, _: Box<str>, _: TxtRecord, _: std::time::Instant) {}
}

impl DnsCache for SpfVerdicts {
    type Txt = Verdicts;
    type Mx = NoCache;
    type Ipv4 = NoCache;
    type Ipv6 = NoCache;
    type Ptr = NoCache;

    fn txt(&self) -> Option<&Verdicts> {
        Some(&self.txt)
    }
    fn mx(&self) -> Option<&NoCache> {
        None
    }
    fn ipv4(&self) -> Option<&NoCache> {
        None
    }
    fn ipv6(&self) -> Option<&NoCache> {
        None
    }
    fn ptr(&self) -> Option<&NoCache> {
        None
    }
}

impl SpfVerdicts {
    pub(super) fn is_empty(&self) -> bool {
        self.txt.0.is_empty()
    }
}

/// A domain-spec that is a plain name (no macro to expand), lower-case.
fn literal(m: &Macro) -> Option<String> {
    match m {
        Macro::Literal(b) => std::str::from_utf8(b)
            .ok()
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase()),
        _ => None,
    }
}

/// Looks at `domain` and the `include:` / `redirect=` targets its record
/// reaches; those that publish more than one SPF record become verdicts.
/// Look-up failures are left to mail-auth (temperror / none as usual).
pub(super) async fn spf_duplicates(dns: &Dns, domain: &str) -> SpfVerdicts {
    let mut verdicts = SpfVerdicts::default();
    let mut queue = vec![domain.trim_end_matches('.').to_ascii_lowercase()];
    let mut seen: Vec<String> = Vec::new();
    while let Some(name) = queue.pop() {
        if seen.contains(&name) || seen.len() > SPF_LOOKUP_LIMIT {
            continue;
        }
        seen.push(name.clone());
        let records = match dns.txt(&name).await {
            Ok(r) => r,
            Err(DnsError::NotFound | DnsError::Temporary(_) | DnsError::Config(_)) => continue,
        };
        let spf: Vec<&String> = records
            .iter()
            .filter(|r| has_version(r, "v=spf1"))
            .collect();
        if spf.len() > 1 {
            let fqdn = format!("{name}.").into_boxed_str();
            verdicts
                .txt
                .0
                .insert(fqdn, TxtRecord::Error(mail_auth::Error::Parse));
            continue;
        }
        let Some(record) = spf
            .first()
            .and_then(|r| SpfRecord::parse(r.as_bytes()).ok())
        else {
            continue;
        };
        for d in record.directives.iter() {
            if let Mechanism::Include { macro_string } = &d.mechanism
                && let Some(target) = literal(macro_string)
            {
                queue.push(target);
            }
        }
        if let Some(target) = record.redirect.as_ref().and_then(literal) {
            queue.push(target);
        }
    }
    verdicts
}

/// The first name, from `from_domain` up towards (not including) the top
/// level, where `_dmarc.NAME` publishes a DMARC record, when it publishes
/// more than one: DMARC is then not applied. `None` when the first record
/// found is alone (mail-auth evaluates it) or nothing is found.
pub(super) async fn duplicate_dmarc(dns: &Dns, from_domain: &str) -> Option<String> {
    let domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    for start in 0..labels.len().saturating_sub(1) {
        let name = labels[start..].join(".");
        let found = match dns.txt(&format!("_dmarc.{name}")).await {
            Ok(records) => count(&records, "v=DMARC1"),
            Err(_) => 0,
        };
        match found {
            0 => continue,
            1 => return None,
            _ => return Some(name),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_answer_only_their_names() {
        let mut v = SpfVerdicts::default();
        v.txt.0.insert(
            "two.test.".into(),
            TxtRecord::Error(mail_auth::Error::Parse),
        );
        assert!(v.txt.get("two.test.").is_some());
        assert!(v.txt.get("one.test.").is_none());
        assert!(!v.is_empty());
    }

    #[test]
    fn version_tags() {
        let recs: Vec<String> = [
            "v=spf1 -all",
            "V=SPF1 ip4:192.0.2.1 -all",
            "v=spf10 -all",
            "v=spf1",
            "google-site-verification=x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(count(&recs, "v=spf1"), 3);
        let d: Vec<String> = ["v=DMARC1; p=reject", "v=DMARC1;p=none", "v=DMARC10"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(count(&d, "v=DMARC1"), 2);
    }
}
