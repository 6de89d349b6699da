//! The delivery queue: the scheduler keeps every entry's due time in memory
//! (read from the store once at start, then told of new work through
//! `QueueHandle`) and hands each due entry to `delivery.rs` (hops and TLS
//! policy from `routing.rs`; it records every recipient's
//! result as soon as the next hop answers), within
//! `queue.max_concurrent_deliveries`. Retries follow `schedule.rs`; bounces
//! and delay warnings are built by `dsn.rs`. With a store shared by several
//! nodes, `cluster.rs` claims each delivery with a lease and finds work
//! other nodes left. The queue never reaches back
//! into the receiving side: the store is the only thing they share.

mod attempt_log;
mod cluster;
pub mod delivery;
pub mod dsn;
mod hop;
pub mod notify;
mod routing;
pub mod schedule;

use crate::context::ServerContext;
use crate::shutdown::Shutdown;
use crate::store::now;
use delivery::Deliverer;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// (queue id, due time) notices for the scheduler.
type WorkReceiver = mpsc::UnboundedReceiver<(u64, i64)>;

/// Tells the scheduler about work: a new or flushed entry and when it is
/// due. Cheap to clone; sending never blocks.
#[derive(Clone)]
pub struct QueueHandle {
    tx: mpsc::UnboundedSender<(u64, i64)>,
    rx: Arc<Mutex<Option<WorkReceiver>>>,
}

impl Default for QueueHandle {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        QueueHandle {
            tx,
            rx: Arc::new(Mutex::new(Some(rx))),
        }
    }
}

impl QueueHandle {
    pub fn new() -> QueueHandle {
        QueueHandle::default()
    }

    /// Entry `id` is due at `due` (unix seconds).
    pub fn queued(&self, id: u64, due: i64) {
        let _ = self.tx.send((id, due));
    }

    fn take_receiver(&self) -> Option<WorkReceiver> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// When each entry is due, without reading the store on every wake: a heap
/// of (due, id) with stale items skipped against `due`.
#[derive(Default)]
struct Schedule {
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    due: HashMap<u64, i64>,
}

impl Schedule {
    fn set(&mut self, id: u64, at: i64) {
        let at = self.due.get(&id).map_or(at, |&old| old.min(at));
        self.due.insert(id, at);
        self.heap.push(Reverse((at, id)));
    }

    /// Takes the next entry due by `now`.
    fn pop_due(&mut self, now: i64) -> Option<u64> {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if self.due.get(&id) != Some(&at) {
                self.heap.pop(); // superseded
                continue;
            }
            if at > now {
                return None;
            }
            self.heap.pop();
            self.due.remove(&id);
            return Some(id);
        }
        None
    }

