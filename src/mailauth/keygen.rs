//! `tern dkim generate`: a new key pair written as PEM, and the TXT record
//! to publish at `SELECTOR._domainkey.DOMAIN`, printed as a zone-file line
//! whose character strings hold at most 255 octets each (RFC 1035 section
//! 3.3; RFC 6376 section 3.6.2.2 joins them), as `opendkim-genkey` does: a
//! 2048-bit RSA key does not fit in one string.

use super::MailAuthError;
use crate::config::DkimAlgorithm;
use base64::Engine as _;
use mail_auth::dkim::generate::DkimKeyPair;
use std::path::{Path, PathBuf};

/// RSA modulus size (RFC 8301 recommends 2048).
pub const RSA_BITS: usize = 2048;

pub struct GeneratedKey {
    pub path: PathBuf,
    /// Owner name of the TXT record.
    pub record_name: String,
    /// TXT record value.
    pub record: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Generates a key, writes `DIR/DOMAIN.SELECTOR.key` (mode 0600; an
/// existing file is never overwritten) and returns the DNS record.
pub fn generate(
    domain: &str,
    selector: &str,
    algorithm: DkimAlgorithm,
    dir: &Path,
) -> Result<GeneratedKey, MailAuthError> {
    let gen_err = |e: String| MailAuthError::Generate(e);
    let (private_pem, public, k) = match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let pair = DkimKeyPair::generate_rsa(RSA_BITS).map_err(|e| gen_err(e.to_string()))?;
            let public = rsa_spki(pair.public_key()).map_err(gen_err)?;
            (pem("RSA PRIVATE KEY", pair.private_key()), public, "rsa")
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let pair = DkimKeyPair::generate_ed25519().map_err(|e| gen_err(e.to_string()))?;
            (
                pem("PRIVATE KEY", pair.private_key()),
                pair.public_key().to_vec(),
                "ed25519",
            )
        }
    };
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let path = dir.join(format!("{domain}.{selector}.key"));
    write_new(&path, private_pem.as_bytes()).map_err(|e| MailAuthError::Key {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(GeneratedKey {
        path,
        record_name: format!("{selector}._domainkey.{domain}"),
        record: key_record(k, &public),
    })
}

/// An RSA public key as SubjectPublicKeyInfo DER, what a key record
/// carries (mail-auth gives PKCS#1).
pub(super) fn rsa_spki(pkcs1: &[u8]) -> Result<Vec<u8>, String> {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::pkcs8::EncodePublicKey as _;
    rsa::RsaPublicKey::from_pkcs1_der(pkcs1)
        .map_err(|e| e.to_string())?
        .to_public_key_der()
        .map(|der| der.as_bytes().to_vec())
        .map_err(|e| e.to_string())
}

/// The value of a DKIM key record (RFC 6376 section 3.6.1).
pub(super) fn key_record(k: &str, public: &[u8]) -> String {
    let p = base64::engine::general_purpose::STANDARD.encode(public);
    format!("v=DKIM1; k={k}; p={p}")
}

/// Longest character string in a TXT record (RFC 1035 section 3.3).
pub const TXT_STRING_MAX: usize = 255;

impl GeneratedKey {
    /// The record as a zone-file line (several lines in parentheses when
    /// the value needs more than one character string).
    pub fn zone_line(&self) -> String {
        let strings = txt_strings(&self.record);
        let owner = format!("{}.\tIN\tTXT\t", self.record_name);
        if strings.len() == 1 {
            return format!("{owner}{}", strings[0]);
        }
        let mut out = format!("{owner}( {}", strings[0]);
        for s in &strings[1..] {
            out.push_str(&format!("\n\t  {s}"));
        }
        out.push_str(" )");
        out
    }
}

/// `value` as quoted character strings of at most 255 octets each, with
/// quotes and backslashes escaped (RFC 1035 section 5.1).
pub fn txt_strings(value: &str) -> Vec<String> {
    value
        .as_bytes()
        .chunks(TXT_STRING_MAX)
        .map(|c| {
            let text = String::from_utf8_lossy(c);
            format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect()
}

fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_records_are_split() {
        let record = format!("v=DKIM1; k=rsa; p={}", "A".repeat(392));
        let key = GeneratedKey {
            path: PathBuf::new(),
            record_name: "sel._domainkey.example.test".into(),
            record: record.clone(),
        };
        let line = key.zone_line();
        let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert_eq!(strings.len(), 2, "{line}");
        assert!(strings.iter().all(|s| s.len() <= TXT_STRING_MAX));
        assert_eq!(strings.concat(), record);
        assert!(
            line.starts_with("sel._domainkey.example.test.\tIN\tTXT\t( \""),
            "{line}"
        );
        assert!(line.ends_with("\" )"), "{line}");
    }
}
