//! Folder names on the wire and in the store. The store keeps one
//! canonical form: UTF-8, `/` between levels, `INBOX` in upper case.
//! IMAP4rev1 sessions speak modified UTF-7 (RFC 3501 5.1.3): names from
//! them are decoded here and names to them encoded; sessions that enabled
//! IMAP4rev2 (RFC 9051 5.1) send and receive UTF-8 as it is. This module
//! also checks names (one personal namespace: no `..`, other namespaces,
//! wildcards or control characters) and matches LIST patterns.

use super::session::Session;
use super::wire;
use crate::store::{SEPARATOR, Store, StoreError};
use base64::Engine;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use imap_codec::imap_types::mailbox::Mailbox;

/// Modified BASE64 of RFC 3501 5.1.3: "," instead of "/", no padding.
fn modified_base64() -> GeneralPurpose {
    GeneralPurpose::new(
        &IMAP_MUTF7,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// A UTF-8 name in modified UTF-7.
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |out: &mut String, pending: &mut Vec<u16>| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&modified_base64().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// A modified UTF-7 name in UTF-8. Characters outside printable ASCII
/// that arrive unencoded (8-bit UTF-8 from a lenient client) are kept;
/// malformed or superfluous shifts are refused, so that every name has
/// one spelling.
pub fn decode_mutf7(raw: &str) -> Result<String, String> {
    let bad = || format!("{raw:?} is not valid modified UTF-7");
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find('-').ok_or_else(bad)?;
        let encoded = &after[..end];
        rest = &after[end + 1..];
        if encoded.is_empty() {
            out.push('&');
            continue;
        }
        let bytes = modified_base64().decode(encoded).map_err(|_| bad())?;
        if bytes.len() % 2 != 0 {
            return Err(bad());
        }
        let units: Vec<u16> = bytes
            .as_chunks::<2>()
            .0
            .iter()
            .map(|&p| u16::from_be_bytes(p))
            .collect();
        let text = String::from_utf16(&units).map_err(|_| bad())?;
        if text.chars().any(|c| (' '..='~').contains(&c)) {
            return Err(bad());
        }
        out.push_str(&text);
    }
    out.push_str(rest);
    Ok(out)
}

/// Bytes from the client as a UTF-8 name: as they are under IMAP4rev2,
/// decoded from modified UTF-7 otherwise. Not yet checked.
pub fn from_wire(raw: &[u8], utf8: bool) -> Result<String, String> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| "folder names must be UTF-8 (or modified UTF-7)".to_string())?;
    if utf8 {
        Ok(text.to_string())
    } else {
        decode_mutf7(text)
    }
}

/// A folder name from the client, checked and in canonical form.
pub fn folder_name(mailbox: &Mailbox<'_>, utf8: bool) -> Result<String, String> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".to_string()),
        Mailbox::Other(o) => check_name(&from_wire(o.as_ref(), utf8)?),
    }
}

/// Checks a UTF-8 name and puts it in canonical form (the store's rule,
/// shared with web mail).
pub fn check_name(name: &str) -> Result<String, String> {
    crate::store::check_folder_name(name)
}

/// IMAP LIST pattern matching: `*` matches anything, `%` anything but the separator.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| matches(rest, &name[i..])),
        Some((b'%', rest)) => {
            let stop = name
                .iter()
                .position(|&b| b == SEPARATOR as u8)
                .unwrap_or(name.len());
            (0..=stop).any(|i| matches(rest, &name[i..]))
        }
        Some((&p, rest)) => name.first().is_some_and(|&n| n == p) && matches(rest, &name[1..]),
    }
}

