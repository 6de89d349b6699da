//! Routing targets: where one accepted recipient's copy goes. The
//! recipient checks (`checks/`) and router and rewrite plugins (`hooks/`)
//! decide them, the submission path (`submit/`) commits by them, and the
//! queue's notifications read them. Plain data.

/// Where one recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// A local account's INBOX.
    Local(String),
    /// Another domain, through the queue.
    Remote(String),
    /// Another domain, through the queue to hosts a router plugin chose
    /// (`host` or `host:port`, tried in order) instead of MX.
    Relay { address: String, hosts: Vec<String> },
}
