//! One transaction with one next hop, for a delivery run: a pooled
//! session when one idles for that hop (retried once on a new connection
//! if it had gone stale), the session parked again while it is healthy,
//! and the session's TLS outcome counted for TLS-RPT.

use super::delivery::Deliverer;
use crate::outbound::client::{
    AttemptError, ClientSession, DeliveryReport, HopSecurity, OutboundEnvelope,
};
use crate::outbound::mx::NextHop;
use crate::outbound::tls_rpt::ReportPolicy;
use crate::store::BlobReader;

impl Deliverer {
    /// One transaction with a hop, on a cached session when there is one.
    /// A cached session that fails before any answer is retried once on a
    /// new connection (the peer may have closed it while it idled).
    pub(super) async fn attempt(
        &self,
        hop: &NextHop,
        security: &HopSecurity,
        env: &OutboundEnvelope,
        reader: &mut BlobReader,
        blob: u64,
    ) -> Result<DeliveryReport, AttemptError> {
        let key = format!(
            "{}|{}|{}",
            security.tls.tag(),
            hop.host,
            hop.addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        if let Some(mut session) = self.pool.take(&key) {
            match session.send(&self.client, env, reader).await {
                Err(AttemptError::Io(..)) => {
                    tracing::debug!(
                        remote = session.remote(),
                        "cached connection failed; using a new one"
                    );
                    *reader =
                        BlobReader::new(self.ctx.store.blob_parts(blob).await.map_err(|e| {
                            AttemptError::Io(hop.host.clone(), std::io::Error::other(e))
                        })?);
                }
                result => return self.park(&key, session, result).await,
            }
        }
        let mut session = ClientSession::open(hop, &self.client, security).await?;
        let result = session.send(&self.client, env, reader).await;
        self.park(&key, session, result).await
    }

    /// Counts the session for TLS-RPT when a reporting policy applies.
    pub(super) async fn tally_tls(
        &self,
        policy: Option<&ReportPolicy>,
        result: &Result<DeliveryReport, AttemptError>,
    ) {
        let (Some(rpt), Some(policy)) = (&self.tls_rpt, policy) else {
            return;
        };
        match result {
            Ok(report) => match &report.tls_problem {
                None => rpt.success(policy).await,
                Some(p) => {
                    rpt.failure(policy, p.result_type, &report.remote, &p.text)
                        .await
                }
            },
            Err(e) => {
                if let Some((kind, remote)) = e.tls_result() {
                    rpt.failure(policy, kind, remote, &e.to_string()).await;
                }
            }
        }
    }

    /// Keeps a session for the next message if it is still healthy.
    async fn park(
        &self,
        key: &str,
        mut session: ClientSession,
        result: Result<DeliveryReport, AttemptError>,
    ) -> Result<DeliveryReport, AttemptError> {
        let healthy =
            !matches!(result, Err(AttemptError::Io(..))) && session.reset(&self.client).await;
        if healthy {
            if let Some(extra) = self.pool.give(key, session) {
                extra.quit().await;
            }
        } else {
            session.quit().await;
        }
        result
    }
}
