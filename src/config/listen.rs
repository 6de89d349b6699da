//! `[[listen]]`: the protocols a listener may speak, the listener entry
//! (address, and whether a PROXY protocol header comes first), the
//! built-in listeners when the config names none, and their validation.

use super::{ConfigError, RelayConfig, invalid};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Smtp,
    Submission,
    Submissions,
    Lmtp,
    Pop3,
    Pop3s,
    Imap,
    Imaps,
    Http,
    Https,
    /// ManageSieve (RFC 5804): users' Sieve scripts.
    Managesieve,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Submissions => "submissions",
            Protocol::Lmtp => "lmtp",
            Protocol::Pop3 => "pop3",
            Protocol::Pop3s => "pop3s",
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Managesieve => "managesieve",
        }
    }

    /// Listeners that start in TLS.
    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            Protocol::Submissions | Protocol::Pop3s | Protocol::Imaps | Protocol::Https
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub protocol: Protocol,
    pub address: SocketAddr,
    /// Every connection starts with a PROXY v1/v2 header (from a load
    /// balancer in `relay.proxy_sources`) naming the real client.
    #[serde(default)]
    pub proxy_protocol: bool,
}

/// The listeners `tern serve` runs when the config names none.
pub fn default_listeners() -> Vec<Listen> {
    let l = |protocol, port| Listen {
        protocol,
        address: SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port),
        proxy_protocol: false,
    };
    vec![
        l(Protocol::Smtp, 2525),
        l(Protocol::Submission, 2587),
        l(Protocol::Submissions, 2465),
        l(Protocol::Pop3, 2110),
        l(Protocol::Pop3s, 2995),
        l(Protocol::Imap, 2143),
        l(Protocol::Imaps, 2993),
        l(Protocol::Http, 2080),
        l(Protocol::Managesieve, 24190),
    ]
}

/// Two listeners on one address, or a PROXY listener nobody may feed.
pub(super) fn validate(listen: &[Listen], relay: &RelayConfig) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for l in listen {
        if l.address.port() != 0 && !seen.insert(l.address) {
            return Err(invalid(
                "listen",
                format!("address {} is used twice", l.address),
            ));
        }
        if l.proxy_protocol && relay.proxy_sources.is_empty() {
            return Err(invalid(
                "relay.proxy_sources",
                format!(
                    "is empty, so the {} listener on {} (proxy_protocol = true) \
                     could accept no connection; name the load balancers' addresses",
                    l.protocol.name(),
                    l.address
                ),
            ));
        }
    }
    Ok(())
}
