//! Where a destination group goes and under which TLS policy: a router
//! plugin's hosts, the smarthost, or the domain's MX hosts (resolved by
//! `outbound/mx.rs`), each with what `outbound/policy.rs` demands of its
//! TLS — REQUIRETLS and a message's `TLS-Required: No` (RFC 8689) included.
//! A destination that cannot be routed gets one outcome for all its
//! recipients.

use super::delivery::{Deliverer, Outcome, ROUTE_PREFIX};
use crate::outbound::mx::NextHop;
use crate::outbound::policy::Routed;
use crate::store::{BlobReader, QueueEntry};

/// How much of a message is read looking for `TLS-Required:`.
const MAX_HEADER_READ: usize = 256 * 1024;

/// A REQUIRETLS message that no hop can take as asked: bounced.
pub(super) fn failed_requiretls(text: String) -> impl Fn() -> Outcome {
    move || Outcome::Failed {
        relay: None,
        status: "5.7.30".into(),
        reply: text.clone(),
    }
}

fn deferred(status: &str, text: String) -> Outcome {
    Outcome::Deferred {
        relay: None,
        status: status.to_string(),
        reply: text,
    }
}

impl Deliverer {
    /// The hops of `destination` with their TLS demands; Err: the outcome
    /// of every recipient of the group (routing failed).
    pub(super) async fn route(
        &self,
        entry: &QueueEntry,
        destination: &str,
    ) -> Result<Routed, Outcome> {
        let require_tls = entry.require_tls;
        match &self.ctx.config.relay.smarthost {
            _ if destination.starts_with(ROUTE_PREFIX) => {
                match self.routed_hops(&destination[ROUTE_PREFIX.len()..]).await {
                    Ok(h) => Ok(self.policies.routed(h, require_tls)),
                    Err(e) => Err(deferred("4.4.3", e.to_string())),
                }
            }
            Some(spec) => match self.mx.smarthost(spec).await {
                Ok(h) => Ok(self.policies.smarthost(h, require_tls)),
                Err(e) => Err(deferred("4.4.3", e.to_string())),
            },
            None => match self
                .mx
                .resolve(destination, self.ctx.config.relay.mx_port)
                .await
            {
                Ok(h) => {
                    let routed = self.policies.mx(destination, h.clone(), require_tls).await;
                    if routed.enforced && !require_tls && self.tls_required_no(entry).await {
                        tracing::info!(queue_id = %entry.queue_id(), destination, policy = %routed.policy, "TLS-Required: No: the policy is waived (RFC 8689)");
                        Ok(self
                            .policies
                            .opportunistic(h, "opportunistic (TLS-Required: No waived the policy)"))
                    } else {
                        Ok(routed)
                    }
                }
                Err(e) if e.is_permanent() => Err(Outcome::Failed {
                    relay: None,
                    status: e.enhanced().to_string(),
                    reply: e.to_string(),
                }),
                Err(e) => Err(deferred(e.enhanced(), e.to_string())),
            },
        }
    }

    /// The hops of a router plugin's host list (`host` or `host:port`, comma-separated).
    async fn routed_hops(
        &self,
        hosts: &str,
    ) -> Result<Vec<NextHop>, crate::outbound::mx::RouteError> {
        let mut hops = Vec::new();
        let mut last = None;
        for host in hosts.split(',') {
            let spec = if host
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                host.to_string()
            } else {
                format!("{host}:{}", self.ctx.config.relay.mx_port)
            };
            match self.mx.smarthost(&spec).await {
                Ok(h) => hops.extend(h),
                Err(e) => last = Some(e),
            }
        }
        match (hops.is_empty(), last) {
            (true, Some(e)) => Err(e),
            _ => Ok(hops),
        }
    }

    /// Does the message carry `TLS-Required: No` (RFC 8689 section 4.3)?
    /// Read from the stored header section, only when a policy would be waived.
    async fn tls_required_no(&self, entry: &QueueEntry) -> bool {
        use tokio::io::AsyncReadExt;
        let Ok(parts) = self.ctx.store.blob_parts(entry.blob).await else {
            return false;
        };
        let mut reader = BlobReader::new(parts);
        let mut head = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        while head.len() < MAX_HEADER_READ {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
            if memchr::memmem::find(&head, b"\r\n\r\n").is_some() {
                break;
            }
        }
        mail_parser::MessageParser::new()
            .parse_headers(&head)
            .and_then(|m| {
                m.header_raw("TLS-Required")
                    .map(|v| v.trim().eq_ignore_ascii_case("no"))
            })
            .unwrap_or(false)
    }
}
