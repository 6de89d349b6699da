//! How `tern plugin test` puts each hook's answer in words.

use crate::hooks::{RewriteDecision, Verdict};

/// A delivery plugin's answer for one account, in words.
pub(super) fn describe_delivery(
    decision: Option<&crate::hooks::delivery::DeliveryDecision>,
) -> String {
    use crate::hooks::delivery::DeliveryAction as A;
    let Some(d) = decision else {
        return "no answer: the default folder".into();
    };
    let mut parts: Vec<String> = d
        .actions
        .iter()
        .map(|a| match a {
            A::Store { folder, flags, .. } => {
                let mut t = format!(
                    "keep in {}",
                    folder.as_deref().unwrap_or("the default folder")
                );
                if !flags.is_empty() {
                    t.push_str(&format!(" with {}", flags.join(" ")));
                }
                t
            }
            A::Discard => "discard".into(),
            A::Redirect(to) => format!(
                "redirect to {}",
                to.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            A::Reject(reason) => format!("reject: {reason}"),
            A::Vacation(m) => format!("vacation reply ({} bytes)", m.len()),
        })
        .collect();
    if !d.outgoing.is_empty() {
        parts.push(format!("sends {} message(s)", d.outgoing.len()));
    }
    if parts.is_empty() {
        parts.push("no action".into());
    }
    parts.join("; ")
}

pub(super) fn describe_verdict(v: &Verdict) -> String {
    match v {
        Verdict::Continue => "continue".into(),
        Verdict::Accept => "accept".into(),
        Verdict::Reject(r) | Verdict::Tempfail(r) => format!("refused: {}", r),
        Verdict::Disconnect(r) => format!("refused: {} (and disconnect)", r),
    }
}

pub(super) fn describe_rewrite(d: &Option<RewriteDecision>) -> String {
    match d {
        None => "unchanged".into(),
        Some(RewriteDecision::Addresses(list)) => format!(
            "rewritten to {}",
            list.iter()
                .map(|a| format!("<{a}>"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(RewriteDecision::Reject(r) | RewriteDecision::Tempfail(r)) => {
            format!("refused: {}", r)
        }
    }
}
