//! Address rewriting plugins (interface `rewrite`: virtual domains and
//! aliases). Asked in config order about each RCPT TO before the built-in
//! recipient checks; the first answer other than `unchanged` decides. The
//! addresses a plugin answers are checked here (syntax, count) before they
//! go anywhere near the queue or an outbound RCPT TO; a plugin answering
//! garbage counts as a failed call (its `on_error`).

use super::Verdict;
use super::bindings::{self, EnvelopeRecipient, Rewritten, wit};
use super::declared::Hook;
use super::dispatch::{Failure, PluginSession, arm, call, on_error, reply_of};
use super::engine::LoadedPlugin;
use crate::address::Address;
use crate::mail::Reply;

/// Most addresses one recipient may be rewritten to.
pub const MAX_REWRITTEN: usize = 1000;

/// What a rewriting plugin decided about a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteDecision {
    /// Deliver to these instead.
    Addresses(Vec<Address>),
    Reject(Reply),
    Tempfail(Reply),
}

impl PluginSession {
    /// Has any plugin of this session's set a rewrite hook?
    pub fn has_rewrite(&self) -> bool {
        self.calls(Hook::RewriteRecipient)
    }

    /// Asks the rewriting plugins in order; None: no plugin rewrote it.
    pub async fn rewrite(
        &self,
        envelope: &wit::Envelope,
        recipient: &EnvelopeRecipient<'_>,
    ) -> Option<RewriteDecision> {
        let rcpt = wit::Recipient {
            address: recipient.address.clone(),
            params: bindings::rcpt_params(recipient.params),
        };
        let mut slots = self.slots.lock().await;
        for (i, plugin) in self.set.plugins.iter().enumerate() {
            if !plugin.calls(Hook::RewriteRecipient) {
                continue;
            }
            let answer = match call!(
                self,
                slots,
                i,
                plugin,
                rewrite,
                "rewrite-recipient",
                |g, s| g.call_rewrite_recipient(s, envelope, &rcpt)
            ) {
                Ok(Some(a)) => a,
                Ok(None) | Err(Verdict::Continue) => continue,
                Err(Verdict::Reject(r)) => return Some(RewriteDecision::Reject(r)),
                Err(v) => return Some(RewriteDecision::Tempfail(reply_of(v))),
            };
            let name = plugin.name.as_str();
            let decision = match answer {
                Rewritten::Unchanged => continue,
                Rewritten::Reject(r) => RewriteDecision::Reject(bindings::checked_reply(
                    name,
                    &r,
                    bindings::ReplyKind::Reject,
                )),
                Rewritten::Tempfail(r) => RewriteDecision::Tempfail(bindings::checked_reply(
                    name,
                    &r,
                    bindings::ReplyKind::Tempfail,
                )),
                Rewritten::Addresses(list) => match checked_addresses(&list) {
                    Ok(addresses) => RewriteDecision::Addresses(addresses),
                    Err(why) => {
                        tracing::warn!(plugin = name, rcpt = %recipient.address, "plugin rewrote to unusable addresses: {why}");
                        match on_error(plugin) {
                            Verdict::Continue => continue,
                            Verdict::Reject(r) => RewriteDecision::Reject(r),
                            v => RewriteDecision::Tempfail(reply_of(v)),
                        }
                    }
                },
            };
            tracing::info!(plugin = name, rcpt = %recipient.address, rewritten = ?decision, "plugin rewrite");
            return Some(decision);
        }
        None
    }
}

/// The addresses a plugin gave, parsed as RCPT TO would parse them; at
/// least one, at most `MAX_REWRITTEN`.
fn checked_addresses(list: &[String]) -> Result<Vec<Address>, String> {
    if list.is_empty() {
        return Err("no address".into());
    }
    if list.len() > MAX_REWRITTEN {
        return Err(format!(
            "{} addresses (at most {MAX_REWRITTEN})",
            list.len()
        ));
    }
    list.iter()
        .map(|a| Address::parse(a, true).map_err(|e| format!("{a:?}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_addresses_are_checked() {
        assert!(checked_addresses(&[]).is_err());
        assert!(checked_addresses(&["bob@example.test".into(), "c@x.test".into()]).is_ok());
        for bad in [
            "bob",
            "a b@example.test",
            "x@y.test>\r\nRCPT TO:<z@w.test",
            "<a@b.test>",
        ] {
            assert!(checked_addresses(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(checked_addresses(&vec!["a@b.test".to_string(); MAX_REWRITTEN + 1]).is_err());
    }
}
