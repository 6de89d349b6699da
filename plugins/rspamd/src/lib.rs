//! Spam filtering with rspamd: at the end of data the message goes to
//! rspamd's normal worker (`POST /checkv2`) with the envelope, the client
//! address, HELO and login as request header fields, and rspamd's action
//! is applied:
//!
//! - `reject` → 550 5.7.1 (rspamd's SMTP message when it gives one),
//! - `soft reject` → 451 4.7.1, `greylist` → 451 4.7.1 "greylisted",
//! - `add header` → `X-Spam: Yes` and, by default, the Junk folder
//!   (`folder`) for the local recipients' copies
//!   (`verdicts::local_folder`), relayed copies going out as usual with the
//!   headers (`add_header = "tag"`: headers only),
//! - `rewrite subject` → the subject rspamd gives (else `***SPAM*** …`),
//! - `no action` → delivered.
//!
//! Every accepted message gets `X-Spam-Status: Yes|No, score=… required=…`
//! and `X-Spam-Symbols:`. rspamd unreachable or answering with an error
//! fails the call, so the `[[plugin]]` entry's `on_error` decides.

use serde_json::Value;
use std::sync::OnceLock;
use tern_plugin_http::{self as http, Url};
use tern_sdk::{
    Envelope, Filter, FilterAction, FilterVerdict, Message, Reply, Session, config, verdicts,
};

/// Longest `X-Spam-Symbols:` value.
const MAX_SYMBOLS: usize = 900;

struct Settings {
    url: Url,
    /// The folder of the local copies of mail rspamd tags (`add header`);
    /// None: tag only.
    junk: Option<String>,
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let url = config::get("url").unwrap_or_else(|| "http://127.0.0.1:11333/checkv2".into());
        let folder = config::get("folder").unwrap_or_else(|| "Junk".into());
        let junk = match config::get("add_header").as_deref() {
            None | Some("junk") => Some(folder),
            Some("tag") => None,
            Some(other) => return Err(format!("add_header {other:?}: want junk or tag")),
        };
        Ok(Settings {
            url: Url::parse(&url)?,
            junk,
        })
    })
}

/// rspamd's request header fields for this message.
fn fields(session: &Session, envelope: &Envelope) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("From", envelope.sender.clone()),
        ("IP", session.client.address.clone()),
    ];
    f.extend(
        envelope
            .recipients
            .iter()
            .map(|r| ("Rcpt", r.address.clone())),
    );
    if let Some(helo) = &session.helo {
        f.push(("Helo", helo.clone()));
    }
    if let Some(user) = &session.user {
        f.push(("User", user.clone()));
    }
    f
}

/// The whole message, read through the resource.
fn bytes_of(message: &Message) -> Vec<u8> {
    let size = message.size();
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    while (out.len() as u64) < size {
        let chunk = message.read(out.len() as u64, 64 * 1024);
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    out
}

/// What rspamd's answer means for the message: the verdict, and whether
/// the local copies go to the junk folder (`add header`).
fn verdict(
    answer: &Value,
    junk: bool,
    subject: Option<&str>,
) -> Result<(FilterVerdict, bool), String> {
    let action = answer
        .get("action")
        .and_then(Value::as_str)
        .ok_or("rspamd's answer has no action")?;
    let score = answer.get("score").and_then(Value::as_f64).unwrap_or(0.0);
    let required = answer
        .get("required_score")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let smtp_message = answer
        .pointer("/messages/smtp_message")
        .and_then(Value::as_str);
    let refusal =
        |code, enhanced, default: &str| Reply::new(code, enhanced, smtp_message.unwrap_or(default));
    let spam = action != "no action";
    let mut to_junk = false;
    let mut symbols: Vec<&String> = answer
        .get("symbols")
        .and_then(Value::as_object)
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    symbols.sort();
    let mut listed = String::new();
    for s in symbols {
        if listed.len() + s.len() + 2 > MAX_SYMBOLS {
            break;
        }
        if !listed.is_empty() {
            listed.push_str(", ");
        }
        listed.push_str(s);
    }
    let mut v = FilterVerdict::pass()
        .add_header(
            "X-Spam-Status",
            &format!(
                "{}, score={score:.2} required={required:.2} action={action}",
                if spam { "Yes" } else { "No" }
            ),
        )
        .add_header("X-Spam-Symbols", &listed);
    v.action = match action {
        "no action" => FilterAction::Continue,
        "reject" => FilterAction::Reject(refusal(550, "5.7.1", "Spam message rejected")),
        "soft reject" => FilterAction::Tempfail(refusal(451, "4.7.1", "Try again later")),
        "greylist" => {
            FilterAction::Tempfail(refusal(451, "4.7.1", "Greylisted, please try again later"))
        }
        "add header" => {
            v = v.add_header("X-Spam", "Yes");
            to_junk = junk;
            FilterAction::Continue
        }
        "rewrite subject" => {
            let new = answer
                .get("subject")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("***SPAM*** {}", subject.unwrap_or("").trim()));
            v = v
                .add_header("X-Spam", "Yes")
                .remove_header("Subject")
                .add_header("Subject", &new);
            FilterAction::Continue
        }
        other => return Err(format!("rspamd answered an unknown action {other:?}")),
    };
    Ok((v, to_junk))
}

