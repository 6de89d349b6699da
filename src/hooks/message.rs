//! The `message` resource a filter reads: the header lines Tern adds in
//! front (`Received:`), then the message as received, whose bytes stay in
//! the store's chunks and are read range by range, so a 25 MB message is
//! never copied into a plugin that looks only at its headers. The last
//! part, not yet in the store while the message is being decided on, is
//! read from the writer's buffer (`BlobWriter::tail`), shared, not copied.

use super::DataMessage;
use super::bindings::wit;
use super::host::PluginState;
use crate::store::{BlobId, Store};
use std::sync::Arc;
use wasmtime::component::Resource;

/// Most bytes one `read` call returns.
pub const MAX_READ: usize = 1024 * 1024;

/// What a plugin's `message` handle points at.
#[derive(Clone)]
pub struct MessageView {
    pub store: Store,
    /// The blob being written (readable through `Store::read_chunks` up
    /// to `tail_at`).
    pub blob: BlobId,
    /// The blob's bytes from `tail_at` on, still in its writer.
    pub tail: Arc<Vec<u8>>,
    pub tail_at: u64,
    /// Header lines put in front of the body.
    pub prefix: Arc<Vec<u8>>,
    /// The header section as received (a copy, also at the start of the blob).
    pub header: Arc<Vec<u8>>,
    /// Leading bytes of the blob left out of the message (its header
    /// section, rewritten into `prefix` after a filter removed fields).
    pub skip: u64,
    /// How the message arrived (TLS, login), for `message.arrival`.
    pub arrival: wit::Arrival,
}

impl MessageView {
    /// The view of `message`. Once header edits have left the received
    /// header section out (`skip`), the prefix holds its rewrite and the
    /// view has no header section of its own.
    pub fn of(store: Store, message: &DataMessage<'_>, arrival: wit::Arrival) -> MessageView {
        let header = if message.skip > 0 {
            &[][..]
        } else {
            message.header
        };
        MessageView {
            store,
            blob: message.blob,
            tail: message.tail.bytes.clone(),
            tail_at: message.tail.at,
            prefix: Arc::new(message.prefix.to_vec()),
            header: Arc::new(header.to_vec()),
            skip: message.skip,
            arrival,
        }
    }

    pub fn size(&self) -> u64 {
        let blob_size = self.tail_at + self.tail.len() as u64;
        self.prefix.len() as u64 + blob_size.saturating_sub(self.skip)
    }

    /// Every header field, in order (prefix first).
    pub fn headers(&self) -> Vec<wit::Header> {
        let mut out = parse_headers(&self.prefix);
        out.extend(parse_headers(&self.header));
        out
    }

    /// The values of the fields named `name` (case-insensitive), in order:
    /// what `headers` has for them, without building the others.
    pub fn header(&self, name: &str) -> Vec<String> {
        let mut out = field_values(&self.prefix, name);
        out.extend(field_values(&self.header, name));
        out
    }

    pub async fn read(&self, offset: u64, len: u32) -> Vec<u8> {
        let len = (len as usize).min(MAX_READ);
        let prefix_len = self.prefix.len() as u64;
        let mut out = Vec::new();
        if offset < prefix_len {
            let start = offset as usize;
            let end = (start + len).min(self.prefix.len());
            out.extend_from_slice(&self.prefix[start..end]);
        }
        // Offsets in the blob from here on.
        let mut from = offset.saturating_sub(prefix_len) + self.skip;
        if out.len() < len && from < self.tail_at {
            let want = (len - out.len()).min(usize::try_from(self.tail_at - from).unwrap_or(len));
            match self.store.read_chunks(self.blob, from, want).await {
                Ok(bytes) if bytes.len() == want => out.extend_from_slice(&bytes),
                Ok(_) => {
                    tracing::warn!(
                        blob = self.blob,
                        "a plugin read past the stored part of the message"
                    );
                    return out;
                }
                Err(e) => {
                    tracing::warn!(blob = self.blob, "a plugin could not read the message: {e}");
                    return out;
                }
            }
            from += want as u64;
        }
        if out.len() < len
            && let Some(start) = from
                .checked_sub(self.tail_at)
                .and_then(|s| usize::try_from(s).ok())
            && start < self.tail.len()
        {
            let end = self.tail.len().min(start + (len - out.len()));
            out.extend_from_slice(&self.tail[start..end]);
        }
        out
    }
}

