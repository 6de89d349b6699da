//! DATA and BDAT: reading the message (strict end of data, size limit,
//! nothing whole in memory), SPF/DKIM/DMARC/ARC for mail from outside, the
//! `Received:` header, then the submission path shared with web mail
//! (`crate::submit`: data hooks, header edits, DKIM signing, storage
//! plugins, and the commit that writes body, local copies and queue entry in
//! one batch flushed to disk) before the 250.

use super::body::{ChunkDecoder, DataDecoder, MessageSink, SinkLimits};
use super::events::{auth_event, quota_event};
use super::session::{Session, Transaction};
use crate::address::ReversePath;
use crate::config::Protocol;
use crate::config::SpfAction;
use crate::mail::{Body, Notify, Reply, Target};
use crate::mailauth::policy_actions as actions;
use crate::mailauth::{AuthResults, Decision, Origin, decide, forged_results};
use crate::store::{QueueEntry, QueueRecipient, format_queue_id, now};
use crate::submit::{Accepted, Arrival, Envelope, Refused, RoutedRecipient, submit};
use crate::trace::Stage;
use std::io;

/// A BDAT transfer in progress.
pub(super) struct BdatState {
    id: u64,
    sink: MessageSink,
    decoder: ChunkDecoder,
}

impl Session {
    /// Checks that a transaction can take data; replies and returns false if not.
    async fn ready_for_data(&mut self) -> io::Result<bool> {
        match &self.tx {
            None => {
                self.error(Reply::new(503, "5.5.1", "Error: need MAIL command"))
                    .await?;
                Ok(false)
            }
            Some(tx) if tx.rcpts.is_empty() => {
                self.error(Reply::new(554, "5.5.1", "Error: no valid recipients"))
                    .await?;
                Ok(false)
            }
            Some(_) => Ok(true),
        }
    }

    /// 451 4.3.0: the store cannot take the message; traced as the store's
    /// refusal.
    async fn storage_problem(&mut self) -> io::Result<()> {
        let reply = Reply::new(
            451,
            "4.3.0",
            "Error: local storage problem, try again later",
        );
        self.trace_refusal(Stage::Data, "store", &reply);
        self.send(reply).await
    }

    async fn new_sink(&self) -> Result<(u64, MessageSink), crate::store::StoreError> {
        let store = &self.ctx.store;
        let id = store.next_id().await?;
        let writer = store.blob_writer(id);
        Ok((
            id,
            MessageSink::new(
                writer,
                SinkLimits {
                    max_size: self.ctx.config.limits.max_message_size.0,
                    max_header: self.ctx.config.limits.max_header_size.0 as usize,
                    max_parts: self.ctx.config.limits.max_mime_parts,
                },
            ),
        ))
    }

