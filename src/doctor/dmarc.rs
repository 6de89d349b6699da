//! DMARC (RFC 7489): each domain publishes one record at `_dmarc.domain`
//! (parsed by mail-auth) with a policy that asks receivers to act (`p=`
//! quarantine or reject; `none` only monitors) and an `rua` address for
//! aggregate reports. Tern signs with `d=` the domain itself and sends
//! with MAIL FROM in it, so both identifiers align under strict alignment
//! too; what alignment needs is a DKIM key (see `dkim.rs`) and SPF. A
//! subdomain without a record of its own is covered by its parent's.

use super::Doctor;
use super::records::txt;
use crate::dns::DnsError;
use mail_auth::dmarc::{DmarcRecord, Policy};
use mail_auth::dns::TxtRecordParser;

pub(super) async fn check(d: &mut Doctor<'_>, domain: &str) {
    let name = format!("_dmarc.{domain}");
    let suggested = format!("v=DMARC1; p=reject; rua=mailto:postmaster@{domain}");
    let records = match d.dns.txt(&name).await {
        Ok(list) => list,
        Err(DnsError::NotFound) => Vec::new(),
        Err(e) => {
            d.warning("dmarc", domain, format!("{name} look-up failed: {e}"), None);
            return;
        }
    };
    let dmarc: Vec<&String> = records
        .iter()
        .filter(|r| r.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
        .collect();
    let record = match dmarc.as_slice() {
        [] => {
            match inherited(d, domain).await {
                Some((parent, policy)) if acts(policy) => d.ok(
                    "dmarc",
                    domain,
                    format!("no record of its own; {parent} applies to it: policy {policy}"),
                ),
                Some((parent, policy)) => d.warning(
                    "dmarc",
                    domain,
                    format!(
                        "no record of its own; {parent} applies to it with policy {policy}: \
                         receivers are asked to do nothing with mail that fails DMARC"
                    ),
                    Some(txt(&name, &suggested)),
                ),
                None => d.error(
                    "dmarc",
                    domain,
                    format!("no DMARC record at {name}"),
                    Some(txt(&name, &suggested)),
                ),
            }
            return;
        }
        [one] => one.as_str(),
        _ => {
            d.error(
                "dmarc",
                domain,
                format!(
                    "{} DMARC records at {name}: receivers apply none",
                    dmarc.len()
                ),
                Some(txt(&name, &suggested)),
            );
            return;
        }
    };
    let parsed = match DmarcRecord::parse(record.as_bytes()) {
        Ok(p) => p,
        Err(e) => {
            d.error(
                "dmarc",
                domain,
                format!("malformed DMARC record {record:?}: {e}"),
                Some(txt(&name, &suggested)),
            );
            return;
        }
    };
    let acts = acts(parsed.p);
    let rua: Vec<&str> = parsed.rua.iter().map(|u| u.uri()).collect();
    if acts && !rua.is_empty() {
        let signs = d
            .config
            .dkim
            .iter()
            .any(|k| k.domain.trim_end_matches('.').eq_ignore_ascii_case(domain));
        let aligned = if signs {
            format!("DKIM (d={domain}) and SPF (MAIL FROM @{domain}) align")
        } else {
            "only SPF aligns (no DKIM key)".to_string()
        };
        d.ok(
            "dmarc",
            domain,
            format!("p={}, rua={}; {aligned}", parsed.p, rua.join(",")),
        );
        return;
    }
    let mut problems = Vec::new();
    let mut fixed = record.to_string();
    if !acts {
        problems.push(format!(
            "p={}: receivers are asked to do nothing with mail that fails DMARC",
            parsed.p
        ));
        fixed = with_tag(&fixed, "p", "quarantine");
    }
    if rua.is_empty() {
        problems.push("no rua: nobody receives the aggregate reports".to_string());
        fixed = with_tag(&fixed, "rua", &format!("mailto:postmaster@{domain}"));
    }
    d.warning(
        "dmarc",
        domain,
        problems.join("; "),
        Some(txt(&name, &fixed)),
    );
}

/// Does the policy ask receivers to act?
fn acts(policy: Policy) -> bool {
    matches!(policy, Policy::Quarantine | Policy::Reject)
}

/// The record of a parent domain that applies to `domain` when it has
/// none of its own (RFC 7489 section 6.6.3: the organizational domain's,
/// its `sp=` else `p=`); parents are tried up to two labels (no public
/// suffix list here, so `co.uk`-like suffixes are tried too, harmlessly).
async fn inherited(d: &Doctor<'_>, domain: &str) -> Option<(String, Policy)> {
    let labels: Vec<&str> = domain.split('.').collect();
    for i in 1..labels.len().saturating_sub(1) {
        let name = format!("_dmarc.{}", labels[i..].join("."));
        let Ok(records) = d.dns.txt(&name).await else {
            continue;
        };
        let found: Vec<DmarcRecord> = records
            .iter()
            .filter_map(|r| DmarcRecord::parse(r.as_bytes()).ok())
            .collect();
        if let [one] = found.as_slice() {
            let policy = match one.sp {
                Policy::Unspecified => one.p,
                sp => sp,
            };
            return Some((name, policy));
        }
    }
    None
}

/// `record` with tag `tag` set to `value` (replaced where it is, else
/// appended). DMARC records are `tag=value` pairs split by semicolons
/// (RFC 7489 section 6.4).
fn with_tag(record: &str, tag: &str, value: &str) -> String {
    let mut found = false;
    let mut parts: Vec<String> = record
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((t, _)) if t.trim().eq_ignore_ascii_case(tag) => {
                found = true;
                format!("{tag}={value}")
            }
            _ => p.to_string(),
        })
        .collect();
    if !found {
        parts.push(format!("{tag}={value}"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::with_tag;

    #[test]
    fn tags_are_replaced_or_added() {
        assert_eq!(
            with_tag("v=DMARC1; p=none; pct=100", "p", "quarantine"),
            "v=DMARC1; p=quarantine; pct=100"
        );
        assert_eq!(
            with_tag("v=DMARC1;p=reject;", "rua", "mailto:a@b.test"),
            "v=DMARC1; p=reject; rua=mailto:a@b.test"
        );
    }
}
