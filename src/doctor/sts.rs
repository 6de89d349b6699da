//! MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) for a domain: the
//! `_mta-sts` record (mail-auth parses it), the policy it announces,
//! fetched as senders fetch it (`outbound/mta_sts`: HTTPS to
//! `mta-sts.domain` on `relay.mta_sts_port`, verified against
//! `relay.tls_ca` or the system roots) and parsed by the same code, whose
//! `mx` patterns must cover `hostname`; and the `_smtp._tls` record that
//! tells senders where to report TLS failures. Neither is required, so
//! their absence is a warning; a published one that is wrong is an error
//! (with `mode: enforce`, senders would stop delivering).

use super::Doctor;
use super::records::txt;
use crate::dns::DnsError;
use crate::outbound::mta_sts::Policy;
use crate::outbound::mta_sts::fetch::Fetcher;
use crate::outbound::tls::Verifier;
use mail_auth::dns::TxtRecordParser;
use mail_auth::mta_sts::{MtaStsRecord, ReportUri, TlsRptRecord};

/// A week, the usual `max_age` of a policy.
const MAX_AGE: u64 = 604_800;

pub(super) async fn check(d: &mut Doctor<'_>, domain: &str) {
    let published = mta_sts(d, domain).await;
    tls_rpt(d, domain, published).await;
}

/// The records of one kind (those whose value starts with `version`) at `name`.
async fn records(
    d: &mut Doctor<'_>,
    check: &'static str,
    domain: &str,
    name: &str,
    version: &str,
) -> Option<Vec<String>> {
    match d.dns.txt(name).await {
        Ok(list) => Some(
            list.into_iter()
                .filter(|r| {
                    r.trim_start()
                        .to_ascii_lowercase()
                        .starts_with(&version.to_ascii_lowercase())
                })
                .collect(),
        ),
        Err(DnsError::NotFound) => Some(Vec::new()),
        Err(e) => {
            d.warning(check, domain, format!("{name} look-up failed: {e}"), None);
            None
        }
    }
}

/// The policy file to serve, with these `mx` patterns, as zone-file comments.
fn policy_file(domain: &str, mx: &[String]) -> String {
    let mut out = format!(
        "; serve https://mta-sts.{domain}/.well-known/mta-sts.txt (text/plain):\n\
         ;   version: STSv1\n;   mode: enforce\n"
    );
    for pattern in mx {
        out.push_str(&format!(";   mx: {pattern}\n"));
    }
    out.push_str(&format!(";   max_age: {MAX_AGE}"));
    out
}

