//! Routing targets: where one accepted recipient's copy goes. The
//! recipient checks (`checks/`) and router and rewrite plugins (`hooks/`)
//! decide them, the submission path (`submit/`) commits by them, and the
//! queue's notifications read them; a router's demand for verified TLS
//! (`VerifiedTls`) rides on them into the queue. Plain data.

/// Where one recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// A local account's INBOX.
    Local(String),
    /// Another domain, through the queue.
    Remote(String),
    /// Another domain, through the queue as a router plugin said: to the
    /// `hosts` it chose (`host` or `host:port`, tried in order) instead of
    /// MX — empty: MX or the smarthost as usual — and, with `tls`, only
    /// over verified TLS.
    Relay {
        address: String,
        hosts: Vec<String>,
        #[serde(default)]
        tls: Option<VerifiedTls>,
    },
}

impl Target {
    /// This target with a router's demand for verified TLS: a remote
    /// address carries it to the queue; a local mailbox has no use for it.
    pub fn demanding(self, tls: Option<&VerifiedTls>) -> Target {
        let Some(demand) = tls else {
            return self;
        };
        match self {
            Target::Local(u) => Target::Local(u),
            Target::Remote(address) => Target::Relay {
                address,
                hosts: Vec::new(),
                tls: Some(demand.clone()),
            },
            Target::Relay {
                address,
                hosts,
                tls,
            } => Target::Relay {
                address,
                hosts,
                tls: tls.or_else(|| Some(demand.clone())),
            },
        }
    }
}

/// A router plugin's demand that a recipient be delivered only over TLS
/// with a verified certificate (WIT `routing.require-verified-tls`).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct VerifiedTls {
    /// The plugin that demanded it (for the log and `tern queue show`).
    pub plugin: String,
    /// The name the certificate must be valid for instead of the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl std::fmt::Display for VerifiedTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "verified TLS required by router plugin {}", self.plugin)?;
        if let Some(name) = &self.name {
            write!(f, " (certificate for {name})")?;
        }
        Ok(())
    }
}
