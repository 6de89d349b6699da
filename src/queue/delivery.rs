//! One delivery run for one queue entry: local recipients go to their
//! mailboxes; remote ones are grouped by domain (or all to the smarthost),
//! routed through MX look-up, and handed to the SMTP client, next hop after
//! next hop. Each recipient's result is written to the store as soon as the
//! hop answers, so a crash never re-sends to an accepted recipient. Failures
//! become bounces, long delays become warnings, and an entry with nothing
//! pending leaves the queue.

use super::attempt_log::log_result;
use super::dsn::DsnKind;
use super::notify;
use super::routing::failed_requiretls;
use super::schedule::RetrySchedule;
use crate::context::ServerContext;
use crate::mail::VerifiedTls;
use crate::outbound::client::{ClientConfig, OutboundEnvelope, OutboundRecipient, RecipientResult};
use crate::outbound::mx::MxResolver;
use crate::outbound::policy::Policies;
use crate::outbound::pool::ConnectionPool;
use crate::outbound::tls_rpt::TlsRpt;
use crate::store::{BlobReader, KeptLease, QueueEntry, RecipientState, StoreError, now};
use crate::trace::Event;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The outcome for one recipient in this run.
#[derive(Clone)]
pub(super) enum Outcome {
    /// `report` says which success DSN the sender may want (RFC 3461 6.2):
    /// `Delivered` for a local mailbox, `Relayed` to a hop without DSN.
    Delivered {
        relay: String,
        reply: String,
        report: Option<DsnKind>,
    },
    Deferred {
        relay: Option<String>,
        status: String,
        reply: String,
    },
    Failed {
        relay: Option<String>,
        status: String,
        reply: String,
    },
}

/// Recipients to tell the sender about after this pass.
#[derive(Default)]
struct Notices {
    failed: Vec<usize>,
    succeeded: Vec<(usize, DsnKind)>,
    /// This pass's attempts, for the message's trace.
    events: Vec<crate::trace::Event>,
}

impl Notices {
    /// Whether `notify::send` sends anything for these: a recipient that
    /// asked for the notice, and a sender to send it to.
    fn any_wanted(&self, entry: &QueueEntry) -> bool {
        let wants = |i: usize, kind: &str| entry.recipients.get(i).is_some_and(|r| r.wants(kind));
        !entry.sender.is_empty()
            && (self.failed.iter().any(|&i| wants(i, "FAILURE"))
                || self.succeeded.iter().any(|&(i, _)| wants(i, "SUCCESS")))
    }
}

/// Group keys of recipients routed by a router plugin: this, then the hosts.
pub(super) const ROUTE_PREFIX: &str = "route:";

/// Everything a delivery needs that lives as long as the server.
pub struct Deliverer {
    pub ctx: Arc<ServerContext>,
    pub schedule: RetrySchedule,
    pub mx: MxResolver,
    pub client: ClientConfig,
    /// What each kind of next hop demands of TLS.
    pub policies: Policies,
    /// TLS-RPT tallies and reports (`relay.tls_rpt`).
    pub tls_rpt: Option<Arc<TlsRpt>>,
    pub pool: ConnectionPool,
    /// Deliveries at once per destination (`queue.max_per_destination`,
    /// this node's share of it on a shared store).
    pub(super) gates: super::cluster::Gates,
    /// Leases on entries and destination slots (a shared store).
    pub(super) claims: super::cluster::Claims,
}

