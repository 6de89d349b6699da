//! DNS checks: a DNSBL on connect (the client's reversed IPv4 address under
//! the `zone` config value; an A record means listed, the TXT record is the
//! reason) and, at MAIL FROM, a sender domain must publish MX records.

use tern_sdk::{Client, MailParams, Policy, Session, Verdict, config, dns};

struct Dnsbl;

impl Policy for Dnsbl {
    fn on_connect(client: Client) -> Verdict {
        let Some(zone) = config::get("zone") else {
            return Verdict::Continue;
        };
        let octets: Vec<&str> = client.address.split('.').collect();
        if octets.len() != 4 {
            return Verdict::Continue;
        }
        let name = format!(
            "{}.{}.{}.{}.{zone}",
            octets[3], octets[2], octets[1], octets[0]
        );
        match dns::a(&name) {
            Ok(_) => {
                let why = dns::txt(&name)
                    .ok()
                    .and_then(|t| t.into_iter().next())
                    .unwrap_or_else(|| "listed".into());
                Verdict::reject(
                    554,
                    "5.7.1",
                    &format!("{} is listed in {zone}: {why}", client.address),
                )
            }
            Err(dns::DnsError::NotFound) => Verdict::Continue,
            Err(dns::DnsError::Temporary(e)) => {
                Verdict::tempfail(451, "4.4.3", &format!("DNSBL lookup failed: {e}"))
            }
        }
    }

    fn on_mail_from(_session: Session, address: String, _params: MailParams) -> Verdict {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return Verdict::Continue;
        };
        if config::get("require_mx").as_deref() != Some("yes") {
            return Verdict::Continue;
        }
        match dns::mx(domain) {
            Ok(list) if !list.is_empty() => Verdict::Continue,
            Ok(_) | Err(dns::DnsError::NotFound) => Verdict::reject(
                550,
                "5.1.8",
                &format!("{domain} publishes no MX (dnsbl plugin)"),
            ),
            Err(dns::DnsError::Temporary(e)) => {
                Verdict::tempfail(451, "4.4.3", &format!("MX lookup failed: {e}"))
            }
        }
    }
}

tern_sdk::export!(Dnsbl: Policy);
