//! The built-in address checks, run at the mail-from, rcpt-to and data seams
//! before any plugin: recipient validity and relay permission
//! (`recipient.rs`), and the source-address checks of `[checks]`
//! (`sender.rs`). Each refusal is logged with its reason.

pub mod recipient;
pub mod sender;

use crate::config::Config;
use crate::mail::Target;

/// How deep alias chains may go before we call them a loop.
const MAX_ALIAS_DEPTH: usize = 8;

/// Expands an address (lowercased `local@domain`) through `[aliases]` into
/// delivery targets. Local addresses that are neither users nor aliases are
/// returned in the second list.
pub fn expand(
    config: &Config,
    store: &crate::store::Store,
    address: &str,
) -> (Vec<Target>, Vec<String>) {
    let mut targets = Vec::new();
    let mut unknown = Vec::new();
    expand_into(
        config,
        store,
        &address.to_ascii_lowercase(),
        0,
        &mut targets,
        &mut unknown,
    );
    (targets, unknown)
}

fn expand_into(
    config: &Config,
    store: &crate::store::Store,
    address: &str,
    depth: usize,
    targets: &mut Vec<Target>,
    unknown: &mut Vec<String>,
) {
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !config.is_local_domain(domain) {
        let t = Target::Remote(address.to_string());
        if !targets.contains(&t) {
            targets.push(t);
        }
        return;
    }
    if depth < MAX_ALIAS_DEPTH
        && let Some(list) = config.aliases.get(address)
    {
        for next in list {
            expand_into(config, store, next, depth + 1, targets, unknown);
        }
        return;
    }
    match store.user_exists(address) {
        Ok(true) => {
            let t = Target::Local(address.to_string());
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        _ => unknown.push(address.to_string()),
    }
}
