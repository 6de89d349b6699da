//! Forward-confirmed reverse DNS (FCrDNS) of each of our addresses: the
//! PTR record must name `hostname`, and `hostname` must resolve back to
//! the address. Many receivers refuse or score down mail from addresses
//! without it. The PTR record lives in the address owner's zone: the
//! record to publish goes to whoever runs it (usually the hosting provider).

use super::Doctor;
use super::records;
use crate::mailauth::probe::Iprev;
use std::net::IpAddr;

const OWNER: &str = " (the reverse zone belongs to the address's owner: ask your hosting provider)";

pub(super) async fn check(d: &mut Doctor<'_>, addresses: &[IpAddr]) {
    let host = d.hostname.clone();
    for &ip in addresses {
        let subject = ip.to_string();
        let fix = Some(records::ptr(ip, &host));
        match d.probe.iprev(ip).await {
            Iprev::Confirmed(names) if names.contains(&host) => {
                d.ok(
                    "ptr",
                    &subject,
                    format!("PTR {host}, which resolves back to {ip}"),
                );
            }
            Iprev::Confirmed(names) | Iprev::Unconfirmed(names) if !names.contains(&host) => {
                d.error(
                    "ptr",
                    &subject,
                    format!(
                        "PTR {} does not name this server's hostname {host}{OWNER}",
                        names.join(", ")
                    ),
                    fix,
                );
            }
            Iprev::Confirmed(_) | Iprev::Unconfirmed(_) => {
                d.error(
                    "ptr",
                    &subject,
                    format!("PTR {host}, but {host} does not resolve back to {ip}"),
                    Some(records::address(&host, ip)),
                );
            }
            Iprev::NoPtr(why) => {
                d.error(
                    "ptr",
                    &subject,
                    format!("no PTR record ({why}){OWNER}"),
                    fix,
                );
            }
            Iprev::Temporary(why) => {
                d.warning("ptr", &subject, format!("PTR look-up failed: {why}"), None);
            }
        }
    }
}
