//! MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) once split by
//! `append_syntax.rs`: the messages of one APPEND are added together by
//! `Session::append_all` (all or none), and a CATENATE message is first
//! assembled from its TEXT parts and the messages or sections its IMAP
//! URLs (RFC 5092) name: `/<mailbox>[;UIDVALIDITY=n]/;UID=n[/;SECTION=s]`
//! (an `imap://host` prefix allowed) or `;UID=n...` relative to the
//! selected folder, always the logged-in user's own folders. A URL that
//! cannot be resolved answers `NO [BADURL url]`; `;PARTIAL=` cuts a byte
//! range; URLAUTH URLs are refused (URLAUTH is not announced).

use super::append_syntax::CatPart;
use super::sections::{load, section_bytes};
use super::session::{Outcome, Session};
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Literal, LiteralMode};
use imap_codec::imap_types::extensions::binary::{Literal8, LiteralOrLiteral8};
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use std::io;

/// What an IMAP URL names.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    /// `None`: the selected folder.
    mailbox: Option<String>,
    uidvalidity: Option<u32>,
    uid: u32,
    section: Option<String>,
    /// `;PARTIAL=offset[.length]` (RFC 5092 section 3): a byte range.
    partial: Option<(usize, Option<usize>)>,
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_url(url: &str) -> Option<Url> {
    let mut rest = url;
    if rest.len() > 7 && rest[..7].eq_ignore_ascii_case("imap://") {
        rest = &rest[7 + rest[7..].find('/')?..];
    }
    let mailbox = match rest.strip_prefix('/') {
        Some(path) => {
            let end = path.find(';').unwrap_or(path.len());
            let name = percent_decode(path[..end].trim_end_matches('/'))?;
            rest = &path[end..];
            Some(name)
        }
        None => None,
    };
    let mut url = Url {
        mailbox,
        uidvalidity: None,
        uid: 0,
        section: None,
        partial: None,
    };
    for param in rest.split(';').filter(|p| !p.is_empty()) {
        let param = param.trim_end_matches('/');
        let (key, value) = param.split_once('=')?;
        match key.to_ascii_uppercase().as_str() {
            "UIDVALIDITY" => url.uidvalidity = Some(value.parse().ok()?),
            "UID" => url.uid = value.parse().ok()?,
            "SECTION" => url.section = Some(percent_decode(value)?),
            "PARTIAL" => {
                url.partial = Some(match value.split_once('.') {
                    Some((offset, length)) => (offset.parse().ok()?, Some(length.parse().ok()?)),
                    None => (value.parse().ok()?, None),
                })
            }
            _ => return None,
        }
    }
    (url.uid > 0).then_some(url)
}

/// A section spec as imap-codec reads it in `BODY[...]`.
fn parse_section(spec: &str) -> Option<Option<Section<'static>>> {
    let cmd = format!("x FETCH 1 BODY.PEEK[{spec}]\r\n");
    let (_, cmd) = CommandCodec::default().decode(cmd.as_bytes()).ok()?;
    match cmd.into_static().body {
        CommandBody::Fetch {
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(items),
            ..
        } => items.into_iter().find_map(|i| match i {
            MessageDataItemName::BodyExt { section, .. } => Some(section),
            _ => None,
        }),
        _ => None,
    }
}

