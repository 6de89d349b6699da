//! FETCH on the selected folder, with CONDSTORE's CHANGEDSINCE and
//! BINARY's items: the messages asked for, how much of each is read
//! (`sections.rs` decides), and each message's response rendered.

use super::binary::{self, UnknownCte};
use super::render;
use super::sections::{Need, load, need_of, section_bytes, section_label};
use super::session::{Outcome, Session};
use super::structures::Structures;
use super::view::View;
use crate::store::{FlagOp, MessageMeta};
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::sequence::SequenceSet;
use std::io;
use std::num::NonZeroU32;

fn literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

/// BODY and BODYSTRUCTURE of one message as already rendered (index:
/// extended), taken from `Structures` once per message.
type Rendered = [Option<std::sync::Arc<[u8]>>; 2];

/// The FETCH response for one message. `bytes` holds the whole message
/// unless every whole-message item is in `rendered`.
#[allow(clippy::too_many_arguments)]
fn render_message(
    out: &mut Vec<u8>,
    seq: usize,
    view: &View,
    meta: &MessageMeta,
    items: &[MessageDataItemName<'_>],
    bytes: &[u8],
    modseq: bool,
    (rendered, structures): (&Rendered, &Structures),
) -> Result<(), UnknownCte> {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    let mut first = true;
    let mut parsed = None;
    for item in items {
        if !first {
            out.push(b' ');
        }
        first = false;
        match item {
            MessageDataItemName::Uid => {
                out.extend_from_slice(format!("UID {}", meta.uid).as_bytes())
            }
            MessageDataItemName::Flags => view.flags(out, meta),
            MessageDataItemName::InternalDate => {
                let date =
                    chrono::DateTime::from_timestamp(meta.internal_date, 0).unwrap_or_default();
                out.extend_from_slice(
                    format!(
                        "INTERNALDATE \"{}\"",
                        date.format("%d-%b-%Y %H:%M:%S +0000")
                    )
                    .as_bytes(),
                );
            }
            MessageDataItemName::Rfc822Size => {
                out.extend_from_slice(format!("RFC822.SIZE {}", meta.size).as_bytes())
            }
            MessageDataItemName::ModSeq => {
                out.extend_from_slice(format!("MODSEQ ({})", meta.modseq).as_bytes())
            }
            MessageDataItemName::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                render::envelope(out, render::header_block(bytes));
            }
            MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
                let extended = matches!(item, MessageDataItemName::BodyStructure);
                out.extend_from_slice(if extended {
                    b"BODYSTRUCTURE "
                } else {
                    b"BODY "
                });
                if let Some(done) = &rendered[usize::from(extended)] {
                    out.extend_from_slice(done);
                    continue;
                }
                let start = out.len();
                match parsed.get_or_insert_with(|| render::parse(bytes)) {
                    Some(msg) => render::body_structure(out, msg, extended),
                    None => out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)"),
                }
                structures.put(meta.blob, extended, &out[start..]);
            }
            MessageDataItemName::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                literal(out, bytes);
            }
            MessageDataItemName::Rfc822Header => {
                out.extend_from_slice(b"RFC822.HEADER ");
                literal(out, render::header_block(bytes));
            }
            MessageDataItemName::Rfc822Text => {
                out.extend_from_slice(b"RFC822.TEXT ");
                literal(out, &bytes[render::header_block(bytes).len()..]);
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let data = section_bytes(bytes, section);
                out.extend_from_slice(format!("BODY[{}]", section_label(section)).as_bytes());
                section_data(out, &data, *partial, literal);
            }
            MessageDataItemName::Binary {
                section, partial, ..
            } => {
                let data = binary::section(bytes, section)?;
                out.extend_from_slice(format!("BINARY[{}]", part_label(section)).as_bytes());
                section_data(out, &data, *partial, binary_literal);
            }
            MessageDataItemName::BinarySize { section } => {
                let size = binary::section(bytes, section)?.len();
                out.extend_from_slice(
                    format!("BINARY.SIZE[{}] {size}", part_label(section)).as_bytes(),
                );
            }
        }
    }
    if modseq
        && !items
            .iter()
            .any(|i| matches!(i, MessageDataItemName::ModSeq))
    {
        out.extend_from_slice(format!(" MODSEQ ({})", meta.modseq).as_bytes());
    }
    out.extend_from_slice(b")\r\n");
    Ok(())
}

/// A part number as in `BINARY[1.2]`.
fn part_label(section: &[NonZeroU32]) -> String {
    let numbers: Vec<String> = section.iter().map(|n| n.to_string()).collect();
    numbers.join(".")
}

/// A section's data after its label: with a partial `<origin.count>`,
/// `<origin> ` and the bytes from `origin` (as many as there are, up to
/// `count`); else a space and all of it. `literal` writes the bytes.
fn section_data(
    out: &mut Vec<u8>,
    data: &[u8],
    partial: Option<(u32, NonZeroU32)>,
    literal: fn(&mut Vec<u8>, &[u8]),
) {
    match partial {
        Some((origin, count)) => {
            let start = (origin as usize).min(data.len());
            let end = start.saturating_add(count.get() as usize).min(data.len());
            out.extend_from_slice(format!("<{origin}> ").as_bytes());
            literal(out, &data[start..end]);
        }
        None => {
            out.push(b' ');
            literal(out, data);
        }
    }
}