/// Splits a header section into fields; continuation lines stay in the value
/// (without the final CRLF). Stops at the blank line.
pub fn parse_headers(section: &[u8]) -> Vec<wit::Header> {
    fields(section, |_| true)
}

/// The values of the fields named `name` (case-insensitive) in `section`.
fn field_values(section: &[u8], name: &str) -> Vec<String> {
    fields(section, |n| n.eq_ignore_ascii_case(name.as_bytes()))
        .into_iter()
        .map(|h| h.value)
        .collect()
}

/// The lines of `section` without their `\n`, as `split` on `\n` gives
/// them (the last one, possibly empty, after the last `\n`), found with
/// memchr: the walk runs three times per filter call.
fn lines(section: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(section);
    std::iter::from_fn(move || {
        let now = rest?;
        match memchr::memchr(b'\n', now) {
            Some(i) => {
                rest = Some(&now[i + 1..]);
                Some(&now[..i])
            }
            None => {
                rest = None;
                Some(now)
            }
        }
    })
}

/// The fields of `section` whose names `keep` accepts (the name's bytes,
/// trailing blanks trimmed), in order; the others are walked past without
/// being decoded or copied. A line that is no field is skipped (a
/// continuation line after it still belongs to the field before).
fn fields(section: &[u8], keep: impl Fn(&[u8]) -> bool) -> Vec<wit::Header> {
    let mut out: Vec<wit::Header> = Vec::new();
    let mut kept = false;
    for line in lines(section) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if kept && let Some(last) = out.last_mut() {
                last.value.push_str("\r\n");
                last.value.push_str(&String::from_utf8_lossy(line));
            }
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii_end(), &line[colon + 1..]);
        kept = keep(name);
        if kept {
            out.push(wit::Header {
                name: String::from_utf8_lossy(name).into_owned(),
                value: String::from_utf8_lossy(value.strip_prefix(b" ").unwrap_or(value))
                    .into_owned(),
            });
        }
    }
    out
}

/// The header section `section` (as received, up to and including its
/// blank line) without the fields named in `names` (case-insensitive), and
/// without the blank line; None when the section is incomplete (a header
/// section longer than Tern keeps), so nothing can be removed safely.
pub fn remove_fields(section: &[u8], names: &[String]) -> Option<Vec<u8>> {
    let fields = section.strip_suffix(b"\r\n")?;
    if !(fields.is_empty() || fields.ends_with(b"\r\n")) {
        return None;
    }
    let mut out = Vec::with_capacity(fields.len());
    let mut keep = true;
    for line in fields.split_inclusive(|&b| b == b'\n') {
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name);
            keep = !names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.trim_end()));
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    Some(out)
}

fn view<'a>(
    state: &'a PluginState,
    r: &Resource<MessageView>,
) -> wasmtime::Result<&'a MessageView> {
    Ok(state.table.get(r)?)
}

impl wit::HostMessage for PluginState {
    fn size(&mut self, r: Resource<MessageView>) -> wasmtime::Result<u64> {
        Ok(view(self, &r)?.size())
    }

    fn headers(&mut self, r: Resource<MessageView>) -> wasmtime::Result<Vec<wit::Header>> {
        Ok(view(self, &r)?.headers())
    }

    fn header(&mut self, r: Resource<MessageView>, name: String) -> wasmtime::Result<Vec<String>> {
        Ok(view(self, &r)?.header(&name))
    }

    async fn read(
        &mut self,
        r: Resource<MessageView>,
        offset: u64,
        len: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        let v = view(self, &r)?;
        Ok(v.read(offset, len).await)
    }

    fn arrival(&mut self, r: Resource<MessageView>) -> wasmtime::Result<wit::Arrival> {
        Ok(view(self, &r)?.arrival.clone())
    }

