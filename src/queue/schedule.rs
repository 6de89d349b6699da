//! When to try again: `queue.retry_intervals` (the last one repeats), and
//! when to give up (`max_lifetime`) or warn (`delay_warning_after`).

use crate::config::QueueConfig;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetrySchedule {
    intervals: Vec<Duration>,
    pub max_lifetime: Duration,
    pub delay_warning_after: Duration,
}

impl RetrySchedule {
    pub fn from_config(q: &QueueConfig) -> RetrySchedule {
        RetrySchedule {
            intervals: q.retry_intervals.iter().map(|d| d.0).collect(),
            max_lifetime: q.max_lifetime.0,
            delay_warning_after: q.delay_warning_after.0,
        }
    }

    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let i = (attempts.max(1) as usize - 1).min(self.intervals.len().saturating_sub(1));
        self.intervals
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(300))
    }

    /// Has a message that arrived at `arrived` (unix seconds) outlived its welcome?
    pub fn expired(&self, arrived: i64, now: i64) -> bool {
        now.saturating_sub(arrived) >= self.max_lifetime.as_secs() as i64
    }

    pub fn warn_due(&self, arrived: i64, now: i64) -> bool {
        now.saturating_sub(arrived) >= self.delay_warning_after.as_secs() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigDuration;

    #[test]
    fn last_interval_repeats() {
        let q = QueueConfig {
            retry_intervals: vec![
                ConfigDuration(Duration::from_secs(60)),
                ConfigDuration(Duration::from_secs(300)),
            ],
            ..QueueConfig::default()
        };
        let s = RetrySchedule::from_config(&q);
        assert_eq!(s.delay_after(1), Duration::from_secs(60));
        assert_eq!(s.delay_after(2), Duration::from_secs(300));
        assert_eq!(s.delay_after(9), Duration::from_secs(300));
        assert!(s.expired(0, 5 * 86400));
        assert!(!s.expired(0, 5 * 86400 - 1));
    }
}
