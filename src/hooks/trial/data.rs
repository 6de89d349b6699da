//! The end of data in `tern plugin test`: the message written to the
//! scratch store below the trace fields a server would put on top of it
//! (`Received:`, and on submission a missing `Message-ID:`/`Date:`), the
//! filters' hook over it, and, with their header edits applied as a
//! server applies them, the delivery hook for each account (with
//! `--sieve`, the script made each account's active one first).

use super::describe::{describe_delivery, describe_verdict};
use super::{Runner, TrialError, TrialInput, TrialReport};
use crate::address::{Address, ReversePath};
use crate::config::Config;
use crate::hooks::bindings::{self, EnvelopeRecipient};
use crate::hooks::{DataMessage, MessageView, SessionInfo, Verdict};
use crate::mail::{MailParams, RcptParams};
use crate::store::Store;
use std::time::Instant;

/// The fields a server puts on top of the message before the filters see
/// it (`Received:`; on submission, a missing `Message-ID:` and `Date:`),
/// and the queue id it names.
pub(super) async fn trace_fields(
    input: &TrialInput,
    config: &Config,
    store: &Store,
    accepted: &[Address],
) -> Result<(u64, Vec<u8>), TrialError> {
    use crate::mail::received::{Arrival, Submitted};
    let id = store.next_id().await?;
    let qid = crate::store::format_queue_id(id);
    let only = match accepted {
        [only] => Some(only.to_string()),
        _ => None,
    };
    let arrival = Arrival {
        helo: &input.helo,
        client: input.client,
        tls: None,
        esmtp: true,
        lmtp: false,
        authenticated: input.login.is_some(),
        host: &config.hostname,
        queue_id: &qid,
        node: &config.node_id,
        only_recipient: only.as_deref(),
    };
    let header = crate::mail::lines::to_crlf(&input.message);
    let header = &header[..find(&header, b"\r\n\r\n").map_or(header.len(), |p| p + 4)];
    let fields = crate::hooks::message::parse_headers(header);
    let has = |name: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(name));
    let submitted = input.login.is_some().then(|| Submitted {
        has_message_id: has("Message-ID"),
        has_date: has("Date"),
    });
    Ok((id, crate::mail::received::trace_fields(&arrival, submitted)))
}

/// The session's envelope as it stands at the end of data.
pub(super) struct Session<'a> {
    pub(super) info: &'a SessionInfo,
    pub(super) from: &'a ReversePath,
    pub(super) params: &'a MailParams,
    pub(super) accepted: &'a [Address],
}

/// The data hook over the message, written to the scratch store first
/// (filters read it range by range, as in a server) below the trace
/// fields; then, with the filters' header edits applied as a server
/// applies them, the delivery hook for each account.
pub(super) async fn run_data(
    report: &mut TrialReport,
    store: &Store,
    session: &Session<'_>,
    (id, mut prefix): (u64, Vec<u8>),
    accounts: &[(String, String)],
    input: &TrialInput,
) -> Result<(), TrialError> {
    let info = session.info;
    let bytes = crate::mail::lines::to_crlf(&input.message);
    let header_end = find(&bytes, b"\r\n\r\n").map_or(bytes.len(), |p| p + 4);
    let mut writer = store.blob_writer(id);
    writer.write(&bytes).await?;
    let rcpt_params = RcptParams::default();
    let envelope = crate::hooks::Envelope {
        from: session.from,
        params: session.params,
        recipients: session
            .accepted
            .iter()
            .map(|a| EnvelopeRecipient {
                address: a.to_string(),
                params: &rcpt_params,
            })
            .collect(),
    };
    let header = &bytes[..header_end];
    let message = DataMessage {
        blob: id,
        tail: writer.tail(),
        prefix: &prefix,
        header,
        auth: None,
        skip: 0,
    };
    let view = MessageView::of(store.clone(), &message, bindings::arrival(info));
    let plugins = info.plugins.clone();
    let mut edits = None;
    let filter = report.hooks.contains(&"on-data")
        && !Runner {
            report,
            plugins: &plugins,
        }
        .turned_off("on-data", "message");
    if filter {
        edits = Some(data_hook(report, info, &envelope, &view).await);
    }
    if edits.as_ref().is_some_and(|e| e.discard)
        || report.refused.is_some()
        || !report.hooks.contains(&"deliver")
    {
        return Ok(());
    }
    let mut run = Runner {
        report,
        plugins: &plugins,
    };
    if run.turned_off("deliver", "every recipient") {
        return Ok(());
    }
    let skip = edits.map_or(0, |e| e.apply_edits(&mut prefix, header));
    let kept = DataMessage {
        blob: id,
        tail: writer.tail(),
        prefix: &prefix,
        header,
        auth: None,
        skip,
    };
    let view = MessageView::of(store.clone(), &kept, bindings::arrival(info));
    let wit_envelope = bindings::envelope(&envelope);
    for (address, account) in accounts {
        if let Some(script) = &input.sieve {
            make_active(store, account, script).await?;
        }
        let start = Instant::now();
        let decision = info
            .plugins
            .deliver(
                &wit_envelope,
                &crate::hooks::delivery::Account {
                    name: account,
                    address,
                },
                &view,
            )
            .await;
        // The account, where it is not the address itself (an alias).
        let subject = if account.eq_ignore_ascii_case(address) {
            format!("<{address}>")
        } else {
            format!("<{address}> ({account})")
        };
        run.record(
            "deliver",
            &subject,
            describe_delivery(decision.as_ref()),
            start,
        );
    }
    Ok(())
}

