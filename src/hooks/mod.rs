//! The hook seams of the mail path: connect, helo, mail-from, rcpt-to (with
//! routing) and data. Each stage of a session makes exactly one call here;
//! the built-in checks of `crate::checks` run first, and the plugin engine
//! plugs in behind them without reshaping the session. Calls run in order and
//! the first verdict other than `Continue` wins.

use crate::address::{Address, ReversePath};
use crate::checks;
use crate::config::{Config, Protocol};
use crate::dns::Dns;
pub use crate::mailauth::AuthResults;
use crate::smtp::command::{MailParams, RcptParams};
use crate::smtp::reply::Reply;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the hooks know of a session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub client: SocketAddr,
    pub local: SocketAddr,
    pub protocol: Protocol,
    pub helo: Option<String>,
    /// TLS version when TLS is on.
    pub tls: Option<&'static str>,
    /// The authenticated account.
    pub user: Option<String>,
    /// The client is in `relay.trusted_networks`.
    pub trusted: bool,
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Accept,
    Reject(Reply),
    Tempfail(Reply),
    Disconnect(Reply),
}

/// Where one recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// A local account's INBOX.
    Local(String),
    /// Another domain, through the queue.
    Remote(String),
}

/// The hook dispatcher shared by all sessions.
pub struct Hooks {
    config: Arc<Config>,
    store: Store,
    dns: Dns,
}

impl Hooks {
    pub fn new(config: Arc<Config>, store: Store, dns: Dns) -> Hooks {
        Hooks { config, store, dns }
    }

    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    pub async fn connect(&self, _session: &SessionInfo) -> Verdict {
        Verdict::Continue
    }

    pub async fn helo(&self, _session: &SessionInfo, _name: &str) -> Verdict {
        Verdict::Continue
    }

    pub async fn mail_from(
        &self,
        session: &SessionInfo,
        from: &ReversePath,
        _params: &MailParams,
    ) -> Verdict {
        match checks::sender::check(&self.config, &self.store, &self.dns, session, from).await {
            Some(reply) => refusal(reply),
            None => Verdict::Continue,
        }
    }

    /// Validates and routes one recipient: the targets it delivers to, or the refusal.
    pub async fn rcpt_to(
        &self,
        session: &SessionInfo,
        _from: &ReversePath,
        to: &Address,
        _params: &RcptParams,
    ) -> Result<Vec<Target>, Reply> {
        checks::recipient::check(&self.config, &self.store, &self.dns, session, to).await
    }

    /// Runs after the message is read, before it is committed. `headers` is
    /// the header section as received; `auth` what SPF, DKIM, DMARC and ARC
    /// found (mail from outside only: `None` for authenticated or trusted
    /// clients, or with `[auth] verify = false`). The plugin engine's filter
    /// hook maps `auth` onto its envelope.
    pub async fn data(
        &self,
        session: &SessionInfo,
        from: &ReversePath,
        headers: &[u8],
        _auth: Option<&AuthResults>,
    ) -> Verdict {
        match checks::sender::check_header_from(&self.config, &self.store, session, from, headers) {
            Some(reply) => refusal(reply),
            None => Verdict::Continue,
        }
    }
}

/// A built-in refusal as a verdict: 4xx tempfails, 5xx rejects.
fn refusal(reply: Reply) -> Verdict {
    if reply.is_transient() {
        Verdict::Tempfail(reply)
    } else {
        Verdict::Reject(reply)
    }
}
