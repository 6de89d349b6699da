//! The trace fields Tern writes on top of a message it accepts: its
//! `Received:` (RFC 5321 section 4.4), and on submission the `Message-ID:`
//! and `Date:` a message lacks (RFC 6409 section 8). Written once here for
//! the SMTP server and `tern plugin test`, so a filter sees the same
//! fields in both. Pure: the caller says what the session was.

use std::net::IpAddr;

/// What the `Received:` field tells of the session and the message.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The EHLO/HELO name ("unknown" when none was given).
    pub helo: &'a str,
    pub client: IpAddr,
    /// The TLS version of an encrypted session (`TLSv1.3`).
    pub tls: Option<&'a str>,
    /// The client said EHLO (or LHLO), not HELO.
    pub esmtp: bool,
    pub lmtp: bool,
    /// The client logged in.
    pub authenticated: bool,
    /// This server's name.
    pub host: &'a str,
    pub queue_id: &'a str,
    pub node: &'a str,
    /// The recipient, when there is exactly one.
    pub only_recipient: Option<&'a str>,
}

/// What a submission adds besides `Received:`: `None` on relay, else
/// whether the message already has a `Message-ID:` and a `Date:`.
#[derive(Debug, Clone, Copy)]
pub struct Submitted {
    pub has_message_id: bool,
    pub has_date: bool,
}

/// The fields, CRLF-terminated, in the order they go on top of the
/// message (`Received:` first).
pub fn trace_fields(a: &Arrival<'_>, submitted: Option<Submitted>) -> Vec<u8> {
    let mut with = if a.lmtp {
        "LMTP"
    } else if a.esmtp {
        "ESMTP"
    } else {
        "SMTP"
    }
    .to_string();
    if a.tls.is_some() && a.esmtp {
        with.push('S');
    }
    if a.authenticated && a.esmtp {
        with.push('A');
    }
    let mut h = format!("Received: from {} ([{}])\r\n", a.helo, a.client);
    if let Some(version) = a.tls {
        h.push_str(&format!("\t(using {version})\r\n"));
    }
    h.push_str(&format!(
        "\tby {} (Tern) with {with} id {} (node {})",
        a.host, a.queue_id, a.node
    ));
    if let Some(only) = a.only_recipient {
        h.push_str(&format!("\r\n\tfor <{only}>"));
    }
    let date = chrono::Utc::now().to_rfc2822();
    h.push_str(&format!("; {date}\r\n"));
    if let Some(s) = submitted {
        if !s.has_message_id {
            let nonce: u32 = rand::random();
            h.push_str(&format!(
                "Message-ID: <{}.{nonce:08x}@{}>\r\n",
                a.queue_id, a.host
            ));
        }
        if !s.has_date {
            h.push_str(&format!("Date: {date}\r\n"));
        }
    }
    h.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(esmtp: bool) -> Arrival<'static> {
        Arrival {
            helo: "client.test",
            client: "192.0.2.7".parse().unwrap(),
            tls: Some("TLSv1.3"),
            esmtp,
            lmtp: false,
            authenticated: true,
            host: "mx.example.test",
            queue_id: "00AB",
            node: "n1",
            only_recipient: Some("bob@example.test"),
        }
    }

    #[test]
    fn received_names_the_session_and_submission_adds_what_is_missing() {
        let relay = String::from_utf8(trace_fields(&arrival(true), None)).unwrap();
        assert!(
            relay.starts_with(
                "Received: from client.test ([192.0.2.7])\r\n\t(using TLSv1.3)\r\n\
                 \tby mx.example.test (Tern) with ESMTPSA id 00AB (node n1)\r\n\
                 \tfor <bob@example.test>; "
            ),
            "{relay}"
        );
        assert!(relay.ends_with("\r\n") && !relay.contains("Message-ID"));
        let helo = String::from_utf8(trace_fields(&arrival(false), None)).unwrap();
        assert!(helo.contains(" with SMTP id "), "{helo}");
        let submitted = String::from_utf8(trace_fields(
            &arrival(true),
            Some(Submitted {
                has_message_id: false,
                has_date: true,
            }),
        ))
        .unwrap();
        let fields: Vec<&str> = submitted
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with('\t'))
            .collect();
        assert_eq!(fields.len(), 2, "{submitted}");
        assert!(fields[1].starts_with("Message-ID: <00AB."), "{submitted}");
        assert!(fields[1].ends_with("@mx.example.test>"), "{submitted}");
    }
}
