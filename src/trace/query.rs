//! `tern trace`: finding the stories asked for — by queue id, by
//! Message-ID, or every session of a client in a time window — and
//! printing them for a person or as JSON for tools. Run by the server for
//! a control-socket client, or on the store of a stopped server
//! (`crate::admin`).

use super::{Trace, render};
use crate::store::{Store, StoreError, parse_queue_id};
use serde::{Deserialize, Serialize};

/// What `tern trace` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceQuery {
    /// A queue id or a Message-ID.
    #[serde(default)]
    pub id: Option<String>,
    /// A client address (with `since`/`until`, unix ms).
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub since: Option<i64>,
    #[serde(default)]
    pub until: Option<i64>,
    #[serde(default)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// The traces `query` names, oldest first.
pub async fn find(store: &Store, query: &TraceQuery) -> Result<Vec<Trace>, QueryError> {
    match (&query.id, &query.client) {
        (Some(id), None) => {
            let id = id.trim();
            let looks_like_queue_id = !id.contains(['@', '<']);
            if looks_like_queue_id
                && let Some(n) = parse_queue_id(id)
                && let Some(t) = store.trace(n).await?
            {
                return Ok(vec![t]);
            }
            let found = store.traces_by_message_id(id).await?;
            if found.is_empty() {
                return Err(QueryError::NotFound(format!(
                    "no trace of {id} (neither a queue id nor a Message-ID known here; traces of \
                     messages that left the store and of refused attempts are kept for [trace] keep)"
                )));
            }
            Ok(found)
        }
        (None, Some(client)) => {
            let ip: std::net::IpAddr = client
                .trim()
                .parse()
                .map_err(|_| QueryError::Invalid(format!("{client:?} is not an IP address")))?;
            let since = query.since.unwrap_or(0);
            let until = query.until.unwrap_or(i64::MAX);
            Ok(store
                .traces_of_client(&ip.to_string(), since, until)
                .await?)
        }
        _ => Err(QueryError::Invalid(
            "give a queue id or Message-ID, or --client IP (with --since/--until)".into(),
        )),
    }
}

/// A trace as `--json` shows it: its fields, and the queue id in the form
/// `tern queue list` and the text output show (`"queue_id":
/// "00003D0902"`) beside the number it stands for (`"id"`).
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_id: Option<String>,
    #[serde(flatten)]
    trace: &'a Trace,
}

impl<'a> From<&'a Trace> for Shown<'a> {
    fn from(trace: &'a Trace) -> Self {
        Shown {
            queue_id: trace.id.map(crate::store::format_queue_id),
            trace,
        }
    }
}

/// The answer to `query` as `tern trace` prints it.
pub async fn answer(store: &Store, query: &TraceQuery) -> Result<String, QueryError> {
    let traces = find(store, query).await?;
    if query.json {
        let shown: Vec<Shown<'_>> = traces.iter().map(Shown::from).collect();
        let mut out =
            serde_json::to_string_pretty(&shown).map_err(|e| QueryError::Invalid(e.to_string()))?;
        out.push('\n');
        return Ok(out);
    }
    if traces.is_empty() {
        return Ok("no decisions recorded for that client in that window\n".into());
    }
    Ok(render::text(&traces))
}
