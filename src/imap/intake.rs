//! From a framed client message to something the session can run: the
//! rewrites for syntax imap-codec does not parse (`rewrite.rs`: extended
//! LIST, SEARCHRES's `$`, `append_syntax.rs`: MULTIAPPEND, CATENATE; `search.rs`: SEARCH/SORT RETURN), then imap-codec's
//! `CommandCodec`. Too-big literals and syntax errors become answers here.

use super::append_syntax::{CatPart, split_append};
use super::rewrite::{self, ListCommand, Saved};
use super::search::strip_search_return;
use super::session::{Outcome, Session};
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::DecodeMessageError;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::Command;
use std::borrow::Cow;

/// What a framed message turned out to be.
pub enum Decoded {
    Command(Command<'static>),
    /// An extended LIST (RFC 5258), which the codec does not parse.
    List(ListCommand),
    /// A MULTIAPPEND (RFC 3502) or CATENATE (RFC 4469): the single
    /// APPENDs it was split into, with any CATENATE parts.
    MultiAppend {
        tag: String,
        parts: Vec<(Command<'static>, Option<Vec<CatPart>>)>,
    },
    /// Answered without running anything: a syntax error the rewrites
    /// found, or `$` naming no messages.
    Answer {
        tag: String,
        outcome: Outcome,
    },
    /// The codec could not decode it (`too_big`: a literal over the limit).
    Failed {
        tag: String,
        too_big: bool,
    },
}

impl Session {
    /// Decodes the message the reader has framed.
    pub fn decode_framed(&mut self) -> Decoded {
        self.search_return = None;
        let frag = &self.reader.frag;
        let tag = || {
            frag.decode_tag()
                .map(|t| t.inner().to_string())
                .unwrap_or_else(|| "*".into())
        };
        let whole = !frag.is_max_message_size_exceeded() && !frag.is_message_poisoned();
        if !whole {
            return Decoded::Failed {
                tag: tag(),
                too_big: true,
            };
        }
        let original = frag.message_bytes();
        if let Some(list) = rewrite::parse_list(original) {
            return match list {
                Ok(list) => Decoded::List(list),
                Err(text) => Decoded::Answer {
                    tag: tag(),
                    outcome: Outcome::Bad(text),
                },
            };
        }
        if let Some(split) = split_append(original) {
            let parts = split.and_then(|pieces| {
                pieces
                    .into_iter()
                    .map(|p| match CommandCodec::default().decode(&p.single) {
                        Ok((&[], cmd)) => Ok((cmd.into_static(), p.catenate)),
                        _ => Err("malformed APPEND".to_string()),
                    })
                    .collect::<Result<Vec<_>, _>>()
            });
            return match parts {
                Ok(parts) => Decoded::MultiAppend { tag: tag(), parts },
                Err(text) => Decoded::Answer {
                    tag: tag(),
                    outcome: Outcome::Bad(text),
                },
            };
        }
        if let Some(tags) = rewrite::parse_cancel_update(original) {
            // CANCELUPDATE (RFC 5267 4.3) ends the named live searches.
            let outcome = match (tags, self.view.as_mut()) {
                (Some(tags), Some(view)) => {
                    view.live.retain(|l| !tags.contains(&l.tag));
                    Outcome::Ok("CANCELUPDATE completed".into())
                }
                (Some(_), None) => Outcome::Bad("CANCELUPDATE needs a selected mailbox".into()),
                (None, _) => Outcome::Bad("malformed CANCELUPDATE".into()),
            };
            return Decoded::Answer {
                tag: tag(),
                outcome,
            };
        }
        let mut message = Cow::Borrowed(original);
        if let Some(view) = &self.view {
            let uids = self.saved_result.clone().unwrap_or_default();
            let seqs: Vec<u32> = uids
                .iter()
                .filter_map(|&u| view.position(u))
                .map(|p| p as u32 + 1)
                .collect();
            let uids: Vec<u32> = uids
                .into_iter()
                .filter(|&u| view.position(u).is_some())
                .collect();
            match rewrite::substitute_saved(original, &uids, &seqs) {
                Saved::Absent => {}
                Saved::Replaced(bytes) => message = Cow::Owned(bytes),
                Saved::Empty { tag } => {
                    return Decoded::Answer {
                        tag,
                        outcome: Outcome::Ok("completed ($ names no messages)".into()),
                    };
                }
            }
        }
        let mut search_options = None;
        match strip_search_return(&message) {
            Some(Ok((bytes, options))) => {
                message = Cow::Owned(bytes);
                search_options = Some(options);
            }
            Some(Err(text)) => {
                return Decoded::Answer {
                    tag: tag(),
                    outcome: Outcome::Bad(text),
                };
            }
            None => {}
        }
        let decoded = match message {
            Cow::Owned(bytes) => match CommandCodec::default().decode(&bytes) {
                Ok((&[], cmd)) => Ok(cmd.into_static()),
                _ => Err(false),
            },
            Cow::Borrowed(_) => match frag.decode_message(&CommandCodec::default()) {
                Ok(cmd) => Ok(cmd.into_static()),
                Err(e) => Err(matches!(
                    e,
                    DecodeMessageError::MessageTooLong { .. }
                        | DecodeMessageError::MessagePoisoned { .. }
                )),
            },
        };
        match decoded {
            Ok(cmd) => {
                if let Some(options) = search_options {
                    self.search_return = Some((cmd.tag.inner().to_string(), options));
                }
                Decoded::Command(cmd)
            }
            Err(too_big) => Decoded::Failed {
                tag: tag(),
                too_big,
            },
        }
    }
}
