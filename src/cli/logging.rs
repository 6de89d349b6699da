//! `tern serve`'s log lines: text (coloured on a terminal) or, with
//! `log_format = "json"`, one JSON object per line (timestamp, level,
//! target, fields); either way each line names the node (`node_id`), so
//! the logs of several nodes sharing a store can be merged and told apart.

use std::fmt;
use std::io::IsTerminal;
use tern::config::LogFormat;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, format};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global subscriber (level from `TERN_LOG`, default info).
pub fn init(format: LogFormat, node: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let node = node.to_string();
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .event_format(WithNode {
                node,
                inner: format::Format::default(),
                json: false,
            })
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .event_format(WithNode {
                node,
                inner: format::Format::default()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
                json: true,
            })
            .init(),
    }
}

/// A line format with the node's name in front: `node=mx1 …` in text, a
/// first `"node":"mx1"` member in JSON.
struct WithNode<F> {
    node: String,
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithNode<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !self.json {
            write!(writer, "node={} ", self.node)?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            // node_id is letters, digits and -_. : nothing to escape.
            Some(rest) => write!(writer, "{{\"node\":\"{}\",{rest}", self.node),
            None => writer.write_str(&line),
        }
    }
}