impl Session {
    /// Runs the APPENDs a MULTIAPPEND or CATENATE was split into as one.
    pub async fn multi_append(
        &mut self,
        parts: Vec<(Command<'static>, Option<Vec<CatPart>>)>,
    ) -> io::Result<Outcome> {
        // A missing target folder is TRYCREATE before any URL is looked at.
        if let Some((first, _)) = parts.first()
            && let CommandBody::Append { mailbox, .. } = &first.body
        {
            let user = self.account();
            match self.folder_name(mailbox) {
                Ok(name) => match self.ctx.store.folder(&user, &name).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Ok(Outcome::No("[TRYCREATE] no such folder".into())),
                    Err(e) => return Ok(self.store_failure(e)),
                },
                Err(e) => return Ok(Outcome::No(format!("[CANNOT] {e}"))),
            }
        }
        let mut folder = None;
        let mut items = Vec::with_capacity(parts.len());
        for (part, catenate) in parts {
            let CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } = part.body
            else {
                return Ok(Outcome::Bad("malformed APPEND".into()));
            };
            let message = match catenate {
                None => message,
                Some(cat) => match self.catenate(&cat).await {
                    Ok(bytes) => match Literal::try_from(bytes.as_slice()) {
                        Ok(l) => LiteralOrLiteral8::Literal(l.into_static()),
                        Err(_) => LiteralOrLiteral8::Literal8(Literal8 {
                            data: bytes.into(),
                            mode: LiteralMode::Sync,
                        }),
                    },
                    Err(outcome) => return Ok(outcome),
                },
            };
            folder.get_or_insert(mailbox);
            items.push((flags, date, message));
        }
        match folder {
            Some(mailbox) => self.append_all(mailbox, items).await,
            None => Ok(Outcome::Bad("malformed APPEND".into())),
        }
    }

    /// A CATENATE message's bytes.
    async fn catenate(&self, parts: &[CatPart]) -> Result<Vec<u8>, Outcome> {
        let limit = self.ctx.config.limits.max_message_size.0;
        let mut out = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(t) => out.extend_from_slice(t),
                CatPart::Url(u) => out.extend(self.url_bytes(u).await?),
            }
            if out.len() as u64 > limit {
                return Err(Outcome::No("[TOOBIG] message too big".into()));
            }
        }
        Ok(out)
    }

    async fn url_bytes(&self, raw: &str) -> Result<Vec<u8>, Outcome> {
        let bad = || {
            let mut quoted = Vec::new();
            super::wire::string(&mut quoted, raw.as_bytes());
            Outcome::No(format!(
                "[BADURL {}] cannot use this URL",
                String::from_utf8_lossy(&quoted)
            ))
        };
        let url = parse_url(raw).ok_or_else(bad)?;
        let user = self.account();
        let folder = match url.mailbox {
            Some(name) => name,
            None => self
                .view
                .as_ref()
                .map(|v| v.folder.clone())
                .ok_or_else(bad)?,
        };
        let store = &self.ctx.store;
        let info = store
            .folder(&user, &folder)
            .await
            .ok()
            .flatten()
            .ok_or_else(bad)?;
        if url.uidvalidity.is_some_and(|v| v != info.uidvalidity) {
            return Err(bad());
        }
        let meta = store
            .message(&user, &info.name, url.uid)
            .await
            .ok()
            .flatten()
            .ok_or_else(bad)?;
        let bytes = load(store, &meta, false).await.map_err(|_| bad())?;
        let bytes = match url.section {
            None => bytes,
            Some(spec) => {
                let section = parse_section(&spec).ok_or_else(bad)?;
                section_bytes(&bytes, &section)
            }
        };
        Ok(match url.partial {
            None => bytes,
            Some((offset, length)) => {
                let start = offset.min(bytes.len());
                let end = length.map_or(bytes.len(), |l| start.saturating_add(l).min(bytes.len()));
                bytes[start..end].to_vec()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("/INBOX;UIDVALIDITY=9/;UID=20/;SECTION=1.MIME"),
            Some(Url {
                mailbox: Some("INBOX".into()),
                uidvalidity: Some(9),
                uid: 20,
                section: Some("1.MIME".into()),
                partial: None,
            })
        );
        assert_eq!(
            parse_url("imap://bob@mx.example.test/Sent%20Items/;UID=3"),
            Some(Url {
                mailbox: Some("Sent Items".into()),
                uidvalidity: None,
                uid: 3,
                section: None,
                partial: None,
            })
        );
        assert_eq!(parse_url(";UID=4/;SECTION=TEXT").map(|u| u.uid), Some(4));
        assert!(parse_url("/INBOX;UID=4;URLAUTH=anonymous:internal:x").is_none());
        assert!(parse_url("/INBOX").is_none());
        assert_eq!(
            parse_url("/INBOX/;UID=2/;PARTIAL=100.5").and_then(|u| u.partial),
            Some((100, Some(5)))
        );
        assert!(parse_section("HEADER").is_some());
        assert!(parse_section("1.2.TEXT").is_some());
        assert!(parse_section("BOGUS").is_none());
    }
}
