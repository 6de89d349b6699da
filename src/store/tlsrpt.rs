//! TLS-RPT tallies (`r/<period start>\0<policy domain>` in tree `meta`,
//! the start as 20 decimal digits so keys sort by time): for one reporting
//! period and one policy domain, the policy as reported, the count of
//! successful sessions and the failures by kind (RFC 8460 section 4.4).
//! `outbound/tls_rpt` adds to them and turns finished periods into reports;
//! this file only keeps them.

use super::{Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRptTally {
    /// "sts" (MTA-STS).
    pub policy_type: String,
    /// The policy file's lines.
    pub policy_string: Vec<String>,
    /// The policy's MX patterns.
    pub mx_host: Vec<String>,
    pub successes: u64,
    pub failures: Vec<TlsRptFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRptFailure {
    /// RFC 8460 result type ("certificate-expired", "starttls-not-supported", …).
    pub result_type: String,
    pub receiving_mx_hostname: String,
    pub receiving_ip: Option<String>,
    /// Our address towards the receiving IP.
    #[serde(default)]
    pub sending_mta_ip: Option<String>,
    pub failure_reason_code: String,
    pub count: u64,
}

fn tally_key(period: i64, domain: &str) -> Vec<u8> {
    format!("r/{period:020}\0{}", domain.to_ascii_lowercase()).into_bytes()
}

impl Store {
    /// Changes the tally of `domain` for the period starting at `period`
    /// (created empty). The caller serialises concurrent changes.
    pub fn update_tlsrpt(
        &self,
        period: i64,
        domain: &str,
        change: impl FnOnce(&mut TlsRptTally),
    ) -> Result<(), StoreError> {
        let key = tally_key(period, domain);
        let mut tally = match self.inner.meta.get(&key)? {
            Some(v) => decode("TLS-RPT tally", &v)?,
            None => TlsRptTally::default(),
        };
        change(&mut tally);
        self.inner.meta.insert(key, encode(&tally))?;
        Ok(())
    }

    /// Tallies of periods that started before `before`: (start, domain, tally).
    pub fn tlsrpt_before(
        &self,
        before: i64,
    ) -> Result<Vec<(i64, String, TlsRptTally)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.meta.scan_prefix(b"r/") {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k[2..]).into_owned();
            let Some((start, domain)) = key.split_once('\0') else {
                continue;
            };
            let Ok(start) = start.parse::<i64>() else {
                continue;
            };
            if start >= before {
                break;
            }
            out.push((start, domain.to_string(), decode("TLS-RPT tally", &v)?));
        }
        Ok(out)
    }

    pub fn remove_tlsrpt(&self, period: i64, domain: &str) -> Result<(), StoreError> {
        self.inner.meta.remove(tally_key(period, domain))?;
        Ok(())
    }
}
