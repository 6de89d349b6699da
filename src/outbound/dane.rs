//! DANE for SMTP (RFC 7672): the TLSA records of an MX host
//! (`_25._tcp.<mx>`), looked up through the DNSSEC-validating resolver of
//! `dns.rs`, say which certificate the host must present. DANE applies only
//! to a host whose name came from a secure MX answer (section 2.2) and
//! whose TLSA RRset is itself secure; usable records are DANE-EE(3) — the
//! end-entity certificate or its public key matches, no name or expiry
//! check (section 3.1.1) — and DANE-TA(2) — a certificate of the chain
//! matches and the chain verifies from it for the MX host's name (section
//! 3.1.2). Full certificate or SPKI, exact, SHA-256 or SHA-512.
//!
//! A bogus answer, or a look-up that fails, makes the host unusable for
//! now (the delivery is deferred, never sent without checks); an insecure
//! or absent one leaves the host to the next policy.

use super::tls::CertFailure;
use crate::dns::{Dns, Validated};
use hickory_resolver::proto::rr::{RData, RecordType};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest;
use std::sync::Arc;

/// One usable TLSA record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Tlsa {
    /// Usable for SMTP (RFC 7672 section 3.1): DANE-TA(2) or DANE-EE(3),
    /// a known selector and matching type.
    fn usable(&self) -> bool {
        matches!(self.usage, 2 | 3) && self.selector <= 1 && self.matching <= 2
    }

    /// Presentation form, for logs and TLS-RPT's `policy-string`.
    pub fn text(&self) -> String {
        let hex: String = self.data.iter().map(|b| format!("{b:02x}")).collect();
        format!("{} {} {} {hex}", self.usage, self.selector, self.matching)
    }

    /// Does `cert` match this record?
    fn matches(&self, cert: &CertificateDer<'_>) -> bool {
        let selected: Vec<u8> = match self.selector {
            0 => cert.as_ref().to_vec(),
            _ => match webpki::anchor_from_trusted_cert(cert) {
                Ok(anchor) => webpki::spki_for_anchor(&anchor).as_ref().to_vec(),
                Err(_) => return false,
            },
        };
        let digest = match self.matching {
            0 => selected,
            1 => sha2::Sha256::digest(&selected).to_vec(),
            _ => sha2::Sha512::digest(&selected).to_vec(),
        };
        digest == self.data
    }
}

/// What DANE says of one MX host.
#[derive(Clone, Debug)]
pub enum HostDane {
    /// Secure TLSA records: the host must present a matching certificate.
    Applies(DaneVerifier),
    /// No DANE for this host (why, for the debug log): the next policy.
    NotApplicable(String),
    /// The host cannot be used now: bogus DNSSEC or a failed look-up.
    /// (RFC 8460 result type, what happened)
    Unusable(&'static str, String),
}

/// Checks a certificate chain against a host's TLSA records. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DaneVerifier {
    records: Arc<Vec<Tlsa>>,
}

impl DaneVerifier {
    pub fn new(records: Vec<Tlsa>) -> DaneVerifier {
        DaneVerifier {
            records: Arc::new(records),
        }
    }

    pub fn records(&self) -> &[Tlsa] {
        &self.records
    }

    /// Does `chain` (end entity first) satisfy one of the records for `host`?
    pub fn verify(&self, chain: &[CertificateDer<'static>], host: &str) -> Result<(), CertFailure> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(CertFailure::new(
                "tlsa-invalid",
                "no certificate presented".into(),
            ));
        };
        // DANE-EE: the key is the identity; names and dates do not matter.
        if self.records.iter().any(|r| r.usage == 3 && r.matches(leaf)) {
            return Ok(());
        }
        let mut why = "no certificate of the chain matches a TLSA record".to_string();
        for record in self.records.iter().filter(|r| r.usage == 2) {
            for (i, ta) in chain
                .iter()
                .enumerate()
                .filter(|(i, c)| *i > 0 && record.matches(c))
            {
                match verify_from_anchor(ta, leaf, &rest[..i - 1], host) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        why = format!("the chain does not verify from the DANE-TA certificate: {e}")
                    }
                }
            }
        }
        let records: Vec<String> = self.records.iter().map(Tlsa::text).collect();
        Err(CertFailure::new(
            "tlsa-invalid",
            format!(
                "DANE: certificate of {host}: {why} (TLSA: {})",
                records.join("; ")
            ),
        ))
    }
}