/// The data hook over the message: its verdict and edits recorded; a
/// refusal ends the run. Returns what the filters decided (a discarded
/// message is not delivered, so no delivery hook runs then).
async fn data_hook(
    report: &mut TrialReport,
    info: &SessionInfo,
    envelope: &crate::hooks::Envelope<'_>,
    view: &MessageView,
) -> crate::hooks::DataOutcome {
    let start = Instant::now();
    let outcome = info
        .plugins
        .data(info, &bindings::envelope(envelope), view)
        .await;
    let mut parts = vec![match &outcome.verdict {
        None => "continue".to_string(),
        Some(v) => describe_verdict(v),
    }];
    if !outcome.add_headers.is_empty() {
        let added = String::from_utf8_lossy(&outcome.add_headers);
        parts.push(format!(
            "add headers: {}",
            added.trim_end().replace("\r\n", " | ")
        ));
    }
    if !outcome.remove_headers.is_empty() {
        parts.push(format!(
            "remove headers: {}",
            outcome.remove_headers.join(", ")
        ));
    }
    if outcome.discard {
        parts.push("discard (250, nothing kept)".into());
    }
    if let Some(q) = &outcome.quarantine {
        parts.push(format!("quarantine: {q}"));
    }
    if let Some(f) = &outcome.local_folder {
        parts.push(format!("local copies to {f}"));
    }
    Runner {
        report,
        plugins: &info.plugins,
    }
    .record("on-data", "message", parts.join("; "), start);
    let verdict = outcome.verdict.unwrap_or(Verdict::Continue);
    if let Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) = &verdict {
        report.refused = Some(r.clone());
        report.accepted.clear();
    }
    crate::hooks::DataOutcome {
        verdict,
        add_headers: outcome.add_headers,
        remove_headers: outcome.remove_headers,
        discard: outcome.discard,
        quarantine: outcome.quarantine,
        local_folder: outcome.local_folder,
    }
}

/// The account in the scratch store with `script` as its active Sieve
/// script (a broken script is the input's error, as `tern sieve put`'s).
async fn make_active(store: &Store, account: &str, script: &[u8]) -> Result<(), TrialError> {
    match store.add_user(account, "trial").await {
        Ok(()) | Err(crate::store::StoreError::UserExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let limits = crate::config::SieveConfig::default();
    let sieve = store.sieve();
    sieve
        .put(account, "trial", script, &limits)
        .await
        .map_err(|e| TrialError::Input(format!("--sieve: {e}")))?;
    sieve
        .activate(account, Some("trial"))
        .await
        .map_err(|e| TrialError::Input(format!("--sieve: {e}")))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
