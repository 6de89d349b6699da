//! The delivery queue: the scheduler that walks queue entries whose time has
//! come and hands each to `delivery.rs` (which records every recipient's
//! result as soon as the next hop answers), within
//! `queue.max_concurrent_deliveries`. Retries follow `schedule.rs`; bounces
//! and delay warnings are built by `dsn.rs`. The queue never reaches back
//! into the receiving side: the store is the only thing they share.

pub mod delivery;
pub mod dsn;
pub mod notify;
pub mod schedule;

use crate::server::ServerContext;
use crate::shutdown::Shutdown;
use crate::store::now;
use delivery::Deliverer;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Wakes the scheduler when new work arrives.
#[derive(Clone, Default)]
pub struct QueueHandle {
    notify: Arc<Notify>,
}

impl QueueHandle {
    pub fn new() -> QueueHandle {
        QueueHandle::default()
    }

    pub fn wake(&self) {
        self.notify.notify_one();
    }

    async fn woken(&self) {
        self.notify.notified().await
    }
}

/// The longest the scheduler sleeps without looking at the queue.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs the scheduler until shutdown; deliveries in flight finish first.
pub async fn run(ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    let deliverer = match make_deliverer(ctx.clone()) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            tracing::error!("the queue cannot start: {e}");
            return;
        }
    };
    let limit = Arc::new(Semaphore::new(ctx.config.queue.max_concurrent_deliveries));
    let in_flight: Arc<Mutex<HashSet<u64>>> = Arc::default();
    loop {
        let entries = match ctx.store.queue_entries() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("reading the queue failed: {e}");
                Vec::new()
            }
        };
        let now_s = now();
        let mut next_due: Option<i64> = None;
        for entry in entries {
            let Some(due) = entry.next_attempt() else {
                // Nothing pending (a crash between the last result and the clean-up).
                let _ = ctx.store.release_queue_entry(&entry);
                continue;
            };
            if due > now_s {
                next_due = Some(next_due.map_or(due, |n| n.min(due)));
                continue;
            }
            {
                let mut set = in_flight.lock().unwrap_or_else(|p| p.into_inner());
                if !set.insert(entry.id) {
                    continue;
                }
            }
            let (d, lim, set, id, handle) = (deliverer.clone(), limit.clone(), in_flight.clone(), entry.id, ctx.queue.clone());
            tokio::spawn(async move {
                let Ok(_permit) = lim.acquire_owned().await else { return };
                if let Err(e) = d.deliver(id).await {
                    tracing::error!(queue_id = %crate::store::format_queue_id(id), "delivery run failed: {e}");
                }
                set.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                handle.wake();
            });
        }
        let sleep = next_due
            .map(|t| Duration::from_secs((t - now_s).max(1) as u64))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = ctx.queue.woken() => {}
            _ = tokio::time::sleep(sleep.min(IDLE_CONNECTION_TIME)) => {}
            _ = shutdown.recv() => break,
        }
        for session in deliverer.pool.expired() {
            session.quit().await;
        }
    }
    // Let deliveries in flight record their results.
    let _ = limit.acquire_many(ctx.config.queue.max_concurrent_deliveries as u32).await;
    for session in deliverer.pool.drain() {
        session.quit().await;
    }
}

/// How long an idle outbound connection waits for the next message.
const IDLE_CONNECTION_TIME: Duration = Duration::from_secs(5);

fn make_deliverer(ctx: Arc<ServerContext>) -> Result<Deliverer, crate::outbound::tls::ClientSetupError> {
    let config = &ctx.config;
    let auth = match (&config.relay.smarthost_user, &config.relay.smarthost_password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        _ => None,
    };
    let client = crate::outbound::client::ClientConfig {
        helo_name: config.hostname.clone(),
        tls: Some(crate::outbound::client::opportunistic_tls_config()?),
        connect_timeout: Duration::from_secs(30),
        auth,
        ..crate::outbound::client::ClientConfig::default()
    };
    Ok(Deliverer {
        schedule: schedule::RetrySchedule::from_config(&config.queue),
        mx: crate::outbound::mx::MxResolver::new(ctx.hooks.dns().clone()),
        client,
        pool: crate::outbound::pool::ConnectionPool::new(config.queue.max_per_destination, IDLE_CONNECTION_TIME),
        per_destination: Default::default(),
        ctx,
    })
}
