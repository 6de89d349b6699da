//! A filter that asks an HTTP service: at the end of data it POSTs JSON
//! (the client, HELO, login, envelope, what SPF/DKIM/DMARC found, the
//! decisions made about the message so far (`verdicts::so_far`), and with
//! `headers = "yes"` the message's header fields) to `url` and applies
//! the verdict in the JSON answer (`action`: continue, accept, reject,
//! tempfail, discard, junk or quarantine; `code`, `enhanced`, `text` for
//! refusals, `folder` for junk, `reason` for quarantine, `add_headers` to
//! add fields). The request goes through WASI HTTP (`post.rs`) under the
//! entry's `http` grant, so `https://` endpoints are verified by the host;
//! the service unreachable, a status other than 2xx or an answer that is
//! not such JSON fails the call and the `[[plugin]]` entry's `on_error`
//! decides.

mod post;

use post::Url;
use serde_json::{Value, json};
use std::sync::OnceLock;
use tern_plugin_support::parse_bool;
use tern_sdk::{
    AuthOutcome, Envelope, Filter, FilterAction, FilterVerdict, Message, Reply, Session, config,
    verdicts,
};

struct Settings {
    url: Url,
    headers: bool,
}

fn settings() -> &'static Result<Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let url = config::get("url").ok_or("url is not set")?;
        Ok(Settings {
            url: Url::parse(&url)?,
            headers: config::get("headers")
                .map(|h| parse_bool(&h))
                .transpose()?
                .unwrap_or(false),
        })
    })
}

fn outcome(o: AuthOutcome) -> &'static str {
    match o {
        AuthOutcome::Pass => "pass",
        AuthOutcome::Fail => "fail",
        AuthOutcome::Softfail => "softfail",
        AuthOutcome::Neutral => "neutral",
        AuthOutcome::None => "none",
        AuthOutcome::Temperror => "temperror",
        AuthOutcome::Permerror => "permerror",
    }
}

/// The JSON the service gets.
fn request(session: &Session, envelope: &Envelope, message: &Message, headers: bool) -> Value {
    let auth = envelope.auth.as_ref().map(|a| {
        json!({
            "spf": a.spf_mail_from.as_ref().map(|s| outcome(s.outcome)),
            "dkim": a.dkim.iter().map(|d| json!({"domain": d.domain, "result": outcome(d.outcome)})).collect::<Vec<_>>(),
            "dmarc": outcome(a.dmarc.outcome),
            "header": a.header,
        })
    });
    let mut body = json!({
        "client": {
            "address": session.client.address,
            "helo": session.helo,
            "tls": session.tls,
            "login": session.user,
            "trusted": session.client.trusted,
        },
        "envelope": {
            "sender": envelope.sender,
            "recipients": envelope.recipients.iter().map(|r| r.address.clone()).collect::<Vec<_>>(),
        },
        "auth": auth,
        "verdicts": verdicts::so_far().into_iter().map(|d| json!({
            "stage": d.stage,
            "by": d.by,
            "verdict": d.verdict,
            "reply": d.reply,
            "rcpt": d.rcpt,
            "detail": d.detail,
        })).collect::<Vec<_>>(),
        "size": message.size(),
    });
    if headers {
        body["headers"] = message
            .headers()
            .into_iter()
            .map(|h| json!([h.name, h.value]))
            .collect();
    }
    body
}

/// The verdict in the service's answer, and the folder for the local
/// copies when it says `junk`.
fn verdict(answer: &Value) -> Result<(FilterVerdict, Option<String>), String> {
    let text = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_string);
    let reply = |default_code: u16, default_enhanced: &str, default_text: &str| {
        Reply::new(
            answer
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(default_code),
            &text("enhanced").unwrap_or_else(|| default_enhanced.into()),
            &text("text").unwrap_or_else(|| default_text.into()),
        )
    };
    let mut folder = None;
    let action = match text("action").as_deref().unwrap_or("continue") {
        "continue" => FilterAction::Continue,
        "accept" => FilterAction::Accept,
        "reject" => FilterAction::Reject(reply(550, "5.7.1", "Message refused by policy")),
        "tempfail" => FilterAction::Tempfail(reply(451, "4.7.1", "Try again later")),
        "discard" => FilterAction::Discard,
        "junk" => {
            folder = Some(text("folder").unwrap_or_else(|| "Junk".into()));
            FilterAction::Continue
        }
        "quarantine" => {
            FilterAction::Quarantine(text("reason").unwrap_or_else(|| "webhook".into()))
        }
        other => return Err(format!("unknown action {other:?}")),
    };
    let mut out = FilterVerdict {
        action,
        edits: Vec::new(),
    };
    for h in answer
        .get("add_headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(value)) = (
            h.get("name").and_then(Value::as_str),
            h.get("value").and_then(Value::as_str),
        ) {
            out = out.add_header(name, value);
        }
    }
    Ok((out, folder))
}

struct Webhook;

#[tern_sdk::hooks]
impl Filter for Webhook {
    fn on_data(session: Session, envelope: Envelope, message: &Message) -> FilterVerdict {
        let s = match settings() {
            Ok(s) => s,
            Err(e) => panic!("webhook: bad config: {e}"),
        };
        let body = request(&session, &envelope, message, s.headers).to_string();
        let answer = post::post(&s.url, "application/json", body.as_bytes())
            .and_then(|b| {
                serde_json::from_slice::<Value>(&b).map_err(|e| format!("answer is not JSON: {e}"))
            })
            .and_then(|v| verdict(&v));
        match answer {
            Ok((v, folder)) => {
                if let Some(folder) = folder {
                    // Local copies only: relayed ones go out as usual.
                    verdicts::local_folder(&folder);
                }
                v
            }
            Err(e) => panic!("webhook {}: {e}", s.url),
        }
    }
}

tern_sdk::export!(Webhook: Filter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_verdicts() {
        let v = verdict(&json!({"action": "reject", "code": 554, "text": "no"}))
            .unwrap()
            .0;
        assert!(
            matches!(v.action, FilterAction::Reject(ref r) if r.code == 554 && r.enhanced == "5.7.1" && r.text == "no")
        );
        let (v, folder) = verdict(&json!({"action": "quarantine", "reason": "spam", "add_headers": [{"name": "X-A", "value": "1"}]})).unwrap();
        assert_eq!(folder, None);
        assert!(matches!(v.action, FilterAction::Quarantine(ref r) if r == "spam"));
        assert_eq!(v.edits.len(), 1);
        assert!(matches!(
            verdict(&json!({})).unwrap().0.action,
            FilterAction::Continue
        ));
        let (v, folder) = verdict(&json!({"action": "junk"})).unwrap();
        assert!(matches!(v.action, FilterAction::Continue));
        assert_eq!(folder.as_deref(), Some("Junk"));
        assert!(Url::parse("https://hooks.example.test/").is_ok_and(|u| u.https));
        assert!(Url::parse("ftp://x/").is_err());
        assert!(verdict(&json!({"action": "explode"})).is_err());
    }
}
