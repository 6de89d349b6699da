//! SPF (RFC 7208): each domain's record must authorise every address of
//! ours, evaluated by mail-auth as receivers evaluate it (includes,
//! redirects, `mx`, `a` and macros included). The same for `hostname`
//! itself, which receivers check for bounces (empty MAIL FROM, RFC 7208
//! section 2.3), as a warning. The fix keeps what the record already
//! says and puts the missing `ip4:`/`ip6:` mechanisms in front.

use super::records::{spf_mechanism, txt};
use super::{Doctor, Status};
use crate::mailauth::probe::SpfVerdict;
use std::net::IpAddr;

pub(super) async fn check(d: &mut Doctor<'_>, domain: &str, addresses: &[IpAddr]) {
    check_one(d, domain, addresses, Status::Error).await;
}

/// The HELO identity (`hostname`), once per run, unless it is a checked domain.
pub(super) async fn check_hostname(d: &mut Doctor<'_>, addresses: &[IpAddr]) {
    let host = d.hostname.clone();
    check_one(d, &host, addresses, Status::Warning).await;
}

async fn check_one(d: &mut Doctor<'_>, domain: &str, addresses: &[IpAddr], severity: Status) {
    if addresses.is_empty() {
        return;
    }
    let host = d.hostname.clone();
    let mut missing = Vec::new();
    let mut broken = false;
    let mut none = false;
    let mut temporary = Vec::new();
    let mut results = Vec::new();
    for &ip in addresses {
        match d.probe.spf(ip, domain, &host).await {
            SpfVerdict::Pass => {}
            SpfVerdict::NotAuthorised(result) => {
                missing.push(ip);
                results.push(format!("{ip}: {result}"));
            }
            SpfVerdict::NoRecord => none = true,
            SpfVerdict::PermError => broken = true,
            SpfVerdict::TempError => temporary.push(ip.to_string()),
        }
    }
    let mechanisms: Vec<String> = addresses.iter().map(|ip| spf_mechanism(*ip)).collect();
    let fresh = || {
        Some(txt(
            domain,
            &format!("v=spf1 {} -all", mechanisms.join(" ")),
        ))
    };
    let report = |d: &mut Doctor<'_>, message: String, publish: Option<String>| {
        d.push(severity, "spf", domain, message, publish);
    };
    if none {
        report(d, "no SPF record".into(), fresh());
    } else if broken {
        report(
            d,
            "the SPF record is broken (permerror: several records, bad syntax, or more than 10 \
             DNS look-ups); publish one record"
                .into(),
            fresh(),
        );
    } else if !missing.is_empty() {
        let current = current_record(d, domain).await;
        let add: Vec<String> = missing.iter().map(|ip| spf_mechanism(*ip)).collect();
        let publish = match &current {
            Some(record) => {
                let rest = record.get("v=spf1".len()..).unwrap_or("").trim_start();
                txt(domain, &format!("v=spf1 {} {rest}", add.join(" ")))
            }
            None => txt(domain, &format!("v=spf1 {} -all", mechanisms.join(" "))),
        };
        report(
            d,
            format!(
                "SPF does not authorise {} (record {:?})",
                results.join(", "),
                current.unwrap_or_default()
            ),
            Some(publish.trim_end().to_string()),
        );
    } else if !temporary.is_empty() {
        d.warning(
            "spf",
            domain,
            format!(
                "SPF could not be evaluated for {}: DNS failure",
                temporary.join(", ")
            ),
            None,
        );
    } else {
        let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
        d.ok("spf", domain, format!("SPF authorises {}", list.join(", ")));
    }
}

/// The domain's SPF record as published (the first `v=spf1` TXT).
async fn current_record(d: &Doctor<'_>, domain: &str) -> Option<String> {
    let records = d.dns.txt(domain).await.ok()?;
    records.into_iter().find(|r| {
        let lower = r.to_ascii_lowercase();
        lower == "v=spf1" || lower.starts_with("v=spf1 ")
    })
}
