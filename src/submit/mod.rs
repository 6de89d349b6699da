//! The one submission path every way into Tern ends in — SMTP and LMTP
//! DATA/BDAT (`smtp/data.rs`) and web mail's Send (`web/send.rs`): once the
//! body is in the store and the envelope routed, `submit` runs the
//! end-of-data hooks (built-in checks, then filter plugins), applies their
//! header edits, DKIM-signs mail from authenticated or trusted senders,
//! hands local copies to storage plugins that claim the mailbox, and
//! commits (`commit.rs`): body, local copies and queue entry in one batch,
//! flushed before it returns. The caller only turns the outcome into its
//! protocol's answer (an SMTP reply, a web page). Nothing here knows a
//! socket or a protocol's wire format.

mod commit;
mod deliver;

pub use commit::{Committed, Envelope, RoutedRecipient};

use crate::context::ServerContext;
use crate::hooks::{DataMessage, SessionInfo, Verdict};
use crate::mail::{Reply, Target};
use crate::mailauth::AuthResults;
use crate::store::{BlobWriter, format_queue_id};
use crate::trace::{Event, Stage};

/// A message at its end of data: the body already streamed into the store,
/// the recipients routed, nothing acknowledged yet.
pub struct Arrival<'a> {
    /// The session it came in on, as the hooks see it.
    pub info: &'a SessionInfo,
    /// The envelope as the hooks see it.
    pub hook_envelope: &'a crate::hooks::Envelope<'a>,
    /// The envelope as it is committed; `envelope.id` is the body's blob id.
    pub envelope: &'a Envelope<'a>,
    /// The body as received.
    pub writer: BlobWriter,
    /// The header section as received (up to and including the blank line).
    pub header: &'a [u8],
    /// Header lines Tern puts in front (`Received:`, Authentication-Results,
    /// an ARC set); the filters' added fields and the DKIM signature join it.
    pub prefix: Vec<u8>,
    /// What SPF, DKIM, DMARC and ARC found: mail from outside only. Mail
    /// that was verified is never signed.
    pub auth: Option<&'a AuthResults>,
    /// A quarantine decided before the hooks (DMARC policy), if any; a
    /// filter's quarantine takes precedence.
    pub quarantine: Option<&'a str>,
}

/// What became of an accepted message.
#[derive(Debug)]
pub enum Accepted {
    /// Durably stored and queued.
    Committed(Committed),
    /// A filter discarded it: accepted, and nothing kept.
    Discarded,
}

/// Why a message was not accepted.
#[derive(Debug)]
pub enum Refused {
    /// A data hook or a storage plugin refused it with this reply;
    /// `disconnect`: the session must end after it.
    Policy { reply: Reply, disconnect: bool },
    /// The store failed; nothing was kept and the sender should try again.
    Storage,
}

