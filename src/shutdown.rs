//! The shutdown signal every task listens to (SIGTERM drains): a watch
//! channel flipped once; listeners stop accepting, idle sessions say goodbye,
//! and the server waits for the sessions in flight.

use tokio::sync::watch;

/// Held by the part that decides to stop.
#[derive(Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Held by every task that must stop.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Resolves once every `Shutdown` handle has been dropped.
    pub async fn all_stopped(&self) {
        self.0.closed().await
    }
}

impl Shutdown {
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown begins.
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }
}
