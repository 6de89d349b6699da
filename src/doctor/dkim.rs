//! Each `[[dkim]]` key of a domain must be published at
//! `selector._domainkey.domain` with the public half of the private key
//! on disk. The test is the receivers' own: a message signed with the key
//! must verify against the published record (mail-auth on both sides).
//! The record to publish is derived from the private key, in the format
//! `tern dkim generate` prints.

use super::Doctor;
use super::records::txt;
use crate::dns::DnsError;
use crate::mailauth::probe::{DkimVerdict, dkim_record};

pub(super) async fn check(d: &mut Doctor<'_>, domain: &str) {
    let keys: Vec<_> = d
        .config
        .dkim
        .iter()
        .filter(|k| k.domain.trim_end_matches('.').eq_ignore_ascii_case(domain))
        .cloned()
        .collect();
    if keys.is_empty() {
        d.warning(
            "dkim",
            domain,
            format!(
                "no [[dkim]] key for {domain}: its mail goes out unsigned and DMARC rests on SPF \
                 alone (which forwarding breaks); make one with `tern dkim generate {domain} SELECTOR`"
            ),
            None,
        );
        return;
    }
    for key in keys {
        let name = format!("{}._domainkey.{domain}", key.selector);
        let path = key.private_key.display().to_string();
        let record = match dkim_record(&key) {
            Ok(r) => r,
            Err(e) => {
                d.error(
                    "dkim",
                    &name,
                    format!("the private key cannot be used: {e}"),
                    None,
                );
                continue;
            }
        };
        let fix = Some(txt(&name, &record));
        match d.dns.txt(&name).await {
            Ok(list) if !list.is_empty() => {}
            Ok(_) | Err(DnsError::NotFound) => {
                d.error(
                    "dkim",
                    &name,
                    format!("no DKIM key record for the key in {path}"),
                    fix,
                );
                continue;
            }
            Err(e) => {
                d.warning("dkim", &name, format!("TXT look-up failed: {e}"), None);
                continue;
            }
        }
        match d.probe.dkim(&key).await {
            Ok(DkimVerdict::Verified) => d.ok(
                "dkim",
                &name,
                format!("published; verifies a signature made with {path}"),
            ),
            Ok(DkimVerdict::Mismatch(why)) => d.error(
                "dkim",
                &name,
                format!(
                    "the published key does not match the private key in {path} (a signature \
                     made with it fails: {why})"
                ),
                fix,
            ),
            Ok(DkimVerdict::Unusable(why)) => d.error(
                "dkim",
                &name,
                format!("the key record is unusable: {why}"),
                fix,
            ),
            Ok(DkimVerdict::Temporary(why)) => {
                d.warning("dkim", &name, format!("key look-up failed: {why}"), None)
            }
            Err(e) => d.error("dkim", &name, format!("signing a test message: {e}"), None),
        }
    }
}
