//! mail-auth brings its own hickory resolver (a newer hickory than
//! `crate::dns`); it is built from the same `[dns]` settings, so SPF, DKIM
//! and DMARC look-ups go to the same name servers with the same timeout.

use super::MailAuthError;
use crate::config::DnsConfig;
use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};

pub(super) fn authenticator(dns: &DnsConfig) -> Result<MessageAuthenticator, MailAuthError> {
    let (config, mut opts) = match &dns.nameservers {
        Some(list) => {
            let mut config = ResolverConfig::from_name_servers(Vec::new());
            for addr in list {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                config.add_name_server(ns);
            }
            (config, ResolverOpts::default())
        }
        None => match mail_auth::hickory_resolver::system_conf::read_system_conf() {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("no usable system resolver configuration ({e}); using defaults");
                (ResolverConfig::default(), ResolverOpts::default())
            }
        },
    };
    opts.timeout = dns.timeout.0;
    opts.attempts = 2;
    opts.ndots = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.edns0 = true;
    MessageAuthenticator::new(config, opts).map_err(|e| MailAuthError::Resolver(e.to_string()))
}
