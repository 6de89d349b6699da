//! DMARC aggregate reports (RFC 7489 section 7.2) about the mail Tern
//! receives, with `[dmarc] reports = true`: every DMARC evaluation of a
//! domain that publishes `rua` is counted in the store (`store/dmarc.rs`,
//! bounded), and once per window (a day by default) each such domain gets
//! one report — the XML of appendix C, gzipped (`xml.rs`), in a mail
//! DKIM-signed as `report_from`'s domain (`send.rs`) — through Tern's own
//! queue, to the `rua` addresses that may receive it (section 7.1: an
//! address outside the domain must be confirmed by a record at
//! `DOMAIN._report._dmarc.DESTINATION`). `tern dmarc report --dry-run`
//! prints what would be sent.

mod send;
mod xml;

use crate::config::Config;
use crate::context::ServerContext;
use crate::mailauth::{AuthResults, Decision, MailAuth};
use crate::shutdown::Shutdown;
use crate::store::{DmarcDkimResult, DmarcRow, DmarcWindow, Store, StoreError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("DMARC report for {domain}: {message}")]
    Build { domain: String, message: String },
}

/// Unix seconds now.
fn now() -> u64 {
    u64::try_from(crate::store::now()).unwrap_or(0)
}

/// Start of the window holding `t`.
fn window_start(t: u64, interval: u64) -> u64 {
    t - t % interval.max(1)
}

fn interval(config: &Config) -> u64 {
    config.dmarc.interval.0.as_secs().max(1)
}

/// Counts one message's DMARC evaluation for the report to its From
/// domain, when reports are on and the domain asks for them (`rua`).
pub async fn record(
    ctx: &ServerContext,
    ip: IpAddr,
    envelope_from: &str,
    results: &AuthResults,
    decision: &Decision,
) {
    let config = &ctx.config;
    if !config.dmarc.reports {
        return;
    }
    let Some(policy) = results
        .dmarc_published
        .as_ref()
        .filter(|p| !p.rua.is_empty())
    else {
        return;
    };
    let disposition = match decision {
        Decision::Reject(..) => "reject",
        Decision::Quarantine => "quarantine",
        Decision::Accept => "none",
    };
    let (spf_domain, spf_result) = match &results.spf_mail_from {
        Some(s) => (s.domain.clone(), s.result.as_str()),
        None => (envelope_from.to_string(), "none"),
    };
    let row = DmarcRow {
        source_ip: ip.to_string(),
        header_from: results.dmarc.domain.clone(),
        envelope_from: envelope_from.to_ascii_lowercase(),
        disposition: disposition.into(),
        dkim_aligned: results.dmarc.dkim_aligned,
        spf_aligned: results.dmarc.spf_aligned,
        spf_domain,
        spf_result: spf_result.into(),
        dkim: results
            .dkim
            .iter()
            .filter(|d| !d.domain.is_empty())
            .map(|d| DmarcDkimResult {
                domain: d.domain.clone(),
                selector: d.selector.clone(),
                result: d.result.as_str().into(),
            })
            .collect(),
    };
    let start = window_start(now(), interval(config));
    match ctx
        .store
        .dmarc_record(start, policy, &row, config.dmarc.max_records)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            domain = %policy.domain,
            max_records = config.dmarc.max_records,
            "DMARC report records full; evaluation not kept"
        ),
        Err(e) => tracing::warn!(domain = %policy.domain, "cannot keep the DMARC evaluation: {e}"),
    }
}

/// Sends the reports of every window that has ended, each once, until
/// shutdown; a report that cannot be made now (DNS trouble) is tried at
/// the next round.
pub async fn run(ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    if !ctx.config.dmarc.reports {
        return;
    }
    let tick = Duration::from_secs(interval(&ctx.config).min(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.recv() => return,
        }
        let before = window_start(now(), interval(&ctx.config));
        match reports(&ctx.store, &ctx.config, &ctx.mailauth, Some(&ctx), before).await {
            Ok(out) if !out.is_empty() => tracing::info!("{}", out.trim_end()),
            Ok(_) => {}
            Err(e) => tracing::warn!("DMARC reports: {e}"),
        }
    }
}

/// `tern dmarc report`: with `ctx` (a running server), sends the reports
/// of the windows that have ended now; without it (`--dry-run`), prints
/// every report that would be sent, the window in progress included,
/// and keeps everything.
pub async fn report_now(
    store: &Store,
    config: &Config,
    mailauth: &MailAuth,
    ctx: Option<&ServerContext>,
) -> Result<String, ReportError> {
    let before = match ctx {
        Some(_) => window_start(now(), interval(config)),
        None => u64::MAX,
    };
    let out = reports(store, config, mailauth, ctx, before).await?;
    Ok(if out.is_empty() {
        "no DMARC reports to send\n".into()
    } else {
        out
    })
}

/// Makes the report of every window before `before`: sent and forgotten
/// with `ctx`, described (with its XML) without.
async fn reports(
    store: &Store,
    config: &Config,
    mailauth: &MailAuth,
    ctx: Option<&ServerContext>,
    before: u64,
) -> Result<String, ReportError> {
    let mut out = String::new();
    for window in store.dmarc_windows(before).await? {
        let rua = match mailauth
            .authorized_rua(&window.domain, &window.policy.rua)
            .await
        {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(domain = %window.domain, "DMARC report addresses not checked now: {e}");
                continue;
            }
        };
        let refused: Vec<&String> = window
            .policy
            .rua
            .iter()
            .filter(|a| !rua.contains(a))
            .collect();
        if !refused.is_empty() {
            out.push_str(&format!(
                "{}: not authorized to receive its reports (RFC 7489 7.1): {}\n",
                window.domain,
                refused
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let report =
            send::Report::make(config, mailauth.signer(), &window, interval(config), &rua)?;
        match ctx {
            None => out.push_str(&report.describe(&window)),
            Some(ctx) => {
                if !rua.is_empty() {
                    send::enqueue(ctx, &report, &rua).await?;
                    out.push_str(&format!(
                        "DMARC report {} for {} sent to {}\n",
                        report.id,
                        window.domain,
                        rua.join(", ")
                    ));
                }
                store.dmarc_forget(window.start, &window.domain).await?;
            }
        }
    }
    Ok(out)
}

/// The window a report covers, for its text.
fn describe_window(w: &DmarcWindow, end: u64) -> String {
    let t = |s: u64| {
        chrono::DateTime::from_timestamp(i64::try_from(s).unwrap_or(0), 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default()
    };
    format!("{} to {}", t(w.start), t(end))
}
