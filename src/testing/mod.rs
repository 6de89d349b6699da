//! Helpers for tests (this crate's unit tests, and the integration tests
//! and benchmarks through the `testing` feature): real outside parts the
//! tests start themselves. Never used by the server.

pub mod peers;
pub mod postgres;

use std::time::{Duration, Instant};

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
