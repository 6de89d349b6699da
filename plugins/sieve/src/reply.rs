//! The vacation reply as a message (RFC 5230 section 5, RFC 3834 section
//! 3): From the account (or `:from`), To the sender, the subject, In-Reply-To
//! and References of the original, `Auto-Submitted: auto-replied`, and the
//! reason as a text/plain UTF-8 body — or, with `:mime`, the reason as the
//! whole MIME entity under those headers. Written with `mail-builder`.

use mail_builder::MessageBuilder;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use tern_sieve::vacation::Reply;

/// The reply as a whole message; `now` is seconds since the epoch.
pub fn build(r: &Reply, now: i64) -> Vec<u8> {
    let domain = r.from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let id = format!("{now}.{:016x}.vacation@{domain}", fnv(&r.to, now));
    let mut m = MessageBuilder::new()
        .from(r.from.as_str())
        .to(r.to.as_str())
        .subject(r.subject.as_str())
        .date(now)
        .message_id(id)
        .header("Auto-Submitted", Raw::new(r.auto_submitted));
    if let Some(irt) = &r.in_reply_to {
        m = m.in_reply_to(strip(irt));
    }
    if let Some(refs) = &r.references {
        let ids: Vec<String> = refs
            .split_whitespace()
            .map(|s| strip(s).to_string())
            .collect();
        if !ids.is_empty() {
            m = m.references(MessageId::new_list(ids.into_iter()));
        }
    }
    if !r.mime {
        return m
            .text_body(r.body.as_str())
            .write_to_vec()
            .unwrap_or_default();
    }
    // :mime: our headers without the body's, then the script's entity.
    let whole = m.text_body("").write_to_vec().unwrap_or_default();
    let end = whole
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(whole.len(), |p| p + 2);
    let mut out = Vec::with_capacity(end + r.body.len() + 2);
    for line in whole[..end].split_inclusive(|&b| b == b'\n') {
        let lower = String::from_utf8_lossy(line).to_ascii_lowercase();
        if !lower.starts_with("content-type:") && !lower.starts_with("content-transfer-encoding:") {
            out.extend_from_slice(line);
        }
    }
    let entity = r.body.replace("\r\n", "\n").replace('\n', "\r\n");
    out.extend_from_slice(entity.trim_start_matches(['\r', '\n']).as_bytes());
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A message ID as mail-builder takes it: without the angle brackets.
fn strip(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// A hash for a unique-enough Message-ID (no randomness in the sandbox).
fn fnv(s: &str, now: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ now as u64;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(mime: bool, body: &str) -> Reply {
        Reply {
            to: "lisa@outside.test".into(),
            from: "carol@example.test".into(),
            subject: "Auto: Grüße".into(),
            in_reply_to: Some("<first@outside.test>".into()),
            references: Some("<zero@outside.test> <first@outside.test>".into()),
            body: body.into(),
            mime,
            auto_submitted: "auto-replied",
        }
    }

    fn parsed(raw: &[u8]) -> tern_sieve::message::MessageView<'_> {
        tern_sieve::message::MessageView::new(raw)
    }

    #[test]
    fn a_plain_reply_has_the_rfc_3834_fields() {
        let raw = build(&reply(false, "I am away."), 1_700_000_000);
        let text = String::from_utf8_lossy(&raw);
        for want in [
            "Auto-Submitted: auto-replied\r\n",
            "In-Reply-To: <first@outside.test>\r\n",
            "References: <zero@outside.test> <first@outside.test>\r\n",
            "To: <lisa@outside.test>\r\n",
            "Message-ID: <1700000000.",
        ] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
        let view = parsed(&raw);
        assert_eq!(
            view.header_values("subject"),
            vec!["Auto: Grüße".to_string()]
        );
        assert!(text.contains("I am away."), "{text}");
    }

    #[test]
    fn a_mime_reason_is_the_body_entity() {
        let entity = "Content-Type: text/html; charset=utf-8\n\n<p>away</p>\n";
        let raw = build(&reply(true, entity), 1_700_000_000);
        let text = String::from_utf8_lossy(&raw);
        assert_eq!(text.matches("Content-Type:").count(), 1, "{text}");
        assert!(
            text.contains("Content-Type: text/html; charset=utf-8\r\n\r\n<p>away</p>\r\n"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-replied\r\n"), "{text}");
    }
}
