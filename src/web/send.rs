//! Sending from the browser through the same path as authenticated
//! submission: the message is built (mail-builder), then the `mail_from`,
//! `rcpt_to` and `data` hooks run with a `SessionInfo` whose protocol is
//! `submission` and whose user is the logged-in account (so
//! `sender_must_match_login`, relay rules and plugins apply exactly as for
//! a mail program), and `crate::submit::submit` — the path SMTP and LMTP
//! end in too: data hooks, header edits, DKIM signing, storage plugins,
//! the commit — stores it durably (local INBOX copies, queue entry for
//! remote recipients) before success is reported. A copy goes to `Sent`. Drafts are stored in `Drafts`.

use super::{ConnInfo, WebError};
use crate::address::{Address, ReversePath};
use crate::config::Protocol;
use crate::context::ServerContext;
use crate::hooks::{EnvelopeRecipient, SessionInfo, Verdict};
use crate::mail::{MailParams, RcptParams, Reply, Target};
use crate::store::{Flag, StoreError, format_queue_id};
use crate::submit::{Accepted, Arrival, Envelope, Refused, RoutedRecipient, submit};
use mail_builder::MessageBuilder;

/// An uploaded attachment.
pub struct Upload {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What the compose form holds.
#[derive(Default)]
pub struct Draft {
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub in_reply_to: String,
    pub references: String,
    pub attachments: Vec<Upload>,
}

/// Splits "Ann <ann@x>, bob@y; …" into bare addresses.
pub fn split_addresses(field: &str) -> Result<Vec<Address>, WebError> {
    let mut out = Vec::new();
    for item in field.split([',', ';', '\n']) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let bare = match (item.rfind('<'), item.rfind('>')) {
            (Some(a), Some(b)) if a < b => &item[a + 1..b],
            _ => item,
        };
        let addr = Address::parse(bare.trim(), true)
            .map_err(|e| WebError::BadRequest(format!("{bare:?} is not a valid address: {e}")))?;
        out.push(addr);
    }
    Ok(out)
}

/// The RFC 5322 message for a draft from `from`.
pub fn build(draft: &Draft, from: &str, hostname: &str) -> Result<Vec<u8>, WebError> {
    let list = |f: &str| -> Result<Vec<String>, WebError> {
        Ok(split_addresses(f)?.iter().map(|a| a.to_string()).collect())
    };
    let nonce: u64 = rand::random();
    let mut b = MessageBuilder::new()
        .from(from.to_string())
        .subject(draft.subject.clone())
        .message_id(format!("{nonce:016x}.web@{hostname}"))
        .date(chrono::Utc::now().timestamp())
        .header(
            "User-Agent",
            mail_builder::headers::raw::Raw::new("Tern web mail"),
        )
        .text_body(draft.body.replace("\r\n", "\n").replace('\n', "\r\n"));
    let to = list(&draft.to)?;
    if !to.is_empty() {
        b = b.to(to);
    }
    let cc = list(&draft.cc)?;
    if !cc.is_empty() {
        b = b.cc(cc);
    }
    let ids = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|i| i.trim_matches(|c| c == '<' || c == '>').to_string())
            .filter(|i| !i.is_empty() && i.contains('@'))
            .collect()
    };
    let irt = ids(&draft.in_reply_to);
    if !irt.is_empty() {
        b = b.in_reply_to(irt);
    }
    let refs = ids(&draft.references);
    if !refs.is_empty() {
        b = b.references(refs);
    }
    for a in &draft.attachments {
        b = b.attachment(a.content_type.clone(), a.name.clone(), a.data.clone());
    }
    b.write_to_vec()
        .map_err(|e| WebError::Send(format!("cannot build the message: {e}")))
}

fn refused(r: &Reply) -> WebError {
    WebError::Send(format!("{} {}", r.code, r.text()))
}

