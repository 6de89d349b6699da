//! Reading what the server answered and stored: queue ids in replies, the
//! header lines Tern added, header fields, bytes as text.

/// The queue id in `250 2.0.0 Ok: queued as ID`.
#[track_caller]
pub fn queue_id(reply_text: &str) -> String {
    let (_, id) = reply_text
        .split_once("queued as ")
        .unwrap_or_else(|| panic!("no queue id in {reply_text:?}"));
    id.split_whitespace().next().expect("queue id").to_string()
}

/// Asserts that `stored` is `sent` with header lines prepended, and returns
/// those added header lines.
#[track_caller]
pub fn added_headers(stored: &[u8], sent: &[u8]) -> String {
    assert!(
        stored.ends_with(sent),
        "stored message does not end with the bytes sent.\nsent:   {:?}\nstored: {:?}",
        String::from_utf8_lossy(sent),
        String::from_utf8_lossy(stored)
    );
    let prefix = &stored[..stored.len() - sent.len()];
    let text = String::from_utf8(prefix.to_vec()).expect("added headers are UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "added headers do not end a line: {text:?}"
    );
    text
}

/// Does `haystack` contain `needle`?
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A header field's unfolded value from a header block, case-insensitive.
pub fn header(headers: &str, name: &str) -> Option<String> {
    let mut lines = headers.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            let mut value = v.trim().to_string();
            while let Some(next) = lines.peek() {
                if next.starts_with([' ', '\t']) {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                } else {
                    break;
                }
            }
            return Some(value);
        }
    }
    None
}

/// Output bytes as text, for messages and asserts.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
