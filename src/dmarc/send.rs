//! One aggregate report as a mail (RFC 7489 section 7.2.1.1): from
//! `report_from`, Subject `Report Domain: … Submitter: … Report-ID: <…>`,
//! a short text part and the gzipped XML as
//! `receiver!policy-domain!begin!end.xml.gz`, DKIM-signed with the
//! `[[dkim]]` key of `report_from`'s domain, and queued like a bounce.

use super::{ReportError, xml};
use crate::config::Config;
use crate::context::ServerContext;
use crate::mailauth::Signer;
use crate::store::DmarcWindow;
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

pub(super) struct Report {
    pub id: String,
    pub from: String,
    /// The authorized `rua` addresses it goes to.
    pub to: Vec<String>,
    pub end: u64,
    pub xml: String,
    /// The whole message, signature included.
    pub message: Vec<u8>,
    /// Whether a DKIM signature is on it.
    pub signed: bool,
}

fn report_from(config: &Config) -> String {
    config.dmarc.report_from.clone().unwrap_or_else(|| {
        let domain = config
            .local_domains
            .first()
            .cloned()
            .unwrap_or_else(|| config.hostname.clone());
        format!("noreply-dmarc@{domain}")
    })
}

/// `s` as printable ASCII for a raw header field (a control character or
/// non-ASCII letter, from the config or a From domain, becomes `?`).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl Report {
    pub fn make(
        config: &Config,
        signer: &Signer,
        window: &DmarcWindow,
        interval: u64,
        rua: &[String],
    ) -> Result<Report, ReportError> {
        let fail = |message: String| ReportError::Build {
            domain: window.domain.clone(),
            message,
        };
        let from = report_from(config);
        let org_name = config.dmarc.org_name.as_deref().unwrap_or(&config.hostname);
        let end = window.start + interval - 1;
        let id = format!("{}.{}.{}", window.start, window.domain, config.hostname);
        let xml = xml::document(
            window,
            &xml::Reporter {
                org_name,
                email: &from,
                report_id: &id,
                end,
            },
        )
        .map_err(|e| fail(e.to_string()))?;
        let gz = xml::gzip(xml.as_bytes()).map_err(|e| fail(e.to_string()))?;
        let filename = format!(
            "{}!{}!{}!{}.xml.gz",
            config.hostname, window.domain, window.start, end
        );
        let mut b = MessageBuilder::new()
            .from(from.clone())
            // As RFC 7489 words it, unencoded (mail-builder would
            // encode the angle brackets); folded before the Report-ID.
            .header(
                "Subject",
                Raw::new(format!(
                    "Report Domain: {} Submitter: {}\r\n Report-ID: <{}>",
                    printable(&window.domain),
                    printable(org_name),
                    printable(&id)
                )),
            )
            .message_id(format!(
                "{id}.{:08x}@{}",
                rand::random::<u32>(),
                config.hostname
            ))
            .date(crate::store::now())
            .header("Auto-Submitted", Raw::new("auto-generated"))
            .text_body(format!(
                "This is a DMARC aggregate report (RFC 7489) from {org_name}\r\n\
                 for the domain {}, covering {}.\r\n",
                window.domain,
                super::describe_window(window, end)
            ))
            .attachment("application/gzip", filename, gz);
        if !rua.is_empty() {
            b = b.to(rua.to_vec());
        }
        let mut message = b.write_to_vec().map_err(|e| fail(e.to_string()))?;
        let domain = from.rsplit_once('@').map_or("", |(_, d)| d);
        let signature = signer
            .sign(domain, [message.as_slice()])
            .map_err(|e| fail(e.to_string()))?;
        let signed = signature.is_some();
        if let Some(sig) = signature {
            let mut with = sig.into_bytes();
            with.extend_from_slice(&message);
            message = with;
        } else {
            tracing::warn!(%domain, "no [[dkim]] key for the DMARC report sender's domain; reports go unsigned");
        }
        Ok(Report {
            id,
            from,
            to: rua.to_vec(),
            end,
            xml,
            message,
            signed,
        })
    }

    /// What `--dry-run` prints for this report.
    pub fn describe(&self, window: &DmarcWindow) -> String {
        format!(
            "Report-ID: {}\nDomain: {}\nWindow: {} ({}..{})\nFrom: {}\nTo: {}\nDKIM-signed: {}\nMessages: {}\n\n{}\n",
            self.id,
            window.domain,
            super::describe_window(window, self.end),
            window.start,
            self.end,
            self.from,
            self.to.join(", "),
            if self.signed { "yes" } else { "no" },
            window.rows.iter().map(|(_, c)| c).sum::<u64>(),
            self.xml
        )
    }
}

/// Queues `report` to the authorized `rua` addresses.
pub(super) async fn enqueue(
    ctx: &ServerContext,
    report: &Report,
    rua: &[String],
) -> Result<(), ReportError> {
    let mut recipients = Vec::new();
    for a in rua {
        recipients.extend(crate::queue::notify::recipients_for(&ctx.config, &ctx.store, a).await);
    }
    if recipients.is_empty() {
        return Ok(());
    }
    let id = crate::queue::notify::enqueue_generated(
        ctx,
        &report.from,
        recipients,
        &report.message,
        "local DMARC report",
    )
    .await?;
    tracing::info!(report_id = %report.id, queue_id = %crate::store::format_queue_id(id), "DMARC report queued");
    Ok(())
}
