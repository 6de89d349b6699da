//! The aggregate report document of RFC 7489 appendix C (namespace
//! `http://dmarc.org/dmarc-xml/0.1`), written by quick-xml's serde
//! serializer from one window's rows, and gzipped for the mail.

use crate::store::{DmarcRow, DmarcWindow};
use serde::Serialize;
use std::net::IpAddr;

/// What the report's `report_metadata` says about us.
pub struct Reporter<'a> {
    pub org_name: &'a str,
    /// Contact address (`email`): the reports' sender.
    pub email: &'a str,
    pub report_id: &'a str,
    /// Unix seconds of the window's end.
    pub end: u64,
}

#[derive(Serialize)]
#[serde(rename = "feedback")]
struct Feedback<'a> {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    version: &'static str,
    report_metadata: Metadata<'a>,
    policy_published: Published<'a>,
    record: Vec<Record<'a>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    org_name: &'a str,
    email: &'a str,
    report_id: &'a str,
    date_range: DateRange,
}

#[derive(Serialize)]
struct DateRange {
    begin: u64,
    end: u64,
}

#[derive(Serialize)]
struct Published<'a> {
    domain: &'a str,
    adkim: &'a str,
    aspf: &'a str,
    p: &'a str,
    sp: &'a str,
    pct: u8,
    fo: &'a str,
}

#[derive(Serialize)]
struct Record<'a> {
    row: Row<'a>,
    identifiers: Identifiers<'a>,
    auth_results: AuthResults<'a>,
}

#[derive(Serialize)]
struct Row<'a> {
    source_ip: String,
    count: u64,
    policy_evaluated: Evaluated<'a>,
}

#[derive(Serialize)]
struct Evaluated<'a> {
    disposition: &'a str,
    dkim: &'static str,
    spf: &'static str,
}

#[derive(Serialize)]
struct Identifiers<'a> {
    envelope_from: &'a str,
    header_from: &'a str,
}

#[derive(Serialize)]
struct AuthResults<'a> {
    dkim: Vec<Dkim<'a>>,
    spf: Spf<'a>,
}

#[derive(Serialize)]
struct Dkim<'a> {
    domain: &'a str,
    selector: &'a str,
    result: &'a str,
}

#[derive(Serialize)]
struct Spf<'a> {
    domain: &'a str,
    scope: &'static str,
    result: &'a str,
}

/// An address as the schema's `IPAddress` pattern takes it: dotted quad,
/// or all eight IPv6 groups (the pattern has no `::` shorthand).
fn ip_text(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

fn aligned(yes: bool) -> &'static str {
    if yes { "pass" } else { "fail" }
}

fn record(row: &DmarcRow, count: u64) -> Record<'_> {
    Record {
        row: Row {
            source_ip: ip_text(&row.source_ip),
            count,
            policy_evaluated: Evaluated {
                disposition: &row.disposition,
                dkim: aligned(row.dkim_aligned),
                spf: aligned(row.spf_aligned),
            },
        },
        identifiers: Identifiers {
            envelope_from: &row.envelope_from,
            header_from: &row.header_from,
        },
        auth_results: AuthResults {
            dkim: row
                .dkim
                .iter()
                .map(|d| Dkim {
                    domain: &d.domain,
                    selector: &d.selector,
                    result: &d.result,
                })
                .collect(),
            spf: Spf {
                domain: &row.spf_domain,
                scope: "mfrom",
                result: &row.spf_result,
            },
        },
    }
}

/// The report document for `window`.
pub fn document(window: &DmarcWindow, me: &Reporter<'_>) -> Result<String, quick_xml::SeError> {
    let p = &window.policy;
    let feedback = Feedback {
        xmlns: "http://dmarc.org/dmarc-xml/0.1",
        version: "1.0",
        report_metadata: Metadata {
            org_name: me.org_name,
            email: me.email,
            report_id: me.report_id,
            date_range: DateRange {
                begin: window.start,
                end: me.end,
            },
        },
        policy_published: Published {
            domain: &p.domain,
            adkim: &p.adkim,
            aspf: &p.aspf,
            p: &p.p,
            sp: &p.sp,
            pct: p.pct,
            fo: &p.fo,
        },
        record: window.rows.iter().map(|(r, c)| record(r, *c)).collect(),
    };
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut ser = quick_xml::se::Serializer::new(&mut xml);
    ser.indent(' ', 2);
    feedback.serialize(ser)?;
    xml.push('\n');
    Ok(xml)
}

/// `data` gzipped (RFC 7489 section 7.2.1.1 asks for gzip).
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_the_schema_wants_them() {
        assert_eq!(ip_text("192.0.2.1"), "192.0.2.1");
        assert_eq!(ip_text("2001:db8::1"), "2001:db8:0:0:0:0:0:1");
        assert_eq!(ip_text("::ffff:192.0.2.9"), "192.0.2.9");
    }
}