/// The chain from `anchor` (a certificate the TLSA record names) to `leaf`,
/// valid now for `host`.
fn verify_from_anchor(
    anchor: &CertificateDer<'static>,
    leaf: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    host: &str,
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots.add(anchor.clone()).map_err(|e| e.to_string())?;
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let name =
        ServerName::try_from(host.trim_end_matches('.').to_string()).map_err(|e| e.to_string())?;
    verifier
        .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The TLSA records of `host` on `port`, as DANE reads them.
pub async fn host_dane(dns: &Dns, host: &str, port: u16) -> HostDane {
    let name = format!("_{port}._tcp.{}", host.trim_end_matches('.'));
    match dns.validated(&name, RecordType::TLSA).await {
        Ok(Validated::Secure(data)) => {
            let records: Vec<Tlsa> = data
                .iter()
                .filter_map(|d| match d {
                    RData::TLSA(t) => Some(Tlsa {
                        usage: t.cert_usage().into(),
                        selector: t.selector().into(),
                        matching: t.matching().into(),
                        data: t.cert_data().to_vec(),
                    }),
                    _ => None,
                })
                .filter(Tlsa::usable)
                .collect();
            if records.is_empty() {
                HostDane::NotApplicable(format!("{name}: no usable TLSA records"))
            } else {
                HostDane::Applies(DaneVerifier::new(records))
            }
        }
        Ok(Validated::SecureNone) => HostDane::NotApplicable(format!("{name}: no TLSA records")),
        Ok(Validated::Insecure) => HostDane::NotApplicable(format!("{name}: insecure (unsigned)")),
        Ok(Validated::Bogus(why)) => {
            HostDane::Unusable("dnssec-invalid", format!("DANE: {name} is bogus: {why}"))
        }
        Err(e) => HostDane::Unusable(
            "tlsa-invalid",
            format!("DANE: the TLSA look-up of {name} failed: {e}"),
        ),
    }
}

/// The MX host names of `domain` when its MX RRset is secure (so DANE may
/// apply to them): Ok(None) when it is not (insecure, or no MX);
/// Err((result type, why)) when it is bogus or the look-up failed.
pub async fn secure_mx(
    dns: &Dns,
    domain: &str,
) -> Result<Option<Vec<String>>, (&'static str, String)> {
    match dns.validated(domain, RecordType::MX).await {
        Ok(Validated::Secure(data)) => Ok(Some(
            data.iter()
                .filter_map(|d| match d {
                    RData::MX(mx) => Some(
                        mx.exchange()
                            .to_utf8()
                            .trim_end_matches('.')
                            .to_ascii_lowercase(),
                    ),
                    _ => None,
                })
                .collect(),
        )),
        Ok(Validated::SecureNone | Validated::Insecure) => Ok(None),
        Ok(Validated::Bogus(why)) => Err((
            "dnssec-invalid",
            format!("DNSSEC: the MX records of {domain} are bogus: {why}"),
        )),
        Err(e) => Err((
            "dnssec-invalid",
            format!("DNSSEC: the MX look-up of {domain} could not be validated: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> (Vec<CertificateDer<'static>>, CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["mx.dane.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let ca_der = ca.der().clone();
        (vec![leaf.der().clone(), ca_der.clone()], ca_der)
    }

    fn record(usage: u8, selector: u8, matching: u8, cert: &CertificateDer<'_>) -> Tlsa {
        let mut t = Tlsa {
            usage,
            selector,
            matching,
            data: Vec::new(),
        };
        let selected = match selector {
            0 => cert.as_ref().to_vec(),
            _ => {
                let a = webpki::anchor_from_trusted_cert(cert).unwrap();
                webpki::spki_for_anchor(&a).as_ref().to_vec()
            }
        };
        t.data = match matching {
            0 => selected,
            1 => sha2::Sha256::digest(&selected).to_vec(),
            _ => sha2::Sha512::digest(&selected).to_vec(),
        };
        t
    }

    #[test]
    fn dane_ee_matches_the_leaf_in_every_form_whatever_the_name() {
        let (chain, _) = chain();
        for (s, m) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] {
            let v = DaneVerifier::new(vec![record(3, s, m, &chain[0])]);
            assert!(v.verify(&chain, "mx.dane.test").is_ok(), "3 {s} {m}");
            // DANE-EE does not check names (RFC 7672 section 3.1.1).
            assert!(v.verify(&chain, "other.test").is_ok(), "3 {s} {m}");
        }
    }

    #[test]
    fn dane_ta_verifies_the_chain_and_the_name() {
        let (chain, ca) = chain();
        let v = DaneVerifier::new(vec![record(2, 1, 1, &ca)]);
        assert!(v.verify(&chain, "mx.dane.test").is_ok());
        let err = v.verify(&chain, "other.test").unwrap_err();
        assert_eq!(err.result_type, "tlsa-invalid");
    }

    #[test]
    fn a_wrong_record_or_no_chain_is_tlsa_invalid() {
        let (chain, _) = chain();
        let (other, _) = super::tests::chain();
        let v = DaneVerifier::new(vec![record(3, 1, 1, &other[0])]);
        let err = v.verify(&chain, "mx.dane.test").unwrap_err();
        assert_eq!(err.result_type, "tlsa-invalid");
        assert!(err.text.contains("3 1 1 "), "{err}");
        assert!(v.verify(&[], "mx.dane.test").is_err());
        // The leaf's record used as DANE-TA does not stand for an issuer.
        let v = DaneVerifier::new(vec![record(2, 1, 1, &other[0])]);
        assert!(v.verify(&chain, "mx.dane.test").is_err());
    }
}
