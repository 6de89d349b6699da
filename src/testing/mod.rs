//! Helpers for tests (this crate's unit tests, and the integration tests
//! and benchmarks through the `testing` feature): real outside parts the
//! tests start themselves. Never used by the server.

pub mod peers;
pub mod ports;
pub mod postgres;
pub mod reaper;

use crate::hooks::bindings::wit;
use crate::hooks::{DataMessage, MessageView};
use crate::store::{Store, Tail};
use std::time::{Duration, Instant};

/// A filter's view of a message still in its writer (`tail`), from a
/// client that did not log in, as `Hooks::data` makes it.
pub fn filter_view(
    store: &Store,
    blob: u64,
    tail: Tail<'_>,
    prefix: &[u8],
    header: &[u8],
) -> MessageView {
    let message = DataMessage {
        blob,
        tail,
        prefix,
        header,
        auth: None,
        skip: 0,
    };
    let arrival = wit::Arrival {
        tls: None,
        user: None,
    };
    MessageView::of(store.clone(), &message, arrival)
}

/// How long anything may take (a start, a stop, a reply) before the test fails.
pub const READY_BOUND: Duration = Duration::from_secs(60);

/// Polls `check` until it returns Some, failing the test after `bound`.
pub fn wait_for<T>(what: &str, bound: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < bound, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
