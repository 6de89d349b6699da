//! How long the SMTP client waits at each step of a transaction: RFC 5321
//! section 4.5.3.2's times by default, optionally capped by
//! `queue.reply_timeout`.

use std::time::Duration;

/// Per-step timeouts (RFC 5321 section 4.5.3.2).
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub greeting: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    pub data_init: Duration,
    pub data_block: Duration,
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}

impl Timeouts {
    /// No step waits longer than `cap`.
    pub fn cap(&mut self, cap: Duration) {
        for t in [
            &mut self.greeting,
            &mut self.mail,
            &mut self.rcpt,
            &mut self.data_init,
            &mut self.data_block,
            &mut self.data_end,
        ] {
            *t = (*t).min(cap);
        }
    }
}
