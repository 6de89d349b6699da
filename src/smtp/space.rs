//! Free disk space, checked before mail is taken: at MAIL (the declared
//! SIZE must fit above `limits.min_free_space`) and while data arrives
//! (below half of it, the message is dropped and the end of data gets 452
//! 4.3.1). The store cannot recover from a failed write without a restart,
//! so it must never be the one to find the disk full.

use super::body::MessageSink;
use super::session::Session;

impl Session {
    /// Is there room for a message of `size` more bytes, keeping
    /// `limits.min_free_space` free?
    pub(super) fn space_for(&self, size: u64) -> bool {
        let floor = self.ctx.config.limits.min_free_space.0;
        match self.ctx.store.free_space() {
            Some(free) if free < floor.saturating_add(size) => {
                tracing::warn!(free, floor, size, "refusing mail: disk nearly full");
                false
            }
            _ => true,
        }
    }

    /// Called as data arrives: once the disk falls below half of
    /// `limits.min_free_space`, the message is no longer kept.
    pub(super) fn check_space(&mut self, sink: &mut MessageSink, incoming: usize) {
        if !self.space_during_data(incoming) {
            sink.abandon_for_space();
        }
    }

    /// Room for `incoming` more bytes during DATA/BDAT (checked about once
    /// per 256 KiB received, not per read).
    pub(super) fn space_during_data(&mut self, incoming: usize) -> bool {
        self.data_since_space_check += incoming;
        if self.data_since_space_check < 256 * 1024 {
            return true;
        }
        self.data_since_space_check = 0;
        let floor = self.ctx.config.limits.min_free_space.0 / 2;
        self.ctx.store.free_space().is_none_or(|free| free >= floor)
    }
}