/// Sends a draft as `user`; returns a line for the user.
pub async fn send(
    ctx: &ServerContext,
    user: &str,
    conn: &ConnInfo,
    draft: &Draft,
) -> Result<String, WebError> {
    let mut rcpts = split_addresses(&draft.to)?;
    rcpts.extend(split_addresses(&draft.cc)?);
    rcpts.extend(split_addresses(&draft.bcc)?);
    if rcpts.is_empty() {
        return Err(WebError::BadRequest("add at least one recipient".into()));
    }
    if rcpts.len() > ctx.config.limits.max_recipients {
        return Err(WebError::BadRequest("too many recipients".into()));
    }
    let info = SessionInfo {
        client: conn.peer,
        local: conn.local,
        protocol: Protocol::Submission,
        helo: Some("webmail".into()),
        tls: conn.tls,
        user: Some(user.to_string()),
        trusted: ctx.config.is_trusted(conn.peer.ip()),
        plugins: ctx.hooks.session(),
        trace: crate::trace::Recorder::new(conn.peer.ip()),
    };
    info.trace.set_helo("webmail");
    let sender = Address::parse(user, true)
        .map_err(|e| WebError::Send(format!("the account is not an address: {e}")))?;
    let from = ReversePath::Mailbox(sender);
    info.trace.begin(&from.to_string());
    let params = MailParams::default();
    match ctx.hooks.mail_from(&info, &from, &params).await {
        Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) => {
            keep_refused(ctx, &info).await;
            return Err(refused(&r));
        }
        Verdict::Continue | Verdict::Accept => {}
    }
    let mut routed: Vec<Vec<Target>> = Vec::new();
    let rcpt_params = RcptParams::default();
    for (i, to) in rcpts.iter().enumerate() {
        let so_far = crate::hooks::Envelope {
            from: &from,
            params: &params,
            recipients: rcpts[..i]
                .iter()
                .map(|a| EnvelopeRecipient {
                    address: a.to_string(),
                    params: &rcpt_params,
                })
                .collect(),
        };
        let targets = match ctx.hooks.rcpt_to(&info, &so_far, to, &rcpt_params).await {
            Ok(t) => t,
            Err(Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r)) => {
                keep_refused(ctx, &info).await;
                return Err(WebError::Send(format!("{to}: {} {}", r.code, r.text())));
            }
            Err(Verdict::Continue | Verdict::Accept) => {
                return Err(WebError::Send(format!("{to}: refused, try again later")));
            }
        };
        routed.push(targets);
    }
    let bytes = build(draft, user, &ctx.config.hostname)?;
    if bytes.len() as u64 > ctx.config.limits.max_message_size.0 {
        return Err(WebError::Send("the message is too big".into()));
    }
    let header_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(bytes.len());
    let store = &ctx.store;
    let id = store.next_id().await?;
    let qid = format_queue_id(id);
    let mut writer = store.blob_writer(id);
    writer.write(&bytes).await?;
    let with = if conn.tls.is_some() { "HTTPS" } else { "HTTP" };
    let prefix = format!(
        "Received: from webmail ([{ip}])\r\n\tby {host} (Tern) with {with} id {qid} (node {node})\r\n\tfor <{user}>; {date}\r\n",
        node = ctx.config.node_id,
        ip = conn.peer.ip(),
        host = ctx.config.hostname,
        date = chrono::Utc::now().to_rfc2822(),
    )
    .into_bytes();
    let hook_envelope = crate::hooks::Envelope {
        from: &from,
        params: &params,
        recipients: rcpts
            .iter()
            .map(|a| EnvelopeRecipient {
                address: a.to_string(),
                params: &rcpt_params,
            })
            .collect(),
    };
    let envelope = Envelope {
        id,
        sender: from.to_string(),
        recipients: routed
            .iter()
            .map(|t| RoutedRecipient {
                targets: t,
                notify: None,
                orcpt: None,
            })
            .collect(),
        envid: None,
        ret: None,
        smtputf8: rcpts.iter().any(|a| a.needs_smtputf8()) || !user.is_ascii(),
        eight_bit: !bytes.is_ascii(),
        require_tls: false,
        client: format!("webmail [{}]", conn.peer.ip()),
    };
    // The same path as a message over SMTP: data hooks (built-in checks,
    // then filters reading the body from the store), header edits, DKIM
    // signing, storage plugins, the commit.
    let arrival = Arrival {
        info: &info,
        hook_envelope: &hook_envelope,
        envelope: &envelope,
        writer,
        header: &bytes[..header_end],
        prefix,
        auth: None,
        quarantine: None,
    };
    let submitted = submit(ctx, arrival).await;
    keep_refused(ctx, &info).await;
    let committed = match submitted {
        Ok(Accepted::Committed(c)) => c,
        Ok(Accepted::Discarded) => {
            // A filter discarded it: nothing is kept but the sender's copy.
            tracing::info!(queue_id = %qid, from = %user, "web: discarded by a filter");
            keep_copy(ctx, user, "Sent", &bytes, vec![Flag::SEEN.into()]).await?;
            store.flush().await?;
            return Ok("Message sent.".to_string());
        }
        Err(Refused::Policy { reply, .. }) => return Err(refused(&reply)),
        Err(Refused::Storage) => {
            return Err(WebError::Send(
                "local storage problem; try again later".into(),
            ));
        }
    };
    // The message is gone out: a Sent copy over the quota only costs the copy.
    let kept = match keep_copy(ctx, user, "Sent", &bytes, vec![Flag::SEEN.into()]).await {
        Ok(_) => "",
        Err(WebError::Store(StoreError::OverQuota { .. })) => {
            " No copy was kept in Sent: your mailbox is over its quota."
        }
        Err(e) => return Err(e),
    };
    store.flush().await?;
    let to: Vec<String> = rcpts.iter().map(|a| a.to_string()).collect();
    tracing::info!(
        queue_id = %qid,
        from = %user,
        to = %to.join(","),
        size = committed.size,
        client = %conn.peer,
        "web: sent"
    );
    Ok(format!("Message sent to {}.{kept}", to.join(", ")))
}