    pub(super) async fn data(&mut self) -> io::Result<()> {
        if self.tx.as_ref().is_some_and(|t| t.bdat.is_some()) {
            return self
                .error(Reply::new(503, "5.5.1", "Error: BDAT in progress"))
                .await;
        }
        if !self.ready_for_data().await? {
            return Ok(());
        }
        let (id, mut sink) = match self.new_sink().await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("cannot start a message (451 4.3.0): {e}");
                return self.storage_problem().await;
            }
        };
        self.send(Reply::new(354, "2.0.0", "End data with <CR><LF>.<CR><LF>"))
            .await?;
        self.conn.flush().await?;
        let mut decoder = DataDecoder::default();
        let mut out = Vec::with_capacity(32 * 1024);
        let timeout = self.ctx.config.limits.command_timeout.0;
        loop {
            if self.conn.buffered().is_empty() {
                let n = match tokio::time::timeout(timeout, self.conn.fill()).await {
                    Ok(r) => r?,
                    Err(_) => return self.timed_out().await,
                };
                if n == 0 {
                    tracing::info!(client = %self.info.client, "connection lost during DATA; nothing kept");
                    self.closing = true;
                    return Ok(());
                }
            }
            let end = decoder.feed(self.conn.buffered(), &mut out);
            let used = end.unwrap_or(self.conn.buffered().len());
            self.conn.consume(used);
            self.check_space(&mut sink, out.len());
            sink.push(&out).await;
            out.clear();
            if end.is_some() {
                break;
            }
        }
        self.commit(id, sink).await
    }

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> io::Result<()> {
        // The chunk is read in every case, so the session stays in step.
        let usable = self.tx.as_ref().is_some_and(|t| !t.rcpts.is_empty());
        if usable && self.tx.as_ref().is_some_and(|t| t.bdat.is_none()) {
            match self.new_sink().await {
                Ok((id, sink)) => {
                    if let Some(tx) = self.tx.as_mut() {
                        tx.bdat = Some(BdatState {
                            id,
                            sink,
                            decoder: ChunkDecoder::default(),
                        });
                    }
                }
                Err(e) => tracing::error!("cannot start a message: {e}"),
            }
        }
        let mut remaining = size;
        let mut out = Vec::with_capacity(32 * 1024);
        let timeout = self.ctx.config.limits.command_timeout.0;
        while remaining > 0 {
            if self.conn.buffered().is_empty() {
                let n = match tokio::time::timeout(timeout, self.conn.fill()).await {
                    Ok(r) => r?,
                    Err(_) => return self.timed_out().await,
                };
                if n == 0 {
                    self.closing = true;
                    return Ok(());
                }
            }
            let take = (self.conn.buffered().len() as u64).min(remaining) as usize;
            let low_space = !self.space_during_data(take);
            if let Some(state) = self.tx.as_mut().and_then(|t| t.bdat.as_mut()) {
                state.decoder.feed(&self.conn.buffered()[..take], &mut out);
                if low_space {
                    state.sink.abandon_for_space();
                }
                state.sink.push(&out).await;
                out.clear();
            }
            self.conn.consume(take);
            remaining -= take as u64;
        }
        if !usable {
            return self.ready_for_data().await.map(|_| ());
        }
        let Some(state) = self.tx.as_mut().and_then(|t| t.bdat.as_mut()) else {
            self.tx = None;
            return self.storage_problem().await;
        };
        if !last {
            let n = state.sink.size();
            return self
                .send(Reply::new(250, "2.0.0", format!("{n} octets received")))
                .await;
        }
        state.decoder.finish(&mut out);
        state.sink.push(&out).await;
        let Some(BdatState { id, sink, .. }) = self.tx.as_mut().and_then(|t| t.bdat.take()) else {
            return Ok(());
        };
        self.commit(id, sink).await
    }

    /// Ends the transaction: hooks, then the durable commit, then the reply
    /// (LMTP: one per recipient, a recipient refused for its quota its own).
    async fn commit(&mut self, id: u64, sink: MessageSink) -> io::Result<()> {
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let qid = format_queue_id(id);
        let mut refused = vec![None; tx.rcpts.len()];
        let reply = self
            .commit_transaction(id, &qid, &tx, sink, &mut refused)
            .await;
        self.keep_refused().await;
        if reply.is_positive() {
            crate::metrics::counter(
                "tern_messages_accepted_total",
                &[("protocol", self.protocol.name())],
            );
        } else {
            crate::metrics::refused(super::session::refusal_reason(&reply));
        }
        if self.protocol == Protocol::Lmtp {
            // One reply per recipient (RFC 2033): one refused for its
            // quota or by its delivery plugin gets its own.
            for own in refused {
                self.send(own.unwrap_or_else(|| reply.clone())).await?;
            }
            return Ok(());
        }
        self.send(reply).await
    }

    async fn commit_transaction(
        &mut self,
        id: u64,
        qid: &str,
        tx: &Transaction,
        mut sink: MessageSink,
        refused: &mut [Option<Reply>],
    ) -> Reply {
        if let Some(why) = sink.failure() {
            tracing::info!(client = %self.info.client, size = sink.size(), "message refused: {why}");
            let reply = why.reply();
            self.trace_refusal(Stage::Data, "message limits", &reply);
            return reply;
        }
        let (auth, decision) = match self.authenticate(qid, tx, &mut sink).await {
            Ok(x) => x,
            Err(reply) => {
                self.trace_refusal(Stage::Data, "store", &reply);
                return reply;
            }
        };
        if let Decision::Reject(code, text) = decision {
            tracing::info!(queue_id = qid, client = %self.info.client, from = %tx.from, "message refused: {text}");
            return Reply::new(550, code, text);
        }
        let mut prefix = self.prefix_headers(qid, tx, &sink);
        if let Some(a) = &auth {
            // Right below our Received: (which stays the first line).
            prefix.extend_from_slice(a.header.as_bytes());
            // A forwarded message's ARC set goes on top (RFC 8617 4.2).
            if let Some(set) = &a.arc_set {
                let mut sealed = set.clone().into_bytes();
                sealed.extend_from_slice(&prefix);
                prefix = sealed;
            }
        }
        let received = match sink.finish() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(queue_id = qid, "storing message failed: {e}");
                let reply = e.reply();
                self.trace_refusal(Stage::Data, "store", &reply);
                return reply;
            }
        };
        let eight_bit = received.eight_bit || matches!(tx.params.body, Some(Body::EightBitMime));
        let size = received.size + prefix.len() as u64;
        for (i, r) in tx.rcpts.iter().enumerate() {
            refused[i] = super::quota::refusal(self, r, size).await;
        }
        let all = refused.iter().all(Option::is_some);
        if all || self.protocol == Protocol::Lmtp {
            // Refused now (not queued): each is its recipient's decision.
            for (r, reply) in tx.rcpts.iter().zip(refused.iter()) {
                if let Some(reply) = reply {
                    self.info.trace.record(quota_event(Stage::Data, r, reply));
                }
            }
        }
        if all {
            tracing::info!(queue_id = qid, from = %tx.from, size, "refused: every recipient is over quota");
            let replies: Vec<Reply> = refused.iter().flatten().cloned().collect();
            return super::quota::all_refused(&replies);
        }
        if self.protocol != Protocol::Lmtp {
            // One answer for all: the commit queues the copies that do not fit.
            refused.fill(None);
        }
        let recipients = tx
            .rcpts
            .iter()
            .zip(refused.iter())
            .filter(|(_, refusal)| refusal.is_none())
            .map(|(r, _)| RoutedRecipient {
                targets: &r.targets,
                notify: r.params.notify.as_ref().map(Notify::to_text),
                orcpt: r.params.orcpt.as_ref().map(|(t, a)| format!("{t};{a}")),
            })
            .collect();
        let envelope = Envelope {
            id,
            sender: tx.from.to_string(),
            recipients,
            envid: tx.params.envid.clone(),
            ret: tx
                .params
                .ret
                .as_ref()
                .map(|r| format!("{r:?}").to_ascii_uppercase()),
            smtputf8: tx.params.smtputf8,
            eight_bit,
            require_tls: tx.params.requiretls,
            client: self.client_text(),
        };
        // The hooks see the recipients that go on (LMTP: not those just
        // refused for their quota), in the order of `envelope`.
        let mut hook_envelope = tx.envelope();
        let mut keep = refused.iter().map(Option::is_none);
        hook_envelope
            .recipients
            .retain(|_| keep.next().unwrap_or(true));
        let arrival = Arrival {
            info: &self.info,
            hook_envelope: &hook_envelope,
            envelope: &envelope,
            writer: received.writer,
            header: &received.header,
            prefix,
            auth: auth.as_ref(),
            quarantine: (decision == Decision::Quarantine).then_some("DMARC policy quarantine"),
        };
        let committed = match submit(&self.ctx, arrival).await {
            Ok(Accepted::Committed(c)) => c,
            Ok(Accepted::Discarded) => {
                tracing::info!(queue_id = qid, from = %tx.from, client = %self.client_text(), "discarded by a filter");
                return Reply::new(250, "2.0.0", format!("Ok: queued as {qid}"));
            }
            Err(Refused::Policy { reply, disconnect }) => {
                self.closing |= disconnect;
                return reply;
            }
            Err(Refused::Storage) => {
                tracing::warn!(queue_id = qid, client = %self.client_text(), "refused with 451 4.3.0: the message could not be stored");
                let reply = Reply::new(
                    451,
                    "4.3.0",
                    "Error: local storage problem, try again later",
                );
                self.trace_refusal(Stage::Store, "store", &reply);
                return reply;
            }
        };
        let size = committed.size;
        // The delivery plugins' refusals (LMTP) count the recipients that
        // went to the commit; each is that recipient's own reply.
        let kept: Vec<usize> = (0..refused.len())
            .filter(|&i| refused[i].is_none())
            .collect();
        for (i, reply) in committed.refused {
            if let Some(&at) = kept.get(i) {
                refused[at] = Some(reply);
            }
        }
        self.report_local_success(id, tx, refused, &committed.over_quota, size)
            .await;
        let to: Vec<String> = tx
            .rcpts
            .iter()
            .zip(refused.iter())
            .filter(|(_, refusal)| refusal.is_none())
            .map(|(r, _)| r.address.to_string())
            .collect();
        tracing::info!(
            queue_id = qid,
            from = %tx.from,
            to = %to.join(","),
            size,
            client = %self.client_text(),
            user = self.info.user.as_deref().unwrap_or(""),
            "accepted"
        );
        Reply::new(250, "2.0.0", format!("Ok: queued as {qid}"))
    }

    /// NOTIFY=SUCCESS for recipients delivered to local mailboxes just now
    /// (not those `refused`, nor those with a mailbox whose copy was queued
    /// because it was `over_quota`: the queue reports on those).
    async fn report_local_success(
        &self,
        id: u64,
        tx: &Transaction,
        refused: &[Option<Reply>],
        over_quota: &[String],
        size: u64,
    ) {
        let recipients: Vec<QueueRecipient> = tx
            .rcpts
            .iter()
            .zip(refused.iter())
            .filter(|(_, refusal)| refusal.is_none())
            .map(|(r, _)| r)
            .filter(|r| r.params.notify.as_ref().is_some_and(|n| n.success))
            .filter(|r| r.targets.iter().any(|t| matches!(t, Target::Local(_))))
            .filter(|r| {
                !r.targets
                    .iter()
                    .any(|t| matches!(t, Target::Local(u) if over_quota.contains(u)))
            })
            .map(|r| {
                let mut q = QueueRecipient::new(
                    r.address.to_string(),
                    Some("SUCCESS".into()),
                    r.params.orcpt.as_ref().map(|(t, a)| format!("{t};{a}")),
                    Vec::new(),
                );
                q.state = crate::store::RecipientState::Delivered;
                q.status = Some("2.0.0".into());
                q.remote_mta = Some(self.ctx.config.hostname.clone());
                q
            })
            .collect();
        if recipients.is_empty() || matches!(tx.from, crate::address::ReversePath::Null) {
            return;
        }
        let which: Vec<usize> = (0..recipients.len()).collect();
        let entry = QueueEntry {
            id,
            blob: id,
            size,
            sender: tx.from.to_string(),
            envid: tx.params.envid.clone(),
            ret: None,
            smtputf8: tx.params.smtputf8,
            eight_bit: false,
            arrived: now(),
            client: self.client_text(),
            recipients,
            warned: true,
            require_tls: tx.params.requiretls,
            node: None,
        };
        if let Err(e) = crate::queue::notify::send(
            &self.ctx,
            &entry,
            &which,
            crate::queue::dsn::DsnKind::Delivered,
        )
        .await
        {
            tracing::warn!(queue_id = %entry.queue_id(), "success notification not queued: {e}");
        }
    }

    /// SPF, DKIM, DMARC and ARC for mail from outside (neither
    /// authenticated nor trusted): the results and what `[auth]` makes of
    /// them. Needs the whole message: the stored chunks are read into one
    /// buffer once, and dropped before the commit. `Authentication-Results`
    /// fields in the received header section that claim our host name are
    /// renamed in place to `X-Removed-Auth-Results` (same length, so the
    /// stored chunks are patched, not copied).
    async fn authenticate(
        &self,
        qid: &str,
        tx: &Transaction,
        sink: &mut MessageSink,
    ) -> Result<(Option<AuthResults>, Decision), Reply> {
        let config = &self.ctx.config;
        if self.info.user.is_some() || self.info.trusted || !config.auth.verify {
            return Ok((None, Decision::Accept));
        }
        let forged = forged_results(sink.header(), &config.hostname);
        let Some(writer) = sink.writer_mut() else {
            return Ok((None, Decision::Accept));
        };
        let message = writer
            .contents()
            .await
            .map_err(|e| storage_trouble(qid, e))?;
        let mail_from = match &tx.from {
            ReversePath::Null => String::new(),
            other => other.to_string(),
        };
        let origin = Origin {
            ip: self.info.client.ip(),
            helo: self.info.helo.as_deref().unwrap_or("unknown"),
            mail_from: &mail_from,
        };
        let (spf, _, _) = actions(&config.auth, &origin);
        let forwarding = tx
            .rcpts
            .iter()
            .flat_map(|r| &r.targets)
            .any(|t| !matches!(t, Target::Local(_)));
        let results = self
            .ctx
            .mailauth
            .verify(&origin, &message, spf != SpfAction::Off, forwarding)
            .await;
        drop(message);
        for offset in forged {
            writer
                .patch(offset as u64, b"X-Removed-Auth-Results")
                .await
                .map_err(|e| storage_trouble(qid, e))?;
        }
        let decision = decide(&config.auth, &origin, &results);
        self.info.trace.record(auth_event(&results, &decision));
        crate::dmarc::record(
            &self.ctx,
            origin.ip,
            origin.mail_from_domain(),
            &results,
            &decision,
        )
        .await;
        tracing::info!(
            queue_id = qid,
            spf = results.spf_mail_from.as_ref().map_or("off", |s| s.result.as_str()),
            dkim = %results.dkim.iter().map(|d| d.result.as_str()).collect::<Vec<_>>().join(","),
            dmarc = results.dmarc.result.as_str(),
            arc = results.arc.as_str(),
            "authentication checks"
        );
        Ok((Some(results), decision))
    }

    fn client_text(&self) -> String {
        let helo = self.info.helo.as_deref().unwrap_or("unknown");
        format!("{helo} [{}]", self.info.client.ip())
    }

    /// `Received:` (always), and on submission `Message-ID:` and `Date:` when missing.
    fn prefix_headers(&self, qid: &str, tx: &Transaction, sink: &MessageSink) -> Vec<u8> {
        use crate::mail::received::{Arrival, Submitted, trace_fields};
        let only = match tx.rcpts.as_slice() {
            [only] => Some(only.address.to_string()),
            _ => None,
        };
        let arrival = Arrival {
            helo: self.info.helo.as_deref().unwrap_or("unknown"),
            client: self.info.client.ip(),
            tls: self.info.tls.map(|t| t.version),
            esmtp: self.esmtp,
            lmtp: self.protocol == Protocol::Lmtp,
            authenticated: self.info.user.is_some(),
            host: &self.ctx.config.hostname,
            queue_id: qid,
            node: &self.ctx.config.node_id,
            only_recipient: only.as_deref(),
        };
        let submitted =
            matches!(self.protocol, Protocol::Submission | Protocol::Submissions).then(|| {
                Submitted {
                    has_message_id: sink.has_header("Message-ID"),
                    has_date: sink.has_header("Date"),
                }
            });
        trace_fields(&arrival, submitted)
    }
}

fn storage_trouble(qid: &str, e: crate::store::StoreError) -> Reply {
    tracing::error!(queue_id = qid, "reading message failed: {e}");
    Reply::new(
        451,
        "4.3.0",
        "Error: local storage problem, try again later",
    )
}
