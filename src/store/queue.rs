//! Queue records: a message waiting for delivery to some of its recipients,
//! with per-recipient state, attempts, next attempt and last error. The
//! scheduler in `crate::queue` decides what to do; this file only keeps it,
//! under `q/<id, 8 bytes BE>` in `Space::Meta`, over the storage seam. A
//! state change applies only to the entry as it was read (so a
//! `tern queue delete` in between is never undone).

use super::backend::{Batch, KeyRange, ScanOrder, Space};
use super::leases::Lease;
use super::writeset::WriteSet;
use super::{BlobId, Store, StoreError, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientState {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecipient {
    pub address: String,
    /// DSN NOTIFY as given (e.g. "SUCCESS,FAILURE" or "NEVER"); None: default.
    pub notify: Option<String>,
    /// DSN ORCPT as "type;address".
    pub orcpt: Option<String>,
    pub state: RecipientState,
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_attempt: i64,
    pub last_error: Option<String>,
    /// Local users this recipient delivers to when it is local (after aliases);
    /// empty for remote recipients.
    #[serde(default)]
    pub local_users: Vec<String>,
    /// Enhanced status of the last result, e.g. "5.1.1" (for DSNs).
    #[serde(default)]
    pub status: Option<String>,
    /// The next hop that gave the last result ("mx.example.test").
    #[serde(default)]
    pub remote_mta: Option<String>,
    /// Hosts (`host` or `host:port`) a router plugin chose, tried in order
    /// instead of MX; empty: the built-in routing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<String>,
    /// The TLS policy of the last attempt, in words ("MTA-STS enforce",
    /// "smarthost starttls", "opportunistic"), for `tern queue show`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_policy: Option<String>,
    /// A router plugin demanded verified TLS for this recipient (absent
    /// in entries queued before there was such a demand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_tls: Option<crate::mail::VerifiedTls>,
}

impl QueueRecipient {
    /// A new pending recipient, due now.
    pub fn new(
        address: String,
        notify: Option<String>,
        orcpt: Option<String>,
        local_users: Vec<String>,
    ) -> QueueRecipient {
        QueueRecipient {
            address,
            notify,
            orcpt,
            state: RecipientState::Pending,
            attempts: 0,
            next_attempt: super::now(),
            last_error: None,
            local_users,
            status: None,
            remote_mta: None,
            route: Vec::new(),
            tls_policy: None,
            verified_tls: None,
        }
    }

    /// Does DSN NOTIFY ask for this kind of report? (`kind`: SUCCESS, FAILURE, DELAY.)
    /// Without NOTIFY, failures and delays are reported (RFC 3461 4.1).
    pub fn wants(&self, kind: &str) -> bool {
        match &self.notify {
            None => kind != "SUCCESS",
            Some(n) => n.split(',').any(|k| k.eq_ignore_ascii_case(kind)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: u64,
    pub blob: BlobId,
    pub size: u64,
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: String,
    pub envid: Option<String>,
    /// DSN RET: "FULL" or "HDRS".
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    /// Unix seconds when the message was accepted.
    pub arrived: i64,
    /// Who handed it to us ("host [ip]").
    pub client: String,
    pub recipients: Vec<QueueRecipient>,
    /// A delay warning has been sent.
    #[serde(default)]
    pub warned: bool,
    /// Sent with REQUIRETLS (RFC 8689): delivered only over verified TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
    /// The node that accepted it (`node_id`; absent before clusters, or
    /// when queued by a tool). Set by the store when first queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl QueueEntry {
    /// The queue id as operators see it.
    pub fn queue_id(&self) -> String {
        format_queue_id(self.id)
    }

    pub fn pending(&self) -> impl Iterator<Item = &QueueRecipient> {
        self.recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
    }

    /// The earliest next attempt among pending recipients.
    pub fn next_attempt(&self) -> Option<i64> {
        self.pending().map(|r| r.next_attempt).min()
    }
}

/// Queue ids are the store id in upper-case hex, at least 10 digits.
pub fn format_queue_id(id: u64) -> String {
    format!("{id:010X}")
}

/// The name of the lease a node holds while it delivers entry `id`.
pub fn delivery_lease(id: u64) -> String {
    format!("q/{}", format_queue_id(id))
}

pub fn parse_queue_id(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim(), 16).ok()
}

pub(super) fn queue_key(id: u64) -> Vec<u8> {
    let mut k = b"q/".to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

impl Store {
    /// Puts a new entry into `batch`, stamped with this node's id; on a
    /// shared store leased to this node too, so its first delivery pass
    /// is this node's without another write (`Claims::claim`).
    pub(super) fn queue_in(&self, batch: &mut Batch, entry: &QueueEntry) {
        batch.put(Space::Meta, queue_key(entry.id), self.stamped(entry));
        if let (true, Some(ttl)) = (self.is_shared(), self.inner.queue_lease.get())
            && !self.node().is_empty()
        {
            self.lease_in(batch, &delivery_lease(entry.id), self.node(), *ttl);
        }
    }

    /// A new entry as stored: stamped with this node's id.
    fn stamped(&self, entry: &QueueEntry) -> Vec<u8> {
        if entry.node.is_some() || self.node().is_empty() {
            return encode(entry);
        }
        encode(&QueueEntry {
            node: Some(self.node().to_string()),
            ..entry.clone()
        })
    }

    pub async fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        let entries = self
            .inner
            .backend
            .scan(Space::Meta, &KeyRange::prefix(b"q/"), ScanOrder::ALL)
            .await?;
        entries
            .iter()
            .map(|(_, v)| decode("queue entry", v))
            .collect()
    }

    pub async fn queue_entry(&self, id: u64) -> Result<Option<QueueEntry>, StoreError> {
        match self.inner.backend.get(Space::Meta, &queue_key(id)).await? {
            Some(v) => Ok(Some(decode("queue entry", &v)?)),
            None => Ok(None),
        }
    }

    /// Records a queue entry's new state (the caller syncs). An entry
    /// deleted meanwhile (`tern queue delete`) stays deleted.
    pub async fn update_queue_entry(&self, entry: &QueueEntry) -> Result<(), StoreError> {
        self.update_queue_entry_traced(entry, &[], 0, None).await
    }

    /// `update_queue_entry`, adding delivery attempts to the message's
    /// trace in the same write set (`first`: how many attempts the entry
    /// made before them), and giving up the delivery's `lease` (a shared
    /// store's claim) with it.
    pub async fn update_queue_entry_traced(
        &self,
        entry: &QueueEntry,
        events: &[crate::trace::Event],
        first: u32,
        lease: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let key = queue_key(entry.id);
        let value = encode(entry);
        let backend = &self.inner.backend;
        self.attempt(|| async {
            let mut batch = Batch::new();
            if let Some(lease) = lease {
                self.drop_lease_in(&mut batch, lease).await?;
            }
            let Some(old) = backend.get(Space::Meta, &key).await? else {
                // Deleted meanwhile (`tern queue delete`): stays deleted.
                return match batch.is_empty() {
                    true => Ok(()),
                    false => Ok(backend.commit(batch).await?),
                };
            };
            batch.require(Space::Meta, key.clone(), Some(&old));
            batch.put(Space::Meta, key.clone(), value.clone());
            super::trace::extend_in(&mut batch, entry.blob, entry.id, first, events);
            Ok(backend.commit(batch).await?)
        })
        .await
    }

    /// Queues an already committed blob anew (bounces), taking a reference.
    pub async fn enqueue_blob(&self, entry: &QueueEntry) -> Result<(), StoreError> {
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            ws.adjust_refs(entry.blob, 1).await?;
            self.queue_in(&mut ws.batch, entry);
            ws.commit().await
        })
        .await
    }

    /// Stores a message generated here (a bounce) and queues it.
    pub async fn enqueue_bytes(
        &self,
        mut entry: QueueEntry,
        bytes: &[u8],
    ) -> Result<QueueEntry, StoreError> {
        let mut writer = self.blob_writer(entry.id);
        writer.write(bytes).await?;
        entry.blob = writer.id();
        entry.size = bytes.len() as u64;
        self.accept_message(writer, Vec::new(), &[], Some(&entry))
            .await?;
        Ok(entry)
    }
}

impl Store {
    /// Drops the queue's reference to a blob (delivery finished).
    pub async fn release_queue_entry(&self, entry: &QueueEntry) -> Result<(), StoreError> {
        self.release_queue_entry_traced(entry, &[], 0, None).await
    }

    /// `release_queue_entry`, adding the last delivery attempts to the
    /// message's trace in the same write set (`first`: as for
    /// `update_queue_entry_traced`), and giving up the delivery's `lease`
    /// with it.
    pub async fn release_queue_entry_traced(
        &self,
        entry: &QueueEntry,
        events: &[crate::trace::Event],
        first: u32,
        lease: Option<&Lease>,
    ) -> Result<(), StoreError> {
        self.attempt(|| async {
            let mut ws = WriteSet::new(self);
            if let Some(lease) = lease {
                self.drop_lease_in(&mut ws.batch, lease).await?;
            }
            if ws.read(queue_key(entry.id)).await?.is_none() {
                // Already released: the reference is gone too.
                return ws.commit().await;
            }
            ws.batch.delete(Space::Meta, queue_key(entry.id));
            ws.adjust_refs(entry.blob, -1).await?;
            super::trace::extend_in(&mut ws.batch, entry.blob, entry.id, first, events);
            ws.commit().await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::VerifiedTls;

    /// A recipient as entries queued before router TLS demands stored it.
    const OLD: &str = r#"{"address":"bob@far.test","notify":null,"orcpt":null,
        "state":"pending","attempts":1,"next_attempt":5,"last_error":null,
        "route":["mx.far.test:2525"]}"#;

    #[test]
    fn recipients_queued_before_tls_demands_decode_without_one() {
        let r: QueueRecipient = decode("queue", OLD.as_bytes()).expect("old entry decodes");
        assert_eq!(r.verified_tls, None);
        assert_eq!(r.route, vec!["mx.far.test:2525".to_string()]);
        // And an undemanded recipient is stored as before, without the key.
        assert!(!String::from_utf8_lossy(&encode(&r)).contains("verified_tls"));
    }

    #[test]
    fn a_tls_demand_is_kept_with_the_recipient() {
        let mut r = QueueRecipient::new("bob@far.test".into(), None, None, Vec::new());
        r.verified_tls = Some(VerifiedTls {
            plugin: "bank-router".into(),
            name: Some("mx.far.test".into()),
        });
        let back: QueueRecipient = decode("queue", &encode(&r)).expect("decodes");
        assert_eq!(back, r);
    }
}
