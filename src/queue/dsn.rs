//! Delivery status notifications (RFC 3464): a multipart/report with a
//! human-readable part, a message/delivery-status part (Reporting-MTA, and
//! per recipient Final-Recipient, Action, Status, Diagnostic-Code), and the
//! original message or its headers as RET asks. Sent from
//! `MAILER-DAEMON@hostname` with the null sender; never to `<>`.
//!
//! The fields are written as Postfix writes them, for bounce parsers that
//! read them literally: `Remote-MTA: dns; HOST` with the host name alone
//! (RFC 3464 section 2.3.5), and `Diagnostic-Code: smtp; REPLY` with the
//! next hop's reply as it gave it (section 2.3.6); a failure that is no
//! SMTP reply (a connection refused, a local error) is `X-Tern; TEXT`.

use crate::store::{QueueEntry, QueueRecipient};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnKind {
    Failed,
    Delayed,
    Delivered,
    /// Handed to a next hop that does not report success itself.
    Relayed,
}

impl DsnKind {
    fn action(self) -> &'static str {
        match self {
            DsnKind::Failed => "failed",
            DsnKind::Delayed => "delayed",
            DsnKind::Delivered => "delivered",
            DsnKind::Relayed => "relayed",
        }
    }
}

/// Builds the DSN message for `recipients` of `entry`. `original` is the
/// stored message (headers only are used when RET=HDRS or for delays).
pub fn build(
    hostname: &str,
    entry: &QueueEntry,
    recipients: &[&QueueRecipient],
    kind: DsnKind,
    original: &[u8],
) -> Vec<u8> {
    let boundary = format!(
        "{}.{:08x}/{hostname}",
        entry.queue_id(),
        rand::random::<u32>()
    );
    let date = chrono::Utc::now().to_rfc2822();
    let subject = match kind {
        DsnKind::Failed => "Undelivered Mail Returned to Sender",
        DsnKind::Delayed => "Delayed Mail (still being retried)",
        DsnKind::Delivered | DsnKind::Relayed => "Successful Mail Delivery Report",
    };
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", one_line(&entry.sender)));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("Date: {date}\r\n"));
    m.push_str(&format!(
        "Message-ID: <{}.dsn.{:08x}@{hostname}>\r\n",
        entry.queue_id(),
        rand::random::<u32>()
    ));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n"
    ));
    m.push_str("\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    m.push_str(&format!(
        "--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is the mail system at host {hostname}.\r\n\r\n"
    ));
    m.push_str(match kind {
        DsnKind::Failed => "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients. It's attached below.\r\n",
        DsnKind::Delayed => "Your message could not be delivered yet to one or more recipients.\r\nIt will be retried until it is too old; you do not need to resend it.\r\n",
        DsnKind::Delivered => "Your message was successfully delivered to the destination(s) listed below.\r\n",
        DsnKind::Relayed => "Your message was relayed to the destination(s) listed below, which will not\r\nreport its delivery. No further notice will come from them.\r\n",
    });
    m.push_str("\r\n");
    for r in recipients {
        let why = one_line(r.last_error.as_deref().unwrap_or("no further details"));
        m.push_str(&format!("<{}>: {why}\r\n", one_line(&r.address)));
    }
    m.push_str("\r\n");

    m.push_str(&format!(
        "--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    m.push_str(&format!("X-Tern-Queue-ID: {}\r\n", entry.queue_id()));
    if let Some(envid) = &entry.envid {
        m.push_str(&format!("Original-Envelope-Id: {}\r\n", one_line(envid)));
    }
    if let Some(arrived) = chrono::DateTime::from_timestamp(entry.arrived, 0) {
        m.push_str(&format!("Arrival-Date: {}\r\n", arrived.to_rfc2822()));
    }
    for r in recipients {
        m.push_str("\r\n");
        m.push_str(&format!(
            "Final-Recipient: rfc822; {}\r\n",
            one_line(&r.address)
        ));
        if let Some(orcpt) = &r.orcpt {
            m.push_str(&format!(
                "Original-Recipient: {}\r\n",
                one_line(orcpt).replacen(';', "; ", 1)
            ));
        }
        m.push_str(&format!("Action: {}\r\n", kind.action()));
        let default_status = match kind {
            DsnKind::Failed => "5.0.0",
            DsnKind::Delayed => "4.0.0",
            DsnKind::Delivered | DsnKind::Relayed => "2.0.0",
        };
        m.push_str(&format!(
            "Status: {}\r\n",
            one_line(r.status.as_deref().unwrap_or(default_status))
        ));
        if let Some(mta) = &r.remote_mta {
            m.push_str(&format!("Remote-MTA: dns; {}\r\n", one_line(mta_host(mta))));
        }
        if let Some(err) = &r.last_error {
            m.push_str(&format!(
                "Diagnostic-Code: {}\r\n",
                one_line(&diagnostic(err))
            ));
        }
        if kind == DsnKind::Delayed
            && let Some(t) = chrono::DateTime::from_timestamp(r.next_attempt, 0)
        {
            m.push_str(&format!("Will-Retry-Until: {}\r\n", t.to_rfc2822()));
        }
    }
    m.push_str("\r\n");

    let full = kind == DsnKind::Failed && entry.ret.as_deref() != Some("HDRS");
    let mut out = m.into_bytes();
    if full {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(original);
    } else {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Description: Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(header_section(original));
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Text from senders and next hops as one line: a CR or LF in it (an
/// ENVID or ORCPT decoded from xtext, a next hop's reply) would otherwise
/// add lines, even a MIME boundary, to the report.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// The host name of a next hop recorded as `host[ip]:port`, `host:port`
/// or `host` (the bracketed address when there is no name).
fn mta_host(mta: &str) -> &str {
    match mta.split_once('[') {
        Some(("", _)) => mta
            .rsplit_once("]:")
            .map_or(mta, |(ip, _)| &mta[..ip.len() + 1]),
        Some((host, _)) => host,
        None => match mta.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
            _ => mta,
        },
    }
}

/// Does `text` begin with an SMTP reply code (`550 …`, `451-…`)?
fn is_reply(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && matches!(b.get(3), None | Some(b' ' | b'-'))
}

/// The Diagnostic-Code value for a recorded error: the reply alone when
/// it is one (delivery records it as "HOST said: REPLY").
fn diagnostic(err: &str) -> String {
    let reply = err.split_once(" said: ").map_or(err, |(_, r)| r);
    if is_reply(reply) {
        format!("smtp; {reply}")
    } else {
        format!("X-Tern; {err}")
    }
}

/// The header section of a message (up to the blank line).
pub fn header_section(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &message[..p + 2],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_as_postfix_writes_them() {
        assert_eq!(mta_host("mx.pf.test[127.0.0.1]:25525"), "mx.pf.test");
        assert_eq!(mta_host("mx.pf.test:25"), "mx.pf.test");
        assert_eq!(mta_host("mx.pf.test"), "mx.pf.test");
        assert_eq!(mta_host("[192.0.2.1]:25"), "[192.0.2.1]");
        assert_eq!(
            diagnostic("mx.pf.test[127.0.0.1]:25525 said: 550 5.1.1 <x@pf.test>: unknown"),
            "smtp; 550 5.1.1 <x@pf.test>: unknown"
        );
        assert_eq!(
            diagnostic("mx.pf.test: connection refused"),
            "X-Tern; mx.pf.test: connection refused"
        );
        assert_eq!(
            diagnostic("550 5.1.1 no such user"),
            "smtp; 550 5.1.1 no such user"
        );
    }
}