    fn next_due(&mut self) -> Option<i64> {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if self.due.get(&id) == Some(&at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }
}

/// The longest the scheduler sleeps without looking again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs the scheduler until shutdown; deliveries in flight finish first.
pub async fn run(ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    let Some(mut events) = ctx.queue.take_receiver() else {
        tracing::error!("the queue scheduler was started twice");
        return;
    };
    let deliverer = match make_deliverer(ctx.clone()) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            tracing::error!("the queue cannot start: {e}");
            return;
        }
    };
    let mut schedule = Schedule::default();
    match ctx.store.queue_entries().await {
        Ok(entries) => {
            for entry in entries {
                match entry.next_attempt() {
                    Some(at) => schedule.set(entry.id, at),
                    // Nothing pending: a crash came between the last result and the clean-up.
                    None => {
                        if let Err(e) = ctx.store.release_queue_entry(&entry).await {
                            tracing::warn!(queue_id = %entry.queue_id(), "queue clean-up failed: {e}");
                        }
                    }
                }
            }
        }
        Err(e) => tracing::error!("reading the queue failed: {e}"),
    }
    let limit = Arc::new(Semaphore::new(ctx.config.queue.max_concurrent_deliveries));
    let mut in_flight: HashSet<u64> = HashSet::new();
    let mut rerun: HashSet<u64> = HashSet::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, Option<i64>)>();
    let mut next_scan = tokio::time::Instant::now();
    let beat_every = deliverer.claims.scan_interval() / 3;
    let mut next_beat = tokio::time::Instant::now();
    // A node that joins others delivers only once they have counted it
    // (each counts every `beat_every`), so the shares of a cluster-wide
    // limit never add up past it.
    let mut hold_until = tokio::time::Instant::now();
    loop {
        if deliverer.claims.shared() && tokio::time::Instant::now() >= next_beat {
            next_beat = tokio::time::Instant::now() + beat_every;
            match deliverer.claims.heartbeat().await {
                Ok(Some(others)) if others > 0 => hold_until = next_beat,
                Ok(_) => {}
                Err(e) => tracing::warn!("renewing this node's heartbeat failed: {e}"),
            }
        }
        if deliverer.claims.shared() && tokio::time::Instant::now() >= next_scan {
            next_scan = tokio::time::Instant::now() + deliverer.claims.scan_interval();
            match deliverer.claims.unclaimed().await {
                Ok(found) => {
                    for (id, at) in found {
                        if !in_flight.contains(&id) {
                            schedule.set(id, at);
                        }
                    }
                }
                Err(e) => tracing::warn!("looking for queue work failed: {e}"),
            }
        }
        let now_s = now();
        let holding = tokio::time::Instant::now() < hold_until;
        while let Some(id) = schedule.pop_due(now_s).filter(|_| !holding) {
            if !in_flight.insert(id) {
                rerun.insert(id); // runs again once the current pass reports back
                continue;
            }
            let (d, lim, done) = (deliverer.clone(), limit.clone(), done_tx.clone());
            tokio::spawn(async move {
                let Ok(_permit) = lim.acquire_owned().await else {
                    return;
                };
                let next = match d.claims.claim(id).await {
                    // Its holder schedules it; if that node dies, the scan
                    // below finds it again once the lease lapses.
                    Ok(cluster::Claim::Elsewhere) => None,
                    Ok(cluster::Claim::Mine(lease)) => match d.deliver(id, lease).await {
                        Ok(next) => next,
                        Err(e) => {
                            tracing::error!(queue_id = %crate::store::format_queue_id(id), "delivery run failed: {e}");
                            Some(now() + 60)
                        }
                    },
                    Err(e) => {
                        tracing::warn!(queue_id = %crate::store::format_queue_id(id), "claiming a delivery failed: {e}");
                        Some(now() + 60)
                    }
                };
                let _ = done.send((id, next));
            });
        }
        let sleep = schedule
            .next_due()
            .map(|t| Duration::from_secs((t - now_s).max(1) as u64))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP)
            .min(IDLE_CONNECTION_TIME)
            .min(deliverer.claims.scan_interval())
            .min(if deliverer.claims.shared() {
                beat_every
            } else {
                MAX_SLEEP
            });
        tokio::select! {
            Some((id, at)) = events.recv() => schedule.set(id, at),
            Some((id, next)) = done_rx.recv() => {
                in_flight.remove(&id);
                if let Some(at) = next {
                    schedule.set(id, at);
                }
                if rerun.remove(&id) {
                    schedule.set(id, now());
                }
            }
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.recv() => break,
        }
        for session in deliverer.pool.expired() {
            session.quit().await;
        }
        if let Some(rpt) = &deliverer.tls_rpt {
            rpt.send_due(ctx.clone());
        }
    }
    // Let deliveries in flight record their results.
    let _ = limit
        .acquire_many(ctx.config.queue.max_concurrent_deliveries as u32)
        .await;
    for session in deliverer.pool.drain() {
        session.quit().await;
    }
}

/// How long an idle outbound connection waits for the next message.
const IDLE_CONNECTION_TIME: Duration = Duration::from_secs(5);

fn make_deliverer(
    ctx: Arc<ServerContext>,
) -> Result<Deliverer, crate::outbound::tls::ClientSetupError> {
    use crate::outbound::mta_sts::{MtaSts, fetch::Fetcher};
    use crate::outbound::tls::Verifier;
    use crate::outbound::tls_rpt::TlsRpt;
    let config = &ctx.config;
    let mut client = crate::outbound::client::ClientConfig {
        helo_name: config.hostname.clone(),
        tls: Some(crate::outbound::client::opportunistic_tls_config()?),
        connect_timeout: Duration::from_secs(30),
        ..crate::outbound::client::ClientConfig::default()
    };
    if let Some(cap) = config.queue.reply_timeout {
        client.timeouts.cap(cap.0);
        client.connect_timeout = client.connect_timeout.min(cap.0);
    }
    let dns = ctx.hooks.dns().clone();
    let anchors = match Verifier::load(config.relay.tls_ca.as_deref()) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(
                "no trust anchors for MX hosts ({e}): MTA-STS policies cannot be fetched or enforced"
            );
            None
        }
    };
    let mta_sts = match (&anchors, config.relay.mta_sts) {
        (Some(v), true) => Some(MtaSts::new(
            dns.clone(),
            ctx.store.clone(),
            Fetcher::new(dns.clone(), v.client_config()?, config.relay.mta_sts_port),
        )),
        _ => None,
    };
    let tls_rpt = match (&anchors, config.relay.tls_rpt) {
        (Some(v), true) => Some(Arc::new(TlsRpt::new(
            ctx.store.clone(),
            dns.clone(),
            v.client_config()?,
            config.relay.tls_rpt_period.0.as_secs(),
        ))),
        _ => None,
    };
    Ok(Deliverer {
        tls_rpt,
        schedule: schedule::RetrySchedule::from_config(&config.queue),
        mx: crate::outbound::mx::MxResolver::new(dns.clone()),
        policies: crate::outbound::policy::Policies::new(config, anchors, mta_sts)?
            .with_dane(dns.clone(), config.relay.mx_port),
        client,
        pool: crate::outbound::pool::ConnectionPool::new(
            config.queue.max_per_destination,
            IDLE_CONNECTION_TIME,
        ),
        gates: Default::default(),
        claims: cluster::Claims::new(
            ctx.store.clone(),
            config.node_id.clone(),
            config.queue.lease.0,
        ),
        ctx,
    })
}
