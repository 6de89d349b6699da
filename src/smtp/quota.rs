//! Quotas as SMTP and LMTP answer them (DESIGN.md: `tern user quota`), in
//! the manner of Dovecot's LMTP with `lmtp_rcpt_check_quota` behind
//! Postfix: at RCPT a local mailbox already full (or too full for the
//! size MAIL's SIZE announced) is refused `452 4.2.2` for that recipient
//! alone; one whose whole quota is smaller than the message `552 5.2.2`.
//! At the end of data the real size is checked again per recipient: LMTP
//! answers each recipient on its own; SMTP, with one answer for all,
//! refuses the message only when every recipient is refused, and
//! otherwise accepts it and the commit (`submit/commit.rs`) queues the
//! copies that do not fit, to be delivered when space frees up or bounced
//! when the queue gives up — as Postfix does when its LMTP hop says 452.

use super::session::{Recipient, Session};
use crate::mail::{Reply, Target};
use crate::store::Admission;

/// The refusal for a message of `size` bytes to `rcpt`, if any of its
/// local mailboxes cannot take it (None: every one can).
pub(super) async fn refusal(session: &Session, rcpt: &Recipient, size: u64) -> Option<Reply> {
    let mut worst: Option<Reply> = None;
    for target in &rcpt.targets {
        let Target::Local(user) = target else {
            continue;
        };
        let admission = match session.ctx.store.quota(user).await {
            Ok(q) => q.admits(size),
            Err(e) => {
                tracing::error!(user = %user, "reading the quota failed: {e}");
                return Some(Reply::new(
                    451,
                    "4.3.0",
                    "Error: local storage problem, try again later",
                ));
            }
        };
        match admission {
            Admission::Yes => {}
            Admission::TooBig => {
                return Some(Reply::new(
                    552,
                    "5.2.2",
                    format!(
                        "<{}>: message is larger than the mailbox's whole quota",
                        rcpt.address
                    ),
                ));
            }
            Admission::Full => {
                worst = Some(Reply::new(
                    452,
                    "4.2.2",
                    format!(
                        "<{}>: mailbox is full (over quota), try again later",
                        rcpt.address
                    ),
                ));
            }
        }
    }
    worst
}

/// The one SMTP answer when every recipient was refused: permanent only
/// when every refusal is.
pub(super) fn all_refused(refusals: &[Reply]) -> Reply {
    if refusals.iter().all(Reply::is_permanent) {
        Reply::new(
            552,
            "5.2.2",
            "Message is larger than the recipients' whole quota",
        )
    } else {
        Reply::new(
            452,
            "4.2.2",
            "Mailboxes are full (over quota), try again later",
        )
    }
}

impl Session {
    /// `refusal` at RCPT: for the size MAIL announced, at least one byte.
    pub(super) async fn quota_at_rcpt(&self, rcpt: &Recipient) -> Option<Reply> {
        let announced = self.tx.as_ref().and_then(|t| t.params.size).unwrap_or(0);
        refusal(self, rcpt, announced.max(1)).await
    }
}
