//! The TLS certificate this server presents for `hostname`: configured
//! (a generated self-signed one satisfies nobody who verifies), valid for
//! the name, issued by a CA senders trust (`relay.tls_ca` when set, else
//! the system roots: the anchors the queue itself verifies MX hosts and
//! MTA-STS hosts with), and not about to expire: an error once expired, a
//! warning within `EXPIRY_WARNING`. Every configured certificate is
//! checked for expiry; the one served for `hostname` for the rest.

use super::Doctor;
use crate::config::CertificateEntry;
use crate::outbound::tls::Verifier;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::der::Decode as _;

/// A certificate expiring sooner than this is a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

pub(super) fn check(d: &mut Doctor<'_>) {
    let host = d.hostname.clone();
    let entries = d.config.tls.entries();
    if entries.is_empty() {
        d.warning(
            "certificate",
            &host,
            "no certificate configured ([tls] certificate): a self-signed one is generated, \
             which senders enforcing MTA-STS or DANE and most mail programs refuse"
                .into(),
            None,
        );
        return;
    }
    let served = served_for(&entries, &host);
    for (i, entry) in entries.iter().enumerate() {
        let path = entry.certificate.display().to_string();
        let chain = match crate::tls::load_certs(&entry.certificate) {
            Ok(c) => c,
            Err(e) => {
                d.error("certificate", &path, format!("cannot be read: {e}"), None);
                continue;
            }
        };
        let Some(leaf) = chain.first() else {
            d.error(
                "certificate",
                &path,
                "no certificate in the file".into(),
                None,
            );
            continue;
        };
        let not_after = match x509_cert::Certificate::from_der(leaf.as_ref()) {
            Ok(c) => UNIX_EPOCH + c.tbs_certificate.validity.not_after.to_unix_duration(),
            Err(e) => {
                d.error(
                    "certificate",
                    &path,
                    format!("not a valid X.509 certificate: {e}"),
                    None,
                );
                continue;
            }
        };
        let until = date(not_after);
        let left = not_after.duration_since(SystemTime::now()).ok();
        match left {
            None => {
                d.error("certificate", &path, format!("expired on {until}"), None);
                continue;
            }
            Some(left) if left < EXPIRY_WARNING => d.warning(
                "certificate",
                &path,
                format!(
                    "expires on {until}, in {} day(s): renew it",
                    left.as_secs() / 86_400
                ),
                None,
            ),
            Some(_) => {}
        }
        if i != served {
            continue;
        }
        let verifier = match Verifier::load(d.config.relay.tls_ca.as_deref()) {
            Ok(v) => v,
            Err(e) => {
                d.warning(
                    "certificate",
                    &path,
                    format!("cannot be verified: {e}"),
                    None,
                );
                continue;
            }
        };
        match verifier.verify(&chain, &host) {
            Ok(()) => d.ok(
                "certificate",
                &path,
                format!(
                    "covers {host}, valid until {until}, issued by a CA in {}",
                    verifier.anchors
                ),
            ),
            Err(f) if f.result_type == "certificate-host-mismatch" => d.error(
                "certificate",
                &path,
                format!("does not cover this server's hostname {host}"),
                None,
            ),
            Err(f) => d.warning(
                "certificate",
                &path,
                format!("{f}: senders that verify (MTA-STS, DANE) will refuse it"),
                None,
            ),
        }
    }
}

/// The index of the entry served to a client asking for `host`: one
/// naming it, else one whose wildcard covers it, else the default (first).
fn served_for(entries: &[CertificateEntry], host: &str) -> usize {
    let exact = entries
        .iter()
        .position(|e| e.names.iter().any(|n| n == host));
    let parent = host.split_once('.').map(|(_, p)| format!("*.{p}"));
    let wildcard = entries
        .iter()
        .position(|e| parent.as_ref().is_some_and(|p| e.names.contains(p)));
    exact.or(wildcard).unwrap_or(0)
}

/// `YYYY-MM-DD` (UTC).
fn date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("{secs} s after 1970"))
}
