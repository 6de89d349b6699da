//! Policy records published twice. mail-auth (0.15.1, the newest release)
//! takes the first TXT record that parses, but RFC 7208 section 4.5 makes
//! two `v=spf1` records a `permerror`, and RFC 7489 section 6.6.3 says DMARC
//! is not applied when policy discovery finds more than one `v=DMARC1`
//! record. Tern counts the records itself, through `crate::dns` (same
//! `[dns]` servers), before handing the check to mail-auth.

use crate::dns::{Dns, DnsError};

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

/// Does `domain` publish more than one SPF record? Look-up failures answer
/// "no": mail-auth then reports them as it does today (temperror / none).
pub(super) async fn duplicate_spf(dns: &Dns, domain: &str) -> bool {
    match dns.txt(domain).await {
        Ok(records) => count(&records, "v=spf1") > 1,
        Err(DnsError::NotFound | DnsError::Temporary(_) | DnsError::Config(_)) => false,
    }
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