/// Is an MTA-STS record published (for the TLS-RPT advice)?
async fn mta_sts(d: &mut Doctor<'_>, domain: &str) -> bool {
    let name = format!("_mta-sts.{domain}");
    let host = d.hostname.clone();
    let id = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let record_fix = txt(&name, &format!("v=STSv1; id={id}"));
    let whole_fix = format!(
        "{record_fix}\n{}",
        policy_file(domain, std::slice::from_ref(&host))
    );
    let Some(found) = records(d, "mta-sts", domain, &name, "v=STSv1").await else {
        return false;
    };
    let record = match found.as_slice() {
        [] => {
            d.warning(
                "mta-sts",
                domain,
                "no MTA-STS record: senders cannot insist on TLS to this server".into(),
                Some(whole_fix),
            );
            return false;
        }
        [one] => one.clone(),
        _ => {
            d.error(
                "mta-sts",
                domain,
                format!(
                    "{} records at {name}: senders use none (RFC 8461 3.1)",
                    found.len()
                ),
                Some(record_fix),
            );
            return true;
        }
    };
    let id = match MtaStsRecord::parse(record.as_bytes()) {
        Ok(r) => r.id,
        Err(e) => {
            d.error(
                "mta-sts",
                domain,
                format!("malformed record {record:?}: {e}"),
                Some(whole_fix),
            );
            return true;
        }
    };
    let text = match fetch(d, domain).await {
        Ok(text) => text,
        Err(e) => {
            d.error(
                "mta-sts",
                domain,
                format!("record id={id}, but the policy cannot be fetched: {e}"),
                Some(policy_file(domain, std::slice::from_ref(&host))),
            );
            return true;
        }
    };
    let policy = match Policy::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            d.error(
                "mta-sts",
                domain,
                format!("malformed policy (id={id}): {e}"),
                Some(policy_file(domain, std::slice::from_ref(&host))),
            );
            return true;
        }
    };
    let mode = policy.mode.name();
    // This server, and every other MX host of the domain (a backup MX the
    // policy leaves out gets no mail from enforcing senders either).
    let mut hosts = vec![host.clone()];
    if let Ok(list) = d.dns.mx(domain).await {
        hosts.extend(list.into_iter().map(|(_, h)| h.to_ascii_lowercase()));
    }
    hosts.sort();
    hosts.dedup();
    let uncovered: Vec<String> = hosts
        .into_iter()
        .filter(|h| !h.is_empty() && h != "." && !policy.matches(h))
        .collect();
    if !uncovered.is_empty() {
        let mut mx = policy.mx.clone();
        mx.extend(uncovered.iter().cloned());
        let which = if uncovered.contains(&host) {
            format!("this server's hostname {host}")
        } else {
            format!("the MX host {}", uncovered.join(", "))
        };
        d.error(
            "mta-sts",
            domain,
            format!(
                "policy id={id} (mode {mode}) lists mx {} but not {which}: senders enforcing \
                 it will not deliver there",
                policy.mx.join(", ")
            ),
            Some(format!(
                "{}\n; then change the id: {record_fix}",
                policy_file(domain, &mx)
            )),
        );
    } else if mode == "none" {
        d.warning(
            "mta-sts",
            domain,
            format!("policy id={id} has mode none: senders apply nothing"),
            Some(policy_file(domain, &policy.mx)),
        );
    } else {
        d.ok(
            "mta-sts",
            domain,
            format!(
                "policy id={id}, mode {mode}, mx {} covers {host}",
                policy.mx.join(", ")
            ),
        );
    }
    true
}

/// The policy file, fetched as the queue fetches it.
async fn fetch(d: &Doctor<'_>, domain: &str) -> Result<String, String> {
    let verifier = Verifier::load(d.config.relay.tls_ca.as_deref()).map_err(|e| e.to_string())?;
    let tls = verifier.client_config().map_err(|e| e.to_string())?;
    Fetcher::new(d.dns.clone(), tls, d.config.relay.mta_sts_port)
        .fetch(domain)
        .await
}

async fn tls_rpt(d: &mut Doctor<'_>, domain: &str, sts_published: bool) {
    let name = format!("_smtp._tls.{domain}");
    let fix = Some(txt(
        &name,
        &format!("v=TLSRPTv1; rua=mailto:postmaster@{domain}"),
    ));
    let Some(found) = records(d, "tls-rpt", domain, &name, "v=TLSRPTv1").await else {
        return;
    };
    match found.as_slice() {
        [] => {
            let why = if sts_published {
                "no TLS-RPT record: senders cannot report failures of the MTA-STS policy"
            } else {
                "no TLS-RPT record: senders cannot report TLS failures"
            };
            d.warning("tls-rpt", domain, why.into(), fix);
        }
        [one] => match TlsRptRecord::parse(one.as_bytes()) {
            Ok(r) => {
                let rua: Vec<&str> = r
                    .rua
                    .iter()
                    .map(|u| match u {
                        ReportUri::Mail(m) => m.as_str(),
                        ReportUri::Http(h) => h.as_str(),
                    })
                    .collect();
                d.ok("tls-rpt", domain, format!("reports to {}", rua.join(", ")));
            }
            Err(e) => d.error(
                "tls-rpt",
                domain,
                format!("malformed record {one:?}: {e}"),
                fix,
            ),
        },
        _ => d.error(
            "tls-rpt",
            domain,
            format!("{} records at {name}: senders use none", found.len()),
            fix,
        ),
    }
}
