//! Where FETCH data comes from: how much of a message an item needs (none,
//! the header block, or all of it), reading just that much from the store,
//! and the bytes and label of BODY[section] (HEADER, HEADER.FIELDS (.NOT),
//! TEXT, MIME and part numbers, into nested messages).

use super::render;
use crate::store::{MessageMeta, Store, StoreError};
use imap_codec::imap_types::fetch::{MessageDataItemName, Section};

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
pub enum Need {
    Nothing,
    Header,
    Full,
}

pub fn need_of(item: &MessageDataItemName<'_>) -> Need {
    match item {
        MessageDataItemName::Envelope | MessageDataItemName::Rfc822Header => Need::Header,
        MessageDataItemName::BodyExt {
            section:
                Some(
                    Section::Header(None)
                    | Section::HeaderFields(None, _)
                    | Section::HeaderFieldsNot(None, _),
                ),
            ..
        } => Need::Header,
        MessageDataItemName::Body
        | MessageDataItemName::BodyStructure
        | MessageDataItemName::Rfc822
        | MessageDataItemName::Rfc822Text
        | MessageDataItemName::BodyExt { .. }
        | MessageDataItemName::Binary { .. }
        | MessageDataItemName::BinarySize { .. } => Need::Full,
        _ => Need::Nothing,
    }
}

/// Reads as much of a message as `need` asks.
pub async fn load(
    store: &Store,
    meta: &MessageMeta,
    need_header_only: bool,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let mut parts = store.blob_parts(meta.blob).await?;
    while let Some(part) = parts.next_part().await {
        out.extend_from_slice(&part?);
        if need_header_only && render::has_header_end(&out) {
            break;
        }
    }
    Ok(out)
}

pub fn section_label(section: &Option<Section<'_>>) -> String {
    let part = |p: &Option<imap_codec::imap_types::fetch::Part>| match p {
        Some(p) => format!(
            "{}.",
            p.0.as_ref()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(".")
        ),
        None => String::new(),
    };
    let names = |n: &[imap_codec::imap_types::core::AString<'_>]| {
        n.iter()
            .map(|a| String::from_utf8_lossy(a.as_ref()).to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match section {
        None => String::new(),
        Some(Section::Part(p)) => {
            p.0.as_ref()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(".")
        }
        Some(Section::Header(p)) => format!("{}HEADER", part(p)),
        Some(Section::HeaderFields(p, n)) => {
            format!("{}HEADER.FIELDS ({})", part(p), names(n.as_ref()))
        }
        Some(Section::HeaderFieldsNot(p, n)) => {
            format!("{}HEADER.FIELDS.NOT ({})", part(p), names(n.as_ref()))
        }
        Some(Section::Text(p)) => format!("{}TEXT", part(p)),
        Some(Section::Mime(p)) => format!(
            "{}.MIME",
            p.0.as_ref()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(".")
        ),
    }
}

/// The bytes of BODY[section]; an empty result for parts that do not exist.
pub fn section_bytes(bytes: &[u8], section: &Option<Section<'_>>) -> Vec<u8> {
    let names = |n: &[imap_codec::imap_types::core::AString<'_>]| {
        n.iter().map(|a| a.as_ref().to_vec()).collect::<Vec<_>>()
    };
    let path = |p: &imap_codec::imap_types::fetch::Part| {
        p.0.as_ref().iter().map(|n| n.get()).collect::<Vec<u32>>()
    };
    let block = render::header_block(bytes);
    match section {
        None => return bytes.to_vec(),
        Some(Section::Header(None)) => return block.to_vec(),
        Some(Section::HeaderFields(None, n)) => {
            return render::select_fields(block, &names(n.as_ref()), false);
        }
        Some(Section::HeaderFieldsNot(None, n)) => {
            return render::select_fields(block, &names(n.as_ref()), true);
        }
        Some(Section::Text(None)) => return bytes[block.len()..].to_vec(),
        _ => {}
    }
    let Some(msg) = render::parse(bytes) else {
        return Vec::new();
    };
    let (p, inner) = match section {
        Some(Section::Part(p)) | Some(Section::Mime(p)) => (p, false),
        Some(
            Section::Header(Some(p))
            | Section::HeaderFields(Some(p), _)
            | Section::HeaderFieldsNot(Some(p), _)
            | Section::Text(Some(p)),
        ) => (p, true),
        _ => return Vec::new(),
    };
    let Some(located) = render::locate(&msg, &path(p)) else {
        return Vec::new();
    };
    if !inner {
        let part = located.part;
        return match section {
            Some(Section::Mime(_)) => {
                render::slice(located.raw, part.offset_header, part.offset_body).to_vec()
            }
            _ => render::slice(located.raw, part.offset_body, part.offset_end).to_vec(),
        };
    }
    let Some((raw, root)) = render::inner_message(&located) else {
        return Vec::new();
    };
    let header = render::slice(raw, root.offset_header, root.offset_body);
    match section {
        Some(Section::Header(_)) => header.to_vec(),
        Some(Section::HeaderFields(_, n)) => {
            render::select_fields(header, &names(n.as_ref()), false)
        }
        Some(Section::HeaderFieldsNot(_, n)) => {
            render::select_fields(header, &names(n.as_ref()), true)
        }
        // The nested message's text runs to the end of the enclosing part
        // (mail-parser ends a multipart root before its epilogue).
        _ => {
            let end = if std::ptr::eq(raw, located.raw) {
                located.part.offset_end
            } else {
                u32::try_from(raw.len()).unwrap_or(u32::MAX)
            };
            render::slice(raw, root.offset_body, end).to_vec()
        }
    }
}