/// Appends to one of the user's folders, creating it if an old account lacks it.
pub async fn keep_copy(
    ctx: &ServerContext,
    user: &str,
    folder: &str,
    bytes: &[u8],
    flags: Vec<String>,
) -> Result<u32, WebError> {
    if ctx.store.folder(user, folder).await?.is_none() {
        match ctx.store.create_folder(user, folder).await {
            Ok(_) | Err(StoreError::FolderExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ctx.store.append(user, folder, bytes, flags, None).await?.1)
}

/// A refusal in this send is kept as a refused attempt (`crate::trace`).
async fn keep_refused(ctx: &ServerContext, info: &SessionInfo) {
    if let Some(t) = info.trace.refused() {
        crate::trace::keep_refused(&ctx.store, t).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_split_and_checked() {
        let a = split_addresses("Ann <ann@x.test>, bob@y.test; \n").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].to_string(), "ann@x.test");
        assert!(split_addresses("not an address").is_err());
    }

    #[test]
    fn builds_a_message_without_bcc() {
        let d = Draft {
            to: "ann@x.test".into(),
            bcc: "secret@y.test".into(),
            subject: "Hi <there>".into(),
            body: "line\nline2".into(),
            in_reply_to: "<a@b>".into(),
            ..Draft::default()
        };
        let bytes = build(&d, "bob@x.test", "mx.x.test").unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("From: <bob@x.test>") || text.contains("From: bob@x.test"),
            "{text}"
        );
        assert!(text.contains("In-Reply-To: <a@b>"), "{text}");
        assert!(!text.contains("secret@y.test"));
        assert!(text.contains("line\r\nline2"));
    }
}