impl Deliverer {
    /// Runs one delivery pass over the entry's due recipients; returns when
    /// the entry is due again (`None`: it left the queue).
    /// With a shared store the caller holds the entry's `lease`; it is
    /// given up with the pass's last write.
    pub async fn deliver(
        &self,
        id: u64,
        lease: Option<KeptLease>,
    ) -> Result<Option<i64>, StoreError> {
        let store = &self.ctx.store;
        let Some(mut entry) = store.queue_entry(id).await? else {
            return Ok(None);
        };
        let now_s = now();
        // The pass's attempts are numbered on from the entry's earlier
        // ones (the trace keeps the first and the newest, `store/trace.rs`).
        let first = entry
            .recipients
            .iter()
            .fold(0u32, |n, r| n.saturating_add(r.attempts));
        if self.schedule.expired(entry.arrived, now_s) {
            let failed: Vec<usize> = (0..entry.recipients.len())
                .filter(|&i| entry.recipients[i].state == RecipientState::Pending)
                .collect();
            let age = now_s - entry.arrived;
            let mut expired = Vec::new();
            // No attempt is made: each event's time is nil.
            let at_once = Instant::now();
            for &i in &failed {
                let r = &mut entry.recipients[i];
                let last = r
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no attempt succeeded".into());
                r.state = RecipientState::Failed;
                r.status = Some("4.4.7".into());
                r.last_error = Some(format!("message expired after {age}s in the queue: {last}"));
                expired.push(log_result(
                    &entry,
                    &entry.recipients[i],
                    None,
                    None,
                    "bounced",
                    entry.recipients[i].last_error.as_deref().unwrap_or(""),
                    at_once,
                ));
            }
            store.update_queue_entry(&entry).await?;
            notify::send(&self.ctx, &entry, &failed, DsnKind::Failed).await?;
            return self.finish(entry, &expired, first, lease).await;
        }

        let due: Vec<usize> = (0..entry.recipients.len())
            .filter(|&i| {
                entry.recipients[i].state == RecipientState::Pending
                    && entry.recipients[i].next_attempt <= now_s
            })
            .collect();
        if due.is_empty() && entry.next_attempt().is_some() {
            // Not due yet: another node deferred it since this one
            // scheduled it. Nothing to write.
            if let Some(lease) = lease {
                store.drop_lease(&lease.stop()).await?;
            }
            return Ok(entry.next_attempt());
        }
        let mut notices = Notices::default();

        // Local recipients (bounces to our own users, and the like).
        let local: Vec<usize> = due
            .iter()
            .copied()
            .filter(|&i| !entry.recipients[i].local_users.is_empty())
            .collect();
        for i in local {
            let users = entry.recipients[i].local_users.clone();
            let attempt = Instant::now();
            let outcome = match store.deliver_blob(entry.blob, &users).await {
                Ok(_) => Outcome::Delivered {
                    relay: "local".into(),
                    reply: "delivered to mailbox".into(),
                    report: Some(DsnKind::Delivered),
                },
                Err(StoreError::OverQuota { too_big: true, .. }) => Outcome::Failed {
                    relay: None,
                    status: "5.2.2".into(),
                    reply: "mailbox delivery failed: the message is larger than the whole quota"
                        .into(),
                },
                Err(StoreError::OverQuota { .. }) => Outcome::Deferred {
                    relay: None,
                    status: "4.2.2".into(),
                    reply: "mailbox delivery failed: mailbox full (over quota)".into(),
                },
                Err(e) => Outcome::Deferred {
                    relay: None,
                    status: "4.3.0".into(),
                    reply: format!("mailbox delivery failed: {e}"),
                },
            };
            self.record(&mut entry, i, outcome, Some("local"), &mut notices, attempt);
        }

        // Remote recipients, one group per destination.
        // A router's demand for verified TLS splits a destination: those
        // recipients never share a transaction with the others.
        let mut groups: BTreeMap<(String, Option<VerifiedTls>), Vec<usize>> = BTreeMap::new();
        for &i in &due {
            let r = &entry.recipients[i];
            if !r.local_users.is_empty() {
                continue;
            }
            let key = match &self.ctx.config.relay.smarthost {
                _ if !r.route.is_empty() => format!("{ROUTE_PREFIX}{}", r.route.join(",")),
                Some(s) => s.clone(),
                None => r
                    .address
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase())
                    .unwrap_or_default(),
            };
            groups
                .entry((key, r.verified_tls.clone()))
                .or_default()
                .push(i);
        }
        let destinations = groups.len();
        for (n, ((destination, demand), members)) in groups.into_iter().enumerate() {
            let max = self.ctx.config.queue.max_per_destination;
            let _passage = self
                .gates
                .enter(&destination, || self.claims.share(max))
                .await;
            // The group's attempt is one transaction: each member's time
            // is the group's, from here (not the pass's start).
            let attempt = Instant::now();
            let (outcomes, tls, policy) = self
                .deliver_group(&entry, &destination, demand.as_ref(), &members)
                .await;
            for (i, outcome) in members.into_iter().zip(outcomes) {
                entry.recipients[i].tls_policy = policy.clone();
                self.record(
                    &mut entry,
                    i,
                    outcome,
                    tls.as_deref(),
                    &mut notices,
                    attempt,
                );
            }
            // Before the next destination, what this one accepted is made
            // durable (a crash then repeats no delivery already done). The
            // last one's outcome is saved by `finish` (which says why no
            // flush is waited for), or just below if a notice goes first.
            if n + 1 < destinations {
                store.update_queue_entry(&entry).await?;
                store.flush().await?;
            }
        }
        // A notice is flushed with the entry's state (`notify::send`):
        // save that state before it.
        if destinations > 0 && notices.any_wanted(&entry) {
            store.update_queue_entry(&entry).await?;
        }