    fn drop(&mut self, r: Resource<MessageView>) -> wasmtime::Result<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

impl wit::Host for PluginState {}

#[cfg(test)]
mod tests {
    #[test]
    fn removes_fields_with_their_continuations() {
        let section = b"Subject: hi\r\nX-Spam: yes\r\n\tmore\r\nx-spam : again\r\nTo: a@b\r\n\r\n";
        let kept = super::remove_fields(section, &["X-Spam".into()]).unwrap();
        assert_eq!(kept, b"Subject: hi\r\nTo: a@b\r\n");
        assert_eq!(super::remove_fields(b"\r\n", &["X".into()]).unwrap(), b"");
        assert!(super::remove_fields(b"Subject: cut sh", &["X".into()]).is_none());
    }

    use super::*;
    use crate::testing::filter_view as view;

    #[test]
    fn lines_are_what_split_gives() {
        for section in [&b""[..], b"a", b"a\n", b"a\r\nb\n\nc", b"\n\n"] {
            let want: Vec<&[u8]> = section.split(|&b| b == b'\n').collect();
            assert_eq!(lines(section).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn field_values_are_what_parse_headers_has_for_the_name() {
        let section = b"Subject: one\r\n  folded\r\nnot a field\r\n\tstill subject\r\nsubject :two\r\nX-A: \r\nContent-Type: text/plain;\r\n charset=\"\xff\"\r\n\r\nSubject: body\r\n";
        for name in ["Subject", "SUBJECT", "x-a", "content-type", "To"] {
            let want: Vec<String> = super::parse_headers(section)
                .into_iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
                .collect();
            assert_eq!(super::field_values(section, name), want, "{name}");
        }
        assert_eq!(
            super::field_values(section, "subject"),
            ["one\r\n  folded\r\n\tstill subject", "two"]
        );
    }

    #[test]
    fn parses_folded_fields_and_stops_at_the_body() {
        let h = parse_headers(b"Subject: hello\r\n world\r\nX-A:b\r\n\r\nNot: a header\r\n");
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].name, "Subject");
        assert_eq!(h[0].value, "hello\r\n world");
        assert_eq!((h[1].name.as_str(), h[1].value.as_str()), ("X-A", "b"));
    }

    #[tokio::test]
    async fn a_view_keeps_its_tail_while_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut w = store.blob_writer(8);
        w.write(b"Subject: a\r\n\r\nfirst").await.unwrap();
        let held = view(&store, 8, w.tail(), b"", b"Subject: a\r\n\r\n");
        // The writer writes and patches while a view still holds the
        // buffer: the view reads what it was given, the writer has it all.
        w.write(b" second").await.unwrap();
        w.patch(0, b"S").await.unwrap();
        assert_eq!(held.read(0, 100).await, b"Subject: a\r\n\r\nfirst");
        assert_eq!(
            w.contents().await.unwrap(),
            b"Subject: a\r\n\r\nfirst second"
        );
    }

    #[tokio::test]
    async fn reads_across_prefix_chunks_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut w = store.blob_writer(7);
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        w.write(&body).await.unwrap();
        // Three chunks are in the store, the rest is still in the writer.
        let tail = w.tail();
        assert_eq!(
            (tail.at, tail.bytes.len()),
            (3 * 65_536, 200_000 - 3 * 65_536)
        );
        let v = view(&store, 7, tail, b"Received: x\r\n", b"");
        // The view shares the writer's buffer rather than copying it.
        assert!(Arc::ptr_eq(&v.tail, tail.bytes));
        assert_eq!(v.size(), 13 + 200_000);
        assert_eq!(v.read(0, 13).await, b"Received: x\r\n");
        assert_eq!(v.read(10, 6).await, [b'x', b'\r', b'\n', 0, 1, 2]);
        let all = v.read(13, u32::MAX).await;
        assert_eq!(all.len(), 200_000);
        assert_eq!(all, body);
        assert_eq!(v.read(13 + 65_530, 10).await, body[65_530..65_540]);
        // Across the end of the stored chunks into the writer's buffer.
        assert_eq!(v.read(13 + 196_600, 20).await, body[196_600..196_620]);
        assert_eq!(v.read(13 + 199_990, 100).await, body[199_990..]);
        assert!(v.read(13 + 200_000, 10).await.is_empty());
        // The header section left out (`skip`): offsets shift past it.
        let skipped = MessageView {
            skip: 100,
            ..v.clone()
        };
        assert_eq!(skipped.size(), 13 + 199_900);
        assert_eq!(skipped.read(13 + 196_500, 20).await, body[196_600..196_620]);
    }
}
