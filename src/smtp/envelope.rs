//! MAIL FROM and RCPT TO: building the envelope. Order and limits are
//! checked here (EHLO first, AUTH on submission, SIZE, max_recipients); the
//! address checks and routing run through the hook seams; a local mailbox
//! over quota is refused here already (`quota.rs`). Every refusal made
//! here is traced with the check that made it.

use super::events::quota_event;
use super::session::{Recipient, Session, Transaction};
use crate::address::{Address, ReversePath};
use crate::hooks::Verdict;
use crate::mail::Reply;
use crate::mail::{MailParams, RcptParams};
use crate::trace::{Event, Stage};
use std::io;

impl Session {
    pub(super) async fn mail(&mut self, from: ReversePath, params: MailParams) -> io::Result<()> {
        if self.info.helo.is_none() {
            return self
                .error(Reply::new(503, "5.5.1", "Error: send HELO/EHLO first"))
                .await;
        }
        if self.tx.is_some() {
            return self
                .error(Reply::new(503, "5.5.1", "Error: nested MAIL command"))
                .await;
        }
        if self.needs_auth() {
            return self
                .error_by(
                    "submission auth",
                    Reply::new(530, "5.7.0", "Authentication required"),
                )
                .await;
        }
        if params.requiretls && !self.conn.is_tls() {
            return self
                .error_by(
                    "requiretls",
                    Reply::new(530, "5.7.10", "REQUIRETLS needs a TLS session"),
                )
                .await;
        }
        self.begin_trace(&from).await;
        let max = self.ctx.config.limits.max_message_size.0;
        let limit = if params.size.is_some_and(|s| s > max) {
            let text = "Message size exceeds fixed maximum message size";
            Some(("size limit", Reply::new(552, "5.3.4", text)))
        } else if !self.space_for(params.size.unwrap_or(0)) {
            let text = "Insufficient system storage, try again later";
            Some(("free space", Reply::new(452, "4.3.1", text)))
        } else {
            None
        };
        if let Some((by, reply)) = limit {
            self.trace_refusal(Stage::Mail, by, &reply);
            return self.refuse(reply).await;
        }
        match self.ctx.hooks.mail_from(&self.info, &from, &params).await {
            Verdict::Reject(r) | Verdict::Tempfail(r) => return self.refuse(r).await,
            Verdict::Disconnect(r) => {
                self.closing = true;
                return self.send(r).await;
            }
            Verdict::Continue | Verdict::Accept => {}
        }
        self.tx = Some(Transaction {
            from,
            params,
            rcpts: Vec::new(),
            bdat: None,
        });
        self.send(Reply::new(250, "2.1.0", "Ok")).await
    }

    pub(super) async fn rcpt(&mut self, to: Address, params: RcptParams) -> io::Result<()> {
        let Some(tx) = self.tx.as_ref() else {
            return self
                .error(Reply::new(503, "5.5.1", "Error: need MAIL command"))
                .await;
        };
        if tx.bdat.is_some() {
            return self
                .error(Reply::new(503, "5.5.1", "Error: BDAT in progress"))
                .await;
        }
        if tx.rcpts.len() >= self.ctx.config.limits.max_recipients {
            let reply = Reply::new(452, "4.5.3", "Error: too many recipients");
            let e = Event::refusal(Stage::Rcpt, "recipient limit", &reply);
            self.info
                .trace
                .record(e.rcpt(to.to_string()).detail(format!(
                    "limits.max_recipients = {}",
                    self.ctx.config.limits.max_recipients
                )));
            return self.refuse(reply).await;
        }
        let result = self
            .ctx
            .hooks
            .rcpt_to(&self.info, &tx.envelope(), &to, &params)
            .await;
        match result {
            Ok(targets) => {
                let rcpt = Recipient {
                    address: to,
                    params,
                    targets,
                };
                if let Some(reply) = self.quota_at_rcpt(&rcpt).await {
                    self.info
                        .trace
                        .record(quota_event(Stage::Rcpt, &rcpt, &reply));
                    return self.refuse(reply).await;
                }
                if let Some(tx) = self.tx.as_mut() {
                    tx.rcpts.push(rcpt);
                }
                self.send(Reply::new(250, "2.1.5", "Ok")).await
            }
            Err(Verdict::Reject(r) | Verdict::Tempfail(r)) => self.refuse(r).await,
            Err(Verdict::Disconnect(r)) => {
                self.closing = true;
                self.send(r).await
            }
            Err(Verdict::Continue | Verdict::Accept) => {
                let reply = Reply::new(451, "4.3.0", "Error: try again later");
                let e = Event::refusal(Stage::Rcpt, "recipient check", &reply);
                self.info.trace.record(e.rcpt(to.to_string()));
                self.refuse(reply).await
            }
        }
    }
}
