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
pub async fn expand(
    config: &Config,
    store: &crate::store::Store,
    address: &str,
) -> (Vec<Target>, Vec<String>) {
    let mut leaves = Vec::new();
    expand_aliases(config, &address.to_ascii_lowercase(), 0, &mut leaves);
    let mut targets = Vec::new();
    let mut unknown = Vec::new();
    for leaf in leaves {
        let target = match leaf {
            Leaf::Remote(a) => Target::Remote(a),
            Leaf::Local(a) => match store.user_exists(&a).await {
                Ok(true) => Target::Local(a),
                _ => {
                    unknown.push(a);
                    continue;
                }
            },
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    (targets, unknown)
}

/// Where the alias expansion ends: a remote address, or a local one that
/// must be an account.
enum Leaf {
    Remote(String),
    Local(String),
}

/// Follows `[aliases]` (pure config, no store) down to the leaves, in order.
fn expand_aliases(config: &Config, address: &str, depth: usize, leaves: &mut Vec<Leaf>) {
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !config.is_local_domain(domain) {
        leaves.push(Leaf::Remote(address.to_string()));
        return;
    }
    if depth < MAX_ALIAS_DEPTH
        && let Some(list) = config.aliases.get(address)
    {
        for next in list {
            expand_aliases(config, next, depth + 1, leaves);
        }
        return;
    }
    leaves.push(Leaf::Local(address.to_string()));
}