/// Folder names from before the store kept UTF-8: IMAP4rev1 clients'
/// modified UTF-7 was stored as sent. Renames each such folder (with a
/// shift that decodes to something else) to its UTF-8 name, once
/// per store; returns how many were renamed. A name whose UTF-8 form is
/// taken stays as it is.
pub async fn convert_stored_names(store: &Store) -> Result<usize, StoreError> {
    const CONVERSION: &str = "imap-utf8-folder-names";
    if store.conversion_done(CONVERSION).await? {
        return Ok(0);
    }
    let legacy = |name: &str| {
        name.contains('&')
            .then(|| decode_mutf7(name).ok())
            .flatten()
            .filter(|decoded| decoded != name)
    };
    let mut renamed = 0;
    for user in store.list_users().await? {
        let mut skipped: Vec<String> = Vec::new();
        // Renaming a folder renames those below it: look again each time.
        while let Some((from, to)) = store
            .folders(&user)
            .await?
            .into_iter()
            .filter(|f| !skipped.contains(&f.name))
            .find_map(|f| legacy(&f.name).map(|to| (f.name, to)))
        {
            match store.rename_folder(&user, &from, &to).await {
                Ok(()) => renamed += 1,
                Err(StoreError::FolderExists(_)) => skipped.push(from),
                Err(e) => return Err(e),
            }
        }
    }
    store.set_conversion_done(CONVERSION).await?;
    Ok(renamed)
}

impl Session {
    /// A folder name from this client, checked, in canonical form.
    pub fn folder_name(&self, mailbox: &Mailbox<'_>) -> Result<String, String> {
        folder_name(mailbox, self.rev2)
    }

    /// Appends a stored (UTF-8) name as this client reads names.
    pub fn put_mailbox(&self, out: &mut Vec<u8>, name: &str) {
        if self.rev2 {
            wire::utf8_string(out, name);
        } else {
            wire::mailbox(out, &encode_mutf7(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn modified_utf7_both_ways() {
        // RFC 3501 5.1.3's example.
        let utf8 = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        assert_eq!(encode_mutf7(utf8), wire);
        assert_eq!(decode_mutf7(wire).unwrap(), utf8);
        assert_eq!(encode_mutf7("p\u{e4}\u{e4}"), "p&AOQA5A-");
        assert_eq!(encode_mutf7("A&B"), "A&-B");
        assert_eq!(decode_mutf7("A&-B").unwrap(), "A&B");
        assert_eq!(decode_mutf7("caf\u{e9}").unwrap(), "caf\u{e9}");
        // Beyond the BMP: a surrogate pair.
        assert_eq!(
            decode_mutf7(&encode_mutf7("x\u{1f600}")).unwrap(),
            "x\u{1f600}"
        );
        for bad in ["&", "a&Jjo", "&AGE-", "&Jj-", "&2D0-"] {
            assert!(decode_mutf7(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn stored_modified_utf7_names_become_utf8_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.add_user("bob@example.test", "pw").await.unwrap();
        store
            .create_folder("bob@example.test", "Caf&AOk-")
            .await
            .unwrap();
        store
            .create_folder("bob@example.test", "Caf&AOk-/x&AOk-")
            .await
            .unwrap();
        store
            .append(
                "bob@example.test",
                "Caf&AOk-",
                b"Subject: a\r\n\r\n",
                vec![],
                None,
            )
            .await
            .unwrap();
        store
            .create_folder("bob@example.test", "A&-B")
            .await
            .unwrap();
        assert_eq!(convert_stored_names(&store).await.unwrap(), 3);
        let names: Vec<String> = store
            .folders("bob@example.test")
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        for name in ["Caf\u{e9}", "Caf\u{e9}/x\u{e9}", "A&B"] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        assert_eq!(
            store
                .messages("bob@example.test", "Caf\u{e9}")
                .await
                .unwrap()
                .len(),
            1
        );
        // Once only: a UTF-8 name spelled like modified UTF-7 stays.
        store
            .create_folder("bob@example.test", "Z&AOk-")
            .await
            .unwrap();
        assert_eq!(convert_stored_names(&store).await.unwrap(), 0);
    }

    #[test]
    fn names_stay_in_the_namespace() {
        assert_eq!(check_name("inbox/Sub").unwrap(), "INBOX/Sub");
        for bad in [
            "..",
            "a/../b",
            "#shared/x",
            "~bob",
            "a//b",
            "/a",
            "a*",
            "a%",
            "a\u{0}b",
            "",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_name("Work/2026").unwrap(), "Work/2026");
    }

    #[test]
    fn wildcards() {
        assert!(matches(b"*", b"a/b"));
        assert!(!matches(b"%", b"a/b"));
        assert!(matches(b"a/%", b"a/b"));
        assert!(matches(b"INBOX", b"INBOX"));
        assert!(!matches(b"Sent", b"Sent/x"));
    }
}
