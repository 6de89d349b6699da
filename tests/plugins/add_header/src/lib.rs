//! A filter: adds `X-Tern-Filter` with what it read of the message (its
//! size, its number of header fields, its Subject). A Subject of
//! `discard`, `quarantine` or `reject` asks for that action; `strip` asks
//! for every `X-Strip-Me` field to be removed.

use tern_sdk::{Envelope, Filter, FilterAction, FilterVerdict, Message, Reply, Session, config};

struct AddHeader;

#[tern_sdk::hooks]
impl Filter for AddHeader {
    fn on_data(_session: Session, envelope: Envelope, message: &Message) -> FilterVerdict {
        let headers = message.headers();
        let subject = message
            .header("subject")
            .into_iter()
            .next()
            .unwrap_or_default();
        let tag = config::get("tag").unwrap_or_else(|| "add_header".to_string());
        let value = format!(
            "{tag}; size={}; fields={}; subject={subject}; rcpts={}",
            message.size(),
            headers.len(),
            envelope.recipients.len()
        );
        let mut verdict = FilterVerdict::pass().add_header("X-Tern-Filter", &value);
        if subject.trim() == "strip" {
            verdict = verdict.remove_header("X-Strip-Me");
        }
        verdict.action = match subject.trim() {
            "discard" => FilterAction::Discard,
            "quarantine" => FilterAction::Quarantine("looks odd".into()),
            "reject" => FilterAction::Reject(Reply::new(554, "5.7.1", "rejected by add_header")),
            "bad reply" => {
                FilterAction::Reject(Reply::new(250, "2.0.0", "all good\r\n250 smuggled"))
            }
            _ => FilterAction::Continue,
        };
        verdict
    }
}

tern_sdk::export!(AddHeader: Filter);
