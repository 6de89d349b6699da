//! Whether a vacation action turns into a reply (RFC 5230 section 4.5, RFC
//! 3834 section 2) and what that reply says. Never to the null sender,
//! MAILER-DAEMON or list addresses; never for Auto-Submitted, Precedence
//! bulk/list/junk or mailing-list mail; only when the user is a direct
//! recipient; once per sender and handle per period (the caller's store).

use crate::action::{VacationAction, normalize_address};
use crate::interp::Envelope;
use crate::message::MessageView;

/// The caller's memory of replies already sent: the caller records
/// (sender, handle) with the time when it sends a [`Reply`], and answers
/// here from that record.
pub trait ReplyLog {
    /// Whether `sender` got a reply for `handle` within the last `period` seconds.
    fn already_replied(&self, sender: &str, handle: &str, period: u64) -> bool;
}

/// The reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub to: String,
    pub from: String,
    pub subject: String,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    /// The reason; with `:mime` it is a whole MIME entity (headers and body).
    pub body: String,
    pub mime: bool,
    /// Always `auto-replied` (RFC 3834 section 5).
    pub auto_submitted: &'static str,
}

/// Why no reply goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NullSender,
    SystemSender,
    AutoSubmitted,
    Bulk,
    MailingList,
    NotAddressed,
    OwnMessage,
    AlreadyReplied,
}

/// Decides on `v` for this message; `user` is the script owner's address.
pub fn decide(
    msg: &MessageView,
    env: &Envelope,
    user: &str,
    v: &VacationAction,
    log: &dyn ReplyLog,
) -> Result<Reply, Skip> {
    let sender = env
        .from
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    if sender.is_empty() {
        return Err(Skip::NullSender);
    }
    let local = sender
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(&sender)
        .to_ascii_lowercase();
    if local == "mailer-daemon"
        || local == "listserv"
        || local == "majordomo"
        || local.starts_with("owner-")
        || local.ends_with("-request")
    {
        return Err(Skip::SystemSender);
    }
    if msg
        .header_values("auto-submitted")
        .iter()
        .any(|a| !a.trim().eq_ignore_ascii_case("no"))
    {
        return Err(Skip::AutoSubmitted);
    }
    if msg.header_values("precedence").iter().any(|p| {
        matches!(
            p.trim().to_ascii_lowercase().as_str(),
            "bulk" | "list" | "junk"
        )
    }) {
        return Err(Skip::Bulk);
    }
    let list_headers = [
        "list-id",
        "list-help",
        "list-subscribe",
        "list-unsubscribe",
        "list-post",
        "list-owner",
        "list-archive",
    ];
    if list_headers.iter().any(|h| msg.exists(h)) {
        return Err(Skip::MailingList);
    }
    let mut mine: Vec<String> = vec![normalize_address(user).to_ascii_lowercase()];
    mine.extend(
        v.addresses
            .iter()
            .map(|a| normalize_address(a).to_ascii_lowercase()),
    );
    if mine.contains(&normalize_address(&sender).to_ascii_lowercase()) {
        return Err(Skip::OwnMessage);
    }
    let addressed = ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"]
        .iter()
        .any(|h| {
            msg.addresses(h).iter().flatten().any(|a| {
                mine.contains(
                    &format!("{}@{}", a.local, a.domain.to_ascii_lowercase()).to_ascii_lowercase(),
                )
            })
        });
    if !addressed {
        return Err(Skip::NotAddressed);
    }
    if log.already_replied(&sender, &v.handle, v.period) {
        return Err(Skip::AlreadyReplied);
    }
    let original_subject = msg
        .header_values("subject")
        .into_iter()
        .next()
        .unwrap_or_default();
    let subject = v
        .subject
        .clone()
        .unwrap_or_else(|| format!("Auto: {original_subject}"));
    let message_id = msg
        .header_values("message-id")
        .into_iter()
        .next()
        .filter(|m| !m.is_empty());
    let references = match (
        msg.header_values("references").into_iter().next(),
        &message_id,
    ) {
        (Some(r), Some(id)) => Some(format!("{r} {id}")),
        (None, Some(id)) => Some(id.clone()),
        (r, None) => r,
    };
    Ok(Reply {
        to: sender,
        from: v.from.clone().unwrap_or_else(|| user.to_string()),
        subject,
        in_reply_to: message_id,
        references,
        body: v.reason.clone(),
        mime: v.mime,
        auto_submitted: "auto-replied",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Never;
    impl ReplyLog for Never {
        fn already_replied(&self, _: &str, _: &str, _: u64) -> bool {
            false
        }
    }

    fn action() -> VacationAction {
        VacationAction {
            period: 86400,
            subject: None,
            from: None,
            addresses: vec![],
            mime: false,
            handle: "h".into(),
            reason: "away".into(),
        }
    }

    struct Always;
    impl ReplyLog for Always {
        fn already_replied(&self, _: &str, _: &str, _: u64) -> bool {
            true
        }
    }

    #[test]
    fn once_per_sender_and_period() {
        let env = Envelope {
            from: "alice@example.net".into(),
            to: "bob@example.com".into(),
        };
        let plain = b"From: alice@example.net\r\nTo: bob@example.com\r\n\r\nbody\r\n";
        assert_eq!(
            decide(
                &MessageView::new(plain),
                &env,
                "bob@example.com",
                &action(),
                &Always
            ),
            Err(Skip::AlreadyReplied)
        );
        let own = Envelope {
            from: "BOB@example.com".into(),
            ..env
        };
        assert_eq!(
            decide(
                &MessageView::new(plain),
                &own,
                "bob@example.com",
                &action(),
                &Never
            ),
            Err(Skip::OwnMessage)
        );
    }

    #[test]
    fn replies_only_when_appropriate() {
        let env = Envelope {
            from: "alice@example.net".into(),
            to: "bob@example.com".into(),
        };
        let plain = b"From: alice@example.net\r\nTo: Bob <bob@example.com>\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n";
        let r = decide(
            &MessageView::new(plain),
            &env,
            "bob@example.com",
            &action(),
            &Never,
        )
        .expect("reply");
        assert_eq!(
            (r.subject.as_str(), r.in_reply_to.as_deref()),
            ("Auto: hi", Some("<1@x>"))
        );
        let list = b"From: alice@example.net\r\nTo: bob@example.com\r\nList-Id: <l.example.net>\r\n\r\nbody\r\n";
        assert_eq!(
            decide(
                &MessageView::new(list),
                &env,
                "bob@example.com",
                &action(),
                &Never
            ),
            Err(Skip::MailingList)
        );
        let null = Envelope {
            from: String::new(),
            ..env.clone()
        };
        assert_eq!(
            decide(
                &MessageView::new(plain),
                &null,
                "bob@example.com",
                &action(),
                &Never
            ),
            Err(Skip::NullSender)
        );
        let cc = b"From: alice@example.net\r\nTo: team@example.com\r\n\r\nbody\r\n";
        assert_eq!(
            decide(
                &MessageView::new(cc),
                &env,
                "bob@example.com",
                &action(),
                &Never
            ),
            Err(Skip::NotAddressed)
        );
    }
}