struct Rspamd;

#[tern_sdk::hooks]
impl Filter for Rspamd {
    fn on_data(session: Session, envelope: Envelope, message: &Message) -> FilterVerdict {
        let s = match settings() {
            Ok(s) => s,
            Err(e) => panic!("rspamd: bad config: {e}"),
        };
        let answer =
            http::post(&s.url, &fields(&session, &envelope), &bytes_of(message)).and_then(|b| {
                serde_json::from_slice::<Value>(&b).map_err(|e| format!("answer is not JSON: {e}"))
            });
        let subject = message.header("Subject").into_iter().next();
        match answer.and_then(|a| verdict(&a, s.junk.is_some(), subject.as_deref())) {
            Ok((v, to_junk)) => {
                if let (true, Some(folder)) = (to_junk, &s.junk) {
                    // Local copies only: relayed ones go out with the headers.
                    verdicts::local_folder(folder);
                }
                v
            }
            Err(e) => panic!("rspamd at {}: {e}", s.url),
        }
    }
}

tern_sdk::export!(Rspamd: Filter);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_map() {
        let a = |action: &str| json!({"action": action, "score": 7.5, "required_score": 15.0, "symbols": {"B": {}, "A": {}}});
        let v = verdict(&a("reject"), true, None).unwrap().0;
        assert!(matches!(v.action, FilterAction::Reject(ref r) if r.code == 550));
        assert!(matches!(
            verdict(&a("soft reject"), true, None).unwrap().0.action,
            FilterAction::Tempfail(_)
        ));
        assert!(
            matches!(verdict(&a("greylist"), true, None).unwrap().0.action, FilterAction::Tempfail(ref r) if r.text.contains("Greylisted"))
        );
        let (v, junk) = verdict(&a("add header"), true, None).unwrap();
        assert!(matches!(v.action, FilterAction::Continue) && junk);
        let (v, junk) = verdict(&a("add header"), false, None).unwrap();
        assert!(matches!(v.action, FilterAction::Continue) && !junk);
        let (v, junk) = verdict(&a("rewrite subject"), true, Some(" hi")).unwrap();
        assert!(!junk);
        assert!(v.edits.iter().any(|e| matches!(e, tern_sdk::HeaderEdit::Add(h) if h.name == "Subject" && h.value == "***SPAM*** hi")));
        let v = verdict(&a("no action"), true, None).unwrap().0;
        assert!(matches!(v.action, FilterAction::Continue));
        assert!(
            v.edits
                .iter()
                .any(|e| matches!(e, tern_sdk::HeaderEdit::Add(h) if h.value == "A, B"))
        );
        assert!(verdict(&json!({}), true, None).is_err());
    }
}
