//! One aggregate report (RFC 8460 section 4): the JSON of section 4.4 for
//! one policy domain and period, gzipped (section 5.1), and its two ways
//! out — a `multipart/report; report-type="tlsrpt"` mail (section 5.3,
//! built with mail-builder, queued from the null sender) or an HTTPS POST
//! of `application/tlsrpt+gzip` (section 5.4).

use crate::context::ServerContext;
use crate::dns::Dns;
use crate::store::TlsRptTally;
use http_body_util::Full;
use hyper::body::Bytes;
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The report for `domain` over `range` (Unix seconds, end exclusive).
pub fn json(hostname: &str, domain: &str, range: (i64, i64), tally: &TlsRptTally) -> Value {
    let failures: u64 = tally.failures.iter().map(|f| f.count).sum();
    let details: Vec<Value> = tally
        .failures
        .iter()
        .map(|f| {
            let mut d = json!({
                "result-type": f.result_type,
                "receiving-mx-hostname": f.receiving_mx_hostname,
                "failed-session-count": f.count,
                "failure-reason-code": f.failure_reason_code,
            });
            if let Some(ip) = &f.receiving_ip {
                d["receiving-ip"] = json!(ip);
            }
            if let Some(ip) = &f.sending_mta_ip {
                d["sending-mta-ip"] = json!(ip);
            }
            d
        })
        .collect();
    json!({
        "organization-name": hostname,
        "date-range": {
            "start-datetime": rfc3339(range.0),
            "end-datetime": rfc3339(range.1),
        },
        "contact-info": format!("postmaster@{hostname}"),
        "report-id": report_id(hostname, domain, range),
        "policies": [{
            "policy": {
                "policy-type": tally.policy_type,
                "policy-string": tally.policy_string,
                "policy-domain": domain,
                "mx-host": tally.mx_host,
            },
            "summary": {
                "total-successful-session-count": tally.successes,
                "total-failure-session-count": failures,
            },
            "failure-details": details,
        }],
    })
}

fn report_id(hostname: &str, domain: &str, range: (i64, i64)) -> String {
    format!("{}.{domain}@{hostname}", rfc3339(range.0))
}

pub fn gzip(report: &Value) -> Result<Vec<u8>, String> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(report.to_string().as_bytes())
        .and_then(|_| enc.finish())
        .map_err(|e| format!("gzip: {e}"))
}

/// Queues the report as mail to `to`.
pub async fn queue_mail(
    ctx: &ServerContext,
    to: &str,
    domain: &str,
    range: (i64, i64),
    gz: &[u8],
) -> Result<(), String> {
    let hostname = &ctx.config.hostname;
    let id = report_id(hostname, domain, range);
    let filename = format!("{hostname}!{domain}!{}!{}.json.gz", range.0, range.1);
    let message = MessageBuilder::new()
        .from((
            "TLS reporting",
            format!("MAILER-DAEMON@{hostname}").as_str(),
        ))
        .to(to)
        .subject(format!(
            "Report Domain: {domain} Submitter: {hostname} Report-ID: <{id}>"
        ))
        .date(chrono::Utc::now().timestamp())
        .header("TLS-Report-Domain", Raw::new(domain.to_string()))
        .header("TLS-Report-Submitter", Raw::new(hostname.to_string()))
        .body(MimePart::new(
            ContentType::new("multipart/report").attribute("report-type", "tlsrpt"),
            vec![
                MimePart::new(
                    "text/plain",
                    format!("The TLS report of {hostname} for {domain} is attached.\r\n"),
                ),
                MimePart::new("application/tlsrpt+gzip", gz.to_vec()).attachment(filename),
            ],
        ))
        .write_to_vec()
        .map_err(|e| format!("building the report mail: {e}"))?;
    let recipients = crate::queue::notify::recipients_for(&ctx.config, &ctx.store, to).await;
    if recipients.is_empty() {
        return Err(format!("{to} leads nowhere"));
    }
    crate::queue::notify::enqueue_generated(ctx, "", recipients, &message, "TLS-RPT")
        .await
        .map(|_| ())
        .map_err(|e| format!("queueing the report mail: {e}"))
}

/// POSTs the report to an `https:` destination.
pub async fn post(
    dns: &Dns,
    tls: Arc<rustls::ClientConfig>,
    url: &str,
    gz: Vec<u8>,
) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?;
    let port = uri.port_u16().unwrap_or(443);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request = hyper::Request::post(path)
        .header(hyper::header::CONTENT_TYPE, "application/tlsrpt+gzip")
        .body(Full::new(Bytes::from(gz)))
        .map_err(|e| format!("request: {e}"))?;
    let response = crate::outbound::https::request(dns, tls, host, port, request).await?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {}", response.status()))
    }
}
