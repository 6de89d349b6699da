//! The source side (`[checks]`): the sender must be fully qualified; a local
//! sender from a stranger needs authentication; an authenticated user may
//! send only as an address of their own (MAIL FROM, and the `From:` header at
//! end of data); and with `sender_domain_must_resolve` the sender's domain
//! must have mail records (a temporary DNS failure is never a permanent no).

use super::expand;
use crate::address::{Address, Domain, ReversePath};
use crate::config::Config;
use crate::dns::{Dns, DnsError, MailDomainStatus};
use crate::hooks::SessionInfo;
use crate::mail::Reply;
use crate::mail::Target;
use crate::store::Store;

/// Checks MAIL FROM; `None` lets it through.
pub async fn check(
    config: &Config,
    store: &Store,
    dns: &Dns,
    session: &SessionInfo,
    from: &ReversePath,
) -> Option<Reply> {
    let ReversePath::Mailbox(addr) = from else {
        return None; // <>: the sender of bounces
    };
    let reply = check_mailbox(config, store, dns, session, addr).await?;
    tracing::info!(client = %session.client, from = %addr, reply = %reply, "MAIL refused");
    Some(reply)
}

async fn check_mailbox(
    config: &Config,
    store: &Store,
    dns: &Dns,
    session: &SessionInfo,
    addr: &Address,
) -> Option<Reply> {
    let domain = addr.domain_text().to_ascii_lowercase();
    let local = config.is_local_domain(&domain);
    if !local && !addr.is_fqdn() && !is_local_program(session, &domain) {
        return Some(Reply::new(
            553,
            "5.1.7",
            format!("<{addr}>: Sender address rejected: need fully-qualified address"),
        ));
    }
    if let Some(user) = &session.user
        && config.checks.sender_must_match_login
        && !owns(config, store, user, &addr.to_lowercase_key()).await
    {
        return Some(Reply::new(
            553,
            "5.7.1",
            format!("<{addr}>: Sender address rejected: not owned by user {user}"),
        ));
    }
    if local && config.checks.local_sender_needs_auth && session.user.is_none() && !session.trusted
    {
        return Some(Reply::new(
            550,
            "5.7.1",
            format!("<{addr}>: Sender address rejected: local sender needs authentication"),
        ));
    }
    if !local
        && config.checks.sender_domain_must_resolve
        && let Domain::Name(name) = addr.domain()
    {
        return match dns.domain_exists_for_mail(name).await {
            Ok(MailDomainStatus::NoMailRecords) | Err(DnsError::NotFound) => Some(Reply::new(
                550,
                "5.1.8",
                format!("<{addr}>: Sender address rejected: Domain not found"),
            )),
            Ok(MailDomainStatus::NullMx) => Some(Reply::new(
                550,
                "5.7.27",
                format!("<{addr}>: Sender address rejected: Domain does not accept mail (null MX)"),
            )),
            Ok(_) => None,
            Err(e) => Some(Reply::new(
                451,
                "4.4.3",
                format!("<{addr}>: Sender address rejected: Domain lookup failed ({e})"),
            )),
        };
    }
    None
}

/// Local programs (cron, mail(1), swaks) send as `user@$(hostname)`, and a
/// machine's name is often not fully qualified: from loopback, a sender in
/// the machine's own name passes the FQDN rule (Postfix qualifies such
/// addresses with `myorigin`).
fn is_local_program(session: &SessionInfo, domain: &str) -> bool {
    static SYSTEM_HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let system = SYSTEM_HOSTNAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_default()
    });
    session.client.ip().is_loopback() && !system.is_empty() && domain.eq_ignore_ascii_case(system)
}

/// Is `address` the user's own, or an alias that delivers to the user?
pub async fn owns(config: &Config, store: &Store, user: &str, address: &str) -> bool {
    if address.eq_ignore_ascii_case(user) {
        return true;
    }
    let (targets, _) = expand(config, store, address).await;
    targets.contains(&Target::Local(user.to_ascii_lowercase()))
}

/// At end of data on authenticated sessions: every `From:` address must be
/// the user's own too.
pub async fn check_header_from(
    config: &Config,
    store: &Store,
    session: &SessionInfo,
    _from: &ReversePath,
    headers: &[u8],
) -> Option<Reply> {
    let user = session.user.as_ref()?;
    if !config.checks.sender_must_match_login {
        return None;
    }
    let addresses: Vec<String> = {
        let message = mail_parser::MessageParser::default().parse_headers(headers)?;
        let from = message.from()?;
        from.iter()
            .filter_map(|a| a.address().map(str::to_string))
            .collect()
    };
    for addr in addresses {
        if !owns(config, store, user, &addr.to_ascii_lowercase()).await {
            let reply = Reply::new(
                550,
                "5.7.1",
                format!("From: <{addr}> is not owned by user {user}"),
            );
            tracing::info!(client = %session.client, user = %user, from_header = %addr, "message refused: From: forgery");
            return Some(reply);
        }
    }
    None
}
