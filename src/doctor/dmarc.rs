//! DMARC (RFC 7489): each domain publishes one record at `_dmarc.domain`
//! (parsed by mail-auth) with a policy that asks receivers to act (`p=`
//! quarantine or reject; `none` only monitors) and an `rua` address for
//! aggregate reports. Tern signs with `d=` the domain itself and sends
//! with MAIL FROM in it, so both identifiers align under strict alignment
//! too; what alignment needs is a DKIM key (see `dkim.rs`) and SPF.

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
            d.error(
                "dmarc",
                domain,
                format!("no DMARC record at {name}"),
                Some(txt(&name, &suggested)),
            );
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
    let acts = matches!(parsed.p, Policy::Quarantine | Policy::Reject);
    let rua: Vec<&str> = parsed.rua.iter().map(|u| u.uri()).collect();
    if acts && !rua.is_empty() {
        d.ok(
            "dmarc",
            domain,
            format!("p={}, rua={}", parsed.p, rua.join(",")),
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
