//! What a filter's `on-data` call may ask of the host and learn from it
//! through the `verdicts` interface: the folder the message's local copies
//! go to (`local-folder`, kept on the instance's state for the call in
//! progress) and the decisions recorded about the message so far
//! (`so-far`, read from the session's trace without plugin internals).
//! The policy side of `verdicts` (`same-for-client`) is here too, as the
//! one `verdicts::Host` implementation.

use super::bindings::tern::plugin::verdicts;
use super::host::PluginState;
use crate::trace::{Event, Recorder};

/// The `on-data` call in progress, as the host functions see it.
pub struct FilterCall {
    /// The session's trace (`so-far`).
    pub trace: Recorder,
    /// The folder the plugin asked for (`local-folder`), checked.
    pub folder: Option<String>,
}

/// Most decisions `so-far` hands a plugin (the trace's own bound).
const MAX_DECISIONS: usize = crate::trace::MAX_EVENTS;

/// A recorded decision as a plugin may see it: a plugin's own details
/// (header edits, quarantine reasons, routes) and timings left out.
fn decision(e: Event) -> verdicts::Decision {
    let built_in = !e.by.starts_with("plugin ");
    verdicts::Decision {
        stage: e.stage.name().to_string(),
        by: e.by,
        verdict: e.verdict,
        reply: e.reply,
        rcpt: e.rcpt,
        detail: e.detail.filter(|_| built_in),
    }
}

impl verdicts::Host for PluginState {
    fn same_for_client(&mut self, seconds: u32) {
        let Some(asked) = self.remember.as_mut() else {
            tracing::warn!(
                plugin = self.shared.name,
                "same-for-client called outside a policy hook: ignored"
            );
            return;
        };
        *asked = Some(seconds.min(super::memo::MAX_SECONDS));
    }

    fn local_folder(&mut self, folder: String) {
        let plugin = self.shared.name.as_str();
        let Some(call) = self.filtering.as_mut() else {
            tracing::warn!(plugin, "local-folder called outside on-data: ignored");
            return;
        };
        match crate::store::check_folder_name(folder.trim()) {
            Ok(name) => call.folder = Some(name),
            Err(e) => {
                tracing::warn!(plugin, %folder, "local-folder: unusable folder name ({e}): ignored")
            }
        }
    }

    fn so_far(&mut self) -> Vec<verdicts::Decision> {
        let Some(call) = self.filtering.as_ref() else {
            return Vec::new();
        };
        let mut events = call.trace.so_far();
        events.truncate(MAX_DECISIONS);
        events.into_iter().map(decision).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Stage;

    #[test]
    fn plugin_details_stay_with_the_plugin() {
        let mine = decision(
            Event::new(Stage::Data, "plugin content", "quarantine").detail("X-Spam: secret"),
        );
        assert_eq!(mine.detail, None);
        assert_eq!(
            (mine.stage.as_str(), mine.verdict.as_str()),
            ("data", "quarantine")
        );
        let spf = decision(
            Event::new(Stage::Data, "spf/dkim/dmarc", "accept").detail("spf=pass dkim=none"),
        );
        assert_eq!(spf.detail.as_deref(), Some("spf=pass dkim=none"));
        let refused = decision(
            Event::new(Stage::Rcpt, "plugin greylist", "tempfail")
                .rcpt("bob@example.test")
                .reply("451 4.7.1 later"),
        );
        assert_eq!(refused.reply.as_deref(), Some("451 4.7.1 later"));
        assert_eq!(refused.rcpt.as_deref(), Some("bob@example.test"));
    }
}