        for kind in [DsnKind::Delivered, DsnKind::Relayed] {
            let which: Vec<usize> = notices
                .succeeded
                .iter()
                .filter(|(_, k)| *k == kind)
                .map(|(i, _)| *i)
                .collect();
            if !which.is_empty() {
                notify::send(&self.ctx, &entry, &which, kind).await?;
            }
        }
        if !notices.failed.is_empty() {
            notify::send(&self.ctx, &entry, &notices.failed, DsnKind::Failed).await?;
        }
        if !entry.warned
            && entry.pending().next().is_some()
            && self.schedule.warn_due(entry.arrived, now())
        {
            entry.warned = true;
            store.update_queue_entry(&entry).await?;
            let delayed: Vec<usize> = (0..entry.recipients.len())
                .filter(|&i| {
                    entry.recipients[i].state == RecipientState::Pending
                        && entry.recipients[i].wants("DELAY")
                })
                .collect();
            notify::send(&self.ctx, &entry, &delayed, DsnKind::Delayed).await?;
        }
        self.finish(entry, &notices.events, first, lease).await
    }

    /// Removes a finished entry, or saves the pending one.
    ///
    /// Not flushed here: whatever this writes only records what already
    /// happened (a delivery, an attempt), and every notice this pass queued
    /// was flushed with the entry's state by `notify::send`. Lost in a
    /// crash, it costs a repeated delivery, never a lost message — Postfix
    /// likewise unlinks a delivered queue file without an fsync. The next
    /// group commit (any message received) or sled's own periodic flush
    /// makes it durable; waiting for one here halved relay throughput's
    /// share of flushes (bench/README.md).
    /// The pass's attempts (`events`, numbered from `first`) join the
    /// message's trace in the same write.
    /// A shared store's lease on the entry is given up in that write.
    async fn finish(
        &self,
        entry: QueueEntry,
        events: &[Event],
        first: u32,
        lease: Option<KeptLease>,
    ) -> Result<Option<i64>, StoreError> {
        let store = &self.ctx.store;
        let next = entry.next_attempt();
        let lease = lease.map(KeptLease::stop);
        if next.is_none() {
            store
                .release_queue_entry_traced(&entry, events, first, lease.as_ref())
                .await?;
        } else {
            store
                .update_queue_entry_traced(&entry, events, first, lease.as_ref())
                .await?;
        }
        Ok(next)
    }

    fn record(
        &self,
        entry: &mut QueueEntry,
        i: usize,
        outcome: Outcome,
        tls: Option<&str>,
        notices: &mut Notices,
        attempt: Instant,
    ) {
        let next = now();
        let snapshot = entry.clone();
        let r = &mut entry.recipients[i];
        r.attempts += 1;
        let (status_word, relay, text) = match outcome {
            Outcome::Delivered {
                relay,
                reply,
                report,
            } => {
                if let Some(kind) = report {
                    notices.succeeded.push((i, kind));
                }
                r.state = RecipientState::Delivered;
                r.status = Some("2.0.0".into());
                r.last_error = None;
                r.remote_mta = Some(relay.clone());
                ("sent", Some(relay), reply)
            }
            Outcome::Deferred {
                relay,
                status,
                reply,
            } => {
                r.next_attempt = next + self.schedule.delay_after(r.attempts).as_secs() as i64;
                r.status = Some(status);
                r.last_error = Some(reply.clone());
                r.remote_mta = relay.clone();
                ("deferred", relay, reply)
            }
            Outcome::Failed {
                relay,
                status,
                reply,
            } => {
                r.state = RecipientState::Failed;
                r.status = Some(status);
                r.last_error = Some(reply.clone());
                r.remote_mta = relay.clone();
                notices.failed.push(i);
                ("bounced", relay, reply)
            }
        };
        crate::metrics::counter("tern_deliveries_total", &[("status", status_word)]);
        let event = log_result(
            &snapshot,
            r,
            relay.as_deref(),
            tls,
            status_word,
            &text,
            attempt,
        );
        notices.events.push(event);
    }

    /// Tries the destination's hops in order; one outcome per member, the
    /// TLS of the hop that answered, and the TLS policy that applied.
    /// `demand`: a router plugin's demand for verified TLS, which no hop
    /// may be spared (a failure defers, and the reason says whose demand).
    async fn deliver_group(
        &self,
        entry: &QueueEntry,
        destination: &str,
        demand: Option<&VerifiedTls>,
        members: &[usize],
    ) -> (Vec<Outcome>, Option<String>, Option<String>) {
        let all = |make: &dyn Fn() -> Outcome, policy: Option<String>| {
            (
                members.iter().map(|_| make()).collect::<Vec<_>>(),
                None,
                policy,
            )
        };
        let deferred = |status: &str, text: String| {
            let status = status.to_string();
            move || Outcome::Deferred {
                relay: None,
                status: status.clone(),
                reply: text.clone(),
            }
        };
        let require_tls = entry.require_tls;
        let routed = match self.route(entry, destination, demand).await {
            Ok(r) => r,
            Err(outcome) => return all(&|| outcome.clone(), None),
        };
        let policy = Some(routed.policy.clone());
        if let (Some(rpt), Some(report)) = (&self.tls_rpt, &routed.report) {
            for (kind, host, why) in &routed.unusable {
                rpt.failure(report, kind, host, why).await;
            }
        }
        if routed.hops.is_empty() {
            let text = routed
                .refusal
                .clone()
                .unwrap_or_else(|| format!("no next hop for {destination}"));
            tracing::warn!(queue_id = %entry.queue_id(), destination, policy = %routed.policy, "{text}");
            if require_tls {
                return all(&failed_requiretls(text), policy);
            }
            return all(&deferred("4.7.5", text), policy);
        }
        let envelope = OutboundEnvelope {
            mail_from: entry.sender.clone(),
            recipients: members
                .iter()
                .map(|&i| {
                    let r = &entry.recipients[i];
                    OutboundRecipient {
                        address: r.address.clone(),
                        notify: r.notify.clone(),
                        orcpt: r.orcpt.clone(),
                    }
                })
                .collect(),
            size: entry.size,
            eight_bit: entry.eight_bit,
            smtputf8: entry.smtputf8,
            ret: entry.ret.clone(),
            envid: entry.envid.clone(),
            require_tls,
        };
        let mut last_status = "4.4.1".to_string();
        let mut last_tls_failure = false;
        let mut last_error = format!("no mail exchanger for {destination} could be reached");
        if let Some(refusal) = &routed.refusal {
            last_error = format!("{last_error}; {refusal}");
        }
        for (hop, security) in &routed.hops {
            let parts = match self.ctx.store.blob_parts(entry.blob).await {
                Ok(p) => p,
                Err(e) => {
                    let text = format!("message body unreadable: {e}");
                    return all(&deferred("4.3.0", text), policy);
                }
            };
            let mut reader = BlobReader::new(parts);
            let result = self
                .attempt(hop, security, &envelope, &mut reader, entry.blob)
                .await;
            self.tally_tls(routed.report.as_ref(), &result).await;
            match result {
                Ok(report) => {
                    let relay = report.remote.clone();
                    let tls = Some(match (&report.tls, report.verified) {
                        (Some(v), true) => format!("{v} verified"),
                        (Some(v), false) => v.clone(),
                        (None, _) => "plain".into(),
                    });
                    let outcomes = report
                        .results
                        .into_iter()
                        .map(|res| match res {
                            RecipientResult::Accepted(info) => Outcome::Delivered {
                                relay: relay.clone(),
                                reply: info.to_string(),
                                report: (!report.dsn).then_some(DsnKind::Relayed),
                            },
                            RecipientResult::Temporary(info) => Outcome::Deferred {
                                relay: Some(relay.clone()),
                                status: info.enhanced.clone().unwrap_or_else(|| "4.0.0".into()),
                                reply: format!("{relay} said: {info}"),
                            },
                            RecipientResult::Permanent(info) => Outcome::Failed {
                                relay: Some(relay.clone()),
                                status: info.enhanced.clone().unwrap_or_else(|| "5.0.0".into()),
                                reply: format!("{relay} said: {info}"),
                            },
                        })
                        .collect();
                    return (outcomes, tls, policy);
                }
                Err(e) if e.is_permanent() => {
                    let text = format!("{}: {e}", hop.host);
                    let status = e.enhanced().unwrap_or("5.0.0").to_string();
                    let relay = hop.host.clone();
                    return all(
                        &|| Outcome::Failed {
                            relay: Some(relay.clone()),
                            status: status.clone(),
                            reply: text.clone(),
                        },
                        policy,
                    );
                }
                Err(e) => {
                    tracing::info!(queue_id = %entry.queue_id(), host = %hop.host, "next hop failed: {e}; trying the next one");
                    last_status = e.enhanced().unwrap_or("4.4.1").to_string();
                    last_error = e.to_string();
                    last_tls_failure = e.is_tls_failure();
                }
            }
        }
        if require_tls && last_tls_failure {
            // RFC 8689 section 5: no hop could take it as REQUIRETLS asks.
            return all(&failed_requiretls(last_error), policy);
        }
        if let Some(demand) = demand.filter(|_| last_tls_failure) {
            last_error = format!("{demand}: {last_error}");
        }
        all(&deferred(&last_status, last_error), policy)
    }
}