/// BINARY data: a literal8 when it holds NUL (RFC 3516 4.3), else a literal.
fn binary_literal(out: &mut Vec<u8>, data: &[u8]) {
    if data.contains(&0) {
        out.push(b'~');
    }
    literal(out, data);
}
impl Session {
    pub async fn fetch(
        &mut self,
        set: SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        modifiers: Vec<FetchModifier>,
    ) -> io::Result<Outcome> {
        let mut items = match names {
            MacroOrMessageDataItemNames::Macro(Macro::Fast) => {
                vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                ]
            }
            MacroOrMessageDataItemNames::Macro(Macro::All) => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
                MessageDataItemName::Envelope,
            ],
            MacroOrMessageDataItemNames::Macro(Macro::Full) => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
                MessageDataItemName::Envelope,
                MessageDataItemName::Body,
            ],
            MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
            MacroOrMessageDataItemNames::Macro(_) => {
                return Ok(Outcome::Bad("unknown FETCH macro".into()));
            }
        };
        let mut changed_since = None;
        let mut vanished = false;
        for m in &modifiers {
            match m {
                FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        // RFC 7162 3.2.6: VANISHED only in UID FETCH with CHANGEDSINCE,
        // after ENABLE QRESYNC.
        if vanished && (!uid || changed_since.is_none() || !self.qresync) {
            return Ok(Outcome::Bad(
                "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC".into(),
            ));
        }
        if changed_since.is_some()
            || items
                .iter()
                .any(|i| matches!(i, MessageDataItemName::ModSeq))
        {
            self.condstore = true;
        }
        if uid && !items.iter().any(|i| matches!(i, MessageDataItemName::Uid)) {
            items.insert(0, MessageDataItemName::Uid);
        }
        let need = items.iter().map(need_of).max().unwrap_or(Need::Nothing);
        // What is needed when BODY and BODYSTRUCTURE come from the cache.
        let is_structure = |i: &MessageDataItemName<'_>| {
            matches!(
                i,
                MessageDataItemName::Body | MessageDataItemName::BodyStructure
            )
        };
        let need_besides = items
            .iter()
            .filter(|i| !is_structure(i))
            .map(need_of)
            .max()
            .unwrap_or(Need::Nothing);
        let wanted = [false, true].map(|extended| {
            items.iter().any(|i| match i {
                MessageDataItemName::Body => !extended,
                MessageDataItemName::BodyStructure => extended,
                _ => false,
            })
        });
        let marks_seen = items.iter().any(|i| {
            matches!(
                i,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Binary { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        });
        let user = self.account();
        let store = self.ctx.store.clone();
        let condstore = self.condstore;
        let Some(view) = self.view.as_mut() else {
            return Ok(Outcome::Bad("no folder selected".into()));
        };
        let positions = match view.resolve(&set, uid) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::Bad(e.to_string())),
        };
        if let (true, Some(since)) = (vanished, changed_since) {
            let gone = store
                .vanished_since(&user, &view.folder, since)
                .await
                .unwrap_or(None);
            let mut out = Vec::new();
            super::qresync::vanished_earlier(&mut out, view, gone, &set);
            self.conn.write_buffered(&out).await?;
        }
        let Some(view) = self.view.as_mut() else {
            return Ok(Outcome::Bad("no folder selected".into()));
        };
        let positions: Vec<usize> = positions
            .into_iter()
            .filter(|&p| changed_since.is_none_or(|c| view.messages[p].modseq > c))
            .collect();
        if marks_seen && !view.read_only {
            let unseen: Vec<u32> = positions
                .iter()
                .map(|&p| &view.messages[p])
                .filter(|m| !m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let op = FlagOp::Add(vec!["\\Seen".to_string()]);
                match store
                    .store_flags(&user, &view.folder, &unseen, &op, None)
                    .await
                {
                    Ok((done, _)) => {
                        for (uid, modseq, flags) in done {
                            if let Some(p) = view.position(uid) {
                                view.messages[p].flags = flags;
                                view.messages[p].modseq = modseq;
                            }
                        }
                        if !items
                            .iter()
                            .any(|i| matches!(i, MessageDataItemName::Flags))
                        {
                            items.push(MessageDataItemName::Flags);
                        }
                    }
                    Err(e) => tracing::error!("cannot set \\Seen: {e}"),
                }
            }
        }
        let mut out = Vec::with_capacity(64 * 1024);
        let mut missing = false;
        let structures = super::structures::of(&store);
        for &p in &positions {
            let meta = &view.messages[p];
            let rendered: Rendered = [0, 1].map(|i| {
                wanted[i]
                    .then(|| structures.get(meta.blob, i == 1))
                    .flatten()
            });
            let need = if (0..2).all(|i| !wanted[i] || rendered[i].is_some()) {
                need_besides
            } else {
                need
            };
            let bytes = match need {
                Need::Nothing => Vec::new(),
                need => match load(&store, meta, need == Need::Header).await {
                    Ok(b) => b,
                    Err(_) => {
                        // Expunged by another session; reported at the next chance.
                        missing = true;
                        continue;
                    }
                },
            };
            let start = out.len();
            let rendered = render_message(
                &mut out,
                p + 1,
                view,
                meta,
                &items,
                &bytes,
                condstore && changed_since.is_some(),
                (&rendered, &structures),
            );
            if rendered.is_err() {
                out.truncate(start);
                self.conn.write_buffered(&out).await?;
                return Ok(Outcome::No(
                    "[UNKNOWN-CTE] a part has a content transfer encoding this server cannot decode"
                        .into(),
                ));
            }
            if out.len() >= 64 * 1024 {
                self.conn.write_buffered(&out).await?;
                out.clear();
            }
        }
        self.conn.write_buffered(&out).await?;
        if missing {
            // RFC 5530: the rest was fetched; the client will see the
            // EXPUNGE at the next point it may be sent.
            return Ok(Outcome::Ok(
                "[EXPUNGEISSUED] some messages were expunged meanwhile".into(),
            ));
        }
        Ok(Outcome::Ok("FETCH completed".into()))
    }
}
