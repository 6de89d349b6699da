//! The destination side: a recipient in a local domain must be a user or an
//! alias (550 5.1.1); any other domain is relayed only for authenticated or
//! trusted clients (550 5.7.1 otherwise: never an open relay), must be a
//! fully-qualified name, and with `recipient_domain_must_resolve` must have
//! mail records in DNS. Returns where the recipient's copies go. An SRS
//! address of a local domain (with `[relay] srs_secret`) is a bounce to
//! mail Tern forwarded: it goes back to the address inside, if the hash
//! verifies and it is not too old (550 5.1.1 otherwise).

use super::expand;
use crate::address::{Address, Domain};
use crate::config::Config;
use crate::dns::{Dns, DnsError, MailDomainStatus};
use crate::hooks::SessionInfo;
use crate::mail::Reply;
use crate::mail::Target;
use crate::mail::srs::{self, Srs};
use crate::store::Store;

pub async fn check(
    config: &Config,
    store: &Store,
    dns: &Dns,
    session: &SessionInfo,
    to: &Address,
) -> Result<Vec<Target>, Reply> {
    let key = to.to_lowercase_key();
    let domain = to.domain_text().to_ascii_lowercase();
    if config.is_local_domain(&domain) {
        if let Some(secret) = &config.relay.srs_secret
            && srs::is_srs(to.local_part())
        {
            return srs_bounce(config, store, session, to, secret).await;
        }
        let (targets, unknown) = expand(config, store, &key).await;
        if targets.is_empty() {
            return Err(unknown_address(session, to, "User unknown"));
        }
        if !unknown.is_empty() {
            tracing::warn!(rcpt = %to, unknown = ?unknown, "alias expands to unknown local users; they are skipped");
        }
        return Ok(targets);
    }
    if session.user.is_none() && !session.trusted {
        return Err(refuse(
            session,
            to,
            Reply::new(550, "5.7.1", format!("<{to}>: Relaying denied")),
        ));
    }
    if !to.is_fqdn() {
        return Err(refuse(
            session,
            to,
            Reply::new(
                553,
                "5.1.3",
                format!("<{to}>: Recipient address rejected: need fully-qualified address"),
            ),
        ));
    }
    if config.checks.recipient_domain_must_resolve
        && let Domain::Name(name) = to.domain()
    {
        let verdict = match dns.domain_exists_for_mail(name).await {
            Ok(MailDomainStatus::NoMailRecords) | Err(DnsError::NotFound) => Some(Reply::new(
                550,
                "5.1.2",
                format!("<{to}>: Recipient address rejected: Domain not found"),
            )),
            Ok(MailDomainStatus::NullMx) => Some(Reply::new(
                556,
                "5.1.10",
                format!("<{to}>: Recipient address rejected: Domain does not accept mail"),
            )),
            Ok(_) => None,
            Err(e) => Some(Reply::new(
                451,
                "4.4.3",
                format!("<{to}>: Recipient address rejected: Domain lookup failed ({e})"),
            )),
        };
        if let Some(reply) = verdict {
            return Err(refuse(session, to, reply));
        }
    }
    Ok(vec![Target::Remote(key)])
}

fn refuse(session: &SessionInfo, to: &Address, reply: Reply) -> Reply {
    tracing::info!(client = %session.client, rcpt = %to, reply = %reply, "RCPT refused");
    reply
}

/// Where a bounce to one of our SRS addresses goes: the original sender
/// (a local user's mailbox, or relayed without relay permission: the hash
/// vouches for it).
async fn srs_bounce(
    config: &Config,
    store: &Store,
    session: &SessionInfo,
    to: &Address,
    secret: &str,
) -> Result<Vec<Target>, Reply> {
    let original = Srs::new(secret)
        .reverse(to.local_part(), srs::today())
        .map_err(|e| unknown_address(session, to, &e.to_string()))?;
    let address = Address::parse(&original, true)
        .map_err(|_| unknown_address(session, to, "malformed SRS address"))?;
    tracing::info!(rcpt = %to, to = %address, "SRS address: delivered to the original sender");
    let domain = address.domain_text().to_ascii_lowercase();
    if config.is_local_domain(&domain) {
        let (targets, _) = expand(config, store, &address.to_lowercase_key()).await;
        if targets.is_empty() {
            return Err(unknown_address(session, to, "User unknown"));
        }
        return Ok(targets);
    }
    Ok(vec![Target::Remote(address.to_string())])
}

/// 550 5.1.1 for a local address that leads nowhere, logged.
fn unknown_address(session: &SessionInfo, to: &Address, why: &str) -> Reply {
    refuse(
        session,
        to,
        Reply::new(
            550,
            "5.1.1",
            format!("<{to}>: Recipient address rejected: {why}"),
        ),
    )
}