/// Runs the end-of-data sequence for `arrival` and commits it. Nothing
/// is durable, and nothing may be acknowledged, unless this returns
/// `Accepted::Committed`.
pub async fn submit(ctx: &ServerContext, arrival: Arrival<'_>) -> Result<Accepted, Refused> {
    let Arrival {
        info,
        hook_envelope,
        envelope,
        mut writer,
        header,
        mut prefix,
        auth,
        quarantine,
    } = arrival;
    let qid = format_queue_id(envelope.id);
    let outcome = ctx
        .hooks
        .data(
            info,
            hook_envelope,
            &DataMessage {
                blob: envelope.id,
                tail: writer.tail(),
                prefix: &prefix,
                header,
                auth,
                skip: 0,
            },
        )
        .await;
    match outcome.verdict {
        Verdict::Reject(reply) | Verdict::Tempfail(reply) => {
            return Err(Refused::Policy {
                reply,
                disconnect: false,
            });
        }
        Verdict::Disconnect(reply) => {
            return Err(Refused::Policy {
                reply,
                disconnect: true,
            });
        }
        Verdict::Continue | Verdict::Accept => {}
    }
    let skip = outcome.apply_edits(&mut prefix, header);
    writer.skip_leading(skip);
    if outcome.discard {
        // Dropping the writer removes the body; the story is kept alone.
        if let Some(t) = info.trace.dropped() {
            crate::trace::keep_refused(&ctx.store, t).await;
        }
        return Ok(Accepted::Discarded);
    }
    // Signed last, over the headers the filters added too.
    if auth.is_none() && (info.user.is_some() || info.trusted) {
        sign(ctx, &qid, envelope, header, &writer, &mut prefix).await?;
    }
    // The delivery plugins decide each local account's copy.
    let quarantine = outcome.quarantine.as_deref().or(quarantine);
    // The folder a filter chose (`verdicts.local-folder`) takes the local
    // copies; relayed ones are unaffected unless it is a quarantine (Junk,
    // or the folder the quarantining filter named).
    let chosen = outcome.local_folder.as_deref();
    let default_folder = match (&outcome.quarantine, quarantine) {
        (Some(_), _) => chosen.unwrap_or("Junk"),
        (None, Some(_)) => "Junk",
        (None, None) => chosen.unwrap_or("INBOX"),
    };
    // The message as it will be kept, for the delivery and storage plugins.
    let kept = DataMessage {
        blob: envelope.id,
        tail: writer.tail(),
        prefix: &prefix,
        header,
        auth,
        skip,
    };
    let plan = deliver::plan(
        ctx,
        info,
        hook_envelope,
        envelope,
        &kept,
        default_folder,
        quarantine.is_some(),
    )
    .await?;
    // Mailboxes a storage plugin claims are delivered there, now.
    let locals: Vec<String> = envelope
        .recipients
        .iter()
        .flat_map(|r| r.targets)
        .filter_map(|t| match t {
            Target::Local(u) if plan.keeps(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    let claimed = ctx
        .hooks
        .deliver_to_storage(info, &locals, &kept)
        .await
        .map_err(|reply| Refused::Policy {
            reply,
            disconnect: false,
        })?;
    for user in &claimed {
        let e = Event::new(Stage::Store, "storage plugin", "stored");
        info.trace.record(e.users(vec![user.clone()]));
    }
    // Redirected copies and refusal notices carry the message as stored.
    let stored = match plan.sends_message() {
        true => Some(stored_message(&qid, &writer, &prefix).await?),
        false => None,
    };
    let effects = commit::PluginEffects {
        stored_by_plugins: &claimed,
        quarantine,
        folder: default_folder,
        filed: Some(&plan.filed),
    };
    let mut whole = prefix.clone();
    whole.extend_from_slice(header);
    let traced = commit::Traced {
        recorder: &info.trace,
        message_id: crate::trace::message_id(&whole),
    };
    match commit::commit(ctx, writer, prefix, envelope, &effects, traced).await {
        Ok(mut committed) => {
            committed.refused = plan.refused_now();
            deliver::send_after_commit(ctx, plan, envelope, stored.as_deref()).await;
            Ok(Accepted::Committed(committed))
        }
        Err(e) => {
            tracing::error!(queue_id = %qid, "{e}");
            Err(Refused::Storage)
        }
    }
}

/// The body as stored: without the leading bytes left out.
async fn kept_body(qid: &str, writer: &BlobWriter) -> Result<Vec<u8>, Refused> {
    let mut body = writer.contents().await.map_err(|e| {
        tracing::error!(queue_id = qid, "reading message failed: {e}");
        Refused::Storage
    })?;
    let skipped = usize::try_from(writer.skipped())
        .unwrap_or(0)
        .min(body.len());
    body.drain(..skipped);
    Ok(body)
}

/// The prefix and the body as stored.
async fn stored_message(qid: &str, writer: &BlobWriter, prefix: &[u8]) -> Result<Vec<u8>, Refused> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(&kept_body(qid, writer).await?);
    Ok(out)
}

/// DKIM-signs a submission whose From: domain (else envelope sender domain)
/// has a `[[dkim]]` key: the signature covers the prefix Tern adds and the
/// body, and goes at the top of the prefix. Unsigned mail still goes out;
/// the log says why.
async fn sign(
    ctx: &ServerContext,
    qid: &str,
    envelope: &Envelope<'_>,
    header: &[u8],
    writer: &BlobWriter,
    prefix: &mut Vec<u8>,
) -> Result<(), Refused> {
    let signer = ctx.mailauth.signer();
    if signer.is_empty() {
        return Ok(());
    }
    let body = kept_body(qid, writer).await?;
    let envelope_from = (!envelope.sender.is_empty()).then_some(envelope.sender.as_str());
    if let Err(e) = signer.sign_submission(&ctx.config, header, envelope_from, prefix, &body) {
        tracing::error!(queue_id = qid, "{e}");
    }
    Ok(())
}
