//! A domain's MX records must name this server's `hostname` (RFC 5321
//! section 5.1); a null MX (RFC 7505) or none at all means other servers
//! send its mail elsewhere or nowhere.

use super::Doctor;
use super::records;
use crate::dns::{DnsError, is_null_mx};

pub(super) async fn check(d: &mut Doctor<'_>, domain: &str) {
    let host = d.hostname.clone();
    let fix = Some(records::mx(domain, &host));
    match d.dns.mx(domain).await {
        Ok(list) if is_null_mx(&list) => d.error(
            "mx",
            domain,
            "null MX (\"0 .\"): the domain says it accepts no mail".into(),
            fix,
        ),
        Ok(list) if list.is_empty() => d.error("mx", domain, "no MX record".into(), fix),
        Ok(mut list) => {
            list.sort();
            let shown: Vec<String> = list.iter().map(|(p, h)| format!("{p} {h}")).collect();
            let ours = list.iter().any(|(_, h)| h.eq_ignore_ascii_case(&host));
            if ours {
                d.ok(
                    "mx",
                    domain,
                    format!("MX {} (this server: {host})", shown.join(", ")),
                );
            } else {
                d.error(
                    "mx",
                    domain,
                    format!(
                        "MX {} does not point at this server's hostname {host}",
                        shown.join(", ")
                    ),
                    fix,
                );
            }
        }
        Err(DnsError::NotFound) => d.error("mx", domain, "no MX record".into(), fix),
        Err(e) => d.warning("mx", domain, format!("MX look-up failed: {e}"), None),
    }
}
