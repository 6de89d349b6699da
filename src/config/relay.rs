//! `[relay]`: who may relay, where non-local mail goes (MX hosts or a
//! smarthost), and how much the delivering side demands of the next hop's
//! TLS — the smarthost's mode and trust anchors, the trust anchors for MX
//! hosts under MTA-STS, and the MTA-STS switches; the SRS secret of
//! forwarded mail; the load balancers trusted to send PROXY headers.
//! Validation refuses
//! credentials that could leave over unverified TLS.

use super::{ConfigDuration, ConfigError, invalid};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `relay.smarthost_tls`: how the connection to the smarthost is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmarthostTls {
    /// STARTTLS required, certificate verified for the smarthost's name.
    Starttls,
    /// TLS from the first byte (RFC 8314, port 465), certificate verified.
    Implicit,
    /// STARTTLS when offered, certificate not checked (as to MX hosts).
    Opportunistic,
    /// Plain text, no STARTTLS.
    None,
}

impl SmarthostTls {
    /// Is the certificate verified (so credentials may be sent)?
    pub fn verified(self) -> bool {
        matches!(self, SmarthostTls::Starttls | SmarthostTls::Implicit)
    }

    pub fn name(self) -> &'static str {
        match self {
            SmarthostTls::Starttls => "starttls",
            SmarthostTls::Implicit => "implicit",
            SmarthostTls::Opportunistic => "opportunistic",
            SmarthostTls::None => "none",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    pub trusted_networks: Vec<IpNet>,
    pub smarthost: Option<String>,
    /// Credentials for AUTH PLAIN at the smarthost (only over verified TLS).
    pub smarthost_user: Option<String>,
    pub smarthost_password: Option<String>,
    /// Absent: `starttls` with credentials, else `opportunistic`.
    pub smarthost_tls: Option<SmarthostTls>,
    /// Trust only this CA (PEM) for the smarthost instead of the system roots.
    pub smarthost_ca: Option<PathBuf>,
    pub mx_port: u16,
    /// Trust anchors (PEM) for verified TLS to MX hosts and MTA-STS policy
    /// fetches; absent: the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// Look up and apply MTA-STS policies (RFC 8461) of destination domains.
    pub mta_sts: bool,
    /// HTTPS port of `mta-sts.<domain>` (443; tests use another).
    pub mta_sts_port: u16,
    /// Send TLS-RPT reports (RFC 8460) to domains that ask for them.
    pub tls_rpt: bool,
    /// The period one report covers (RFC 8460: a day; tests use seconds).
    pub tls_rpt_period: ConfigDuration,
    /// The secret of the Sender Rewriting Scheme: mail from outside that
    /// Tern sends on (a delivery plugin's redirect) leaves from an SRS0
    /// address in the forwarding account's domain, and bounces to such an
    /// address are delivered back. None: senders are kept as they are.
    pub srs_secret: Option<String>,
    /// Who may send a PROXY protocol header on a `proxy_protocol = true`
    /// listener (the load balancers); default: loopback only.
    pub proxy_sources: Vec<IpNet>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            trusted_networks: Vec::new(),
            smarthost: None,
            smarthost_user: None,
            smarthost_password: None,
            smarthost_tls: None,
            smarthost_ca: None,
            mx_port: 25,
            tls_ca: None,
            mta_sts: true,
            mta_sts_port: 443,
            tls_rpt: true,
            tls_rpt_period: ConfigDuration(std::time::Duration::from_secs(86400)),
            srs_secret: None,
            proxy_sources: vec![
                IpNet::from(std::net::IpAddr::from([127, 0, 0, 1])),
                IpNet::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
        }
    }
}

impl RelayConfig {
    /// The smarthost mode in force: the configured one, else "starttls"
    /// when credentials are set, else "opportunistic".
    pub fn smarthost_tls(&self) -> SmarthostTls {
        match (self.smarthost_tls, &self.smarthost_user) {
            (Some(mode), _) => mode,
            (None, Some(_)) => SmarthostTls::Starttls,
            (None, None) => SmarthostTls::Opportunistic,
        }
    }

    /// The smarthost's AUTH PLAIN credentials, when configured.
    pub fn credentials(&self) -> Option<(String, String)> {
        match (&self.smarthost_user, &self.smarthost_password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(s) = &self.smarthost
            && s.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
        {
            return Err(invalid(
                "relay.smarthost",
                format!("{s:?} must be host:port"),
            ));
        }
        if self.smarthost_user.is_some() != self.smarthost_password.is_some() {
            return Err(invalid(
                "relay.smarthost_user",
                "smarthost_user and smarthost_password go together",
            ));
        }
        let mode = self.smarthost_tls();
        if self.smarthost_user.is_some() && !mode.verified() {
            return Err(invalid(
                "relay.smarthost_tls",
                format!(
                    "{:?} would send the smarthost credentials without verified TLS; \
                     use \"starttls\" or \"implicit\" (or remove smarthost_user/smarthost_password)",
                    mode.name()
                ),
            ));
        }
        if self.srs_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(invalid(
                "relay.srs_secret",
                "must be at least 16 characters (a random string; changing it voids addresses already sent)",
            ));
        }
        if self.tls_rpt_period.0.as_secs() == 0 {
            return Err(invalid("relay.tls_rpt_period", "must be at least 1s"));
        }
        if self.mta_sts_port == 0 {
            return Err(invalid("relay.mta_sts_port", "must be a port number"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;
    use std::path::Path;

    fn relay(text: &str) -> Result<RelayConfig, String> {
        Config::from_toml(&format!("[relay]\n{text}"), Path::new("/etc/tern"))
            .map(|c| c.relay)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn smarthost_mode_defaults_follow_the_credentials() {
        let plain = relay("smarthost = \"relay.test:25\"\n").unwrap();
        assert_eq!(plain.smarthost_tls(), SmarthostTls::Opportunistic);
        let with_auth = relay(
            "smarthost = \"relay.test:587\"\nsmarthost_user = \"u\"\nsmarthost_password = \"p\"\n",
        )
        .unwrap();
        assert_eq!(with_auth.smarthost_tls(), SmarthostTls::Starttls);
        let implicit = relay(
            "smarthost = \"relay.test:465\"\nsmarthost_tls = \"implicit\"\nsmarthost_ca = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(implicit.smarthost_tls(), SmarthostTls::Implicit);
        assert_eq!(
            implicit.smarthost_ca,
            Some(PathBuf::from("/etc/tern/ca.pem"))
        );
    }

    #[test]
    fn credentials_without_verified_tls_are_refused() {
        for mode in ["opportunistic", "none"] {
            let err = relay(&format!(
                "smarthost = \"relay.test:25\"\nsmarthost_tls = \"{mode}\"\n\
                 smarthost_user = \"u\"\nsmarthost_password = \"p\"\n"
            ))
            .unwrap_err();
            assert!(err.contains("relay.smarthost_tls"), "{err}");
        }
        let err = relay("smarthost = \"relay.test:25\"\nsmarthost_user = \"u\"\n").unwrap_err();
        assert!(err.contains("go together"), "{err}");
        let err = relay("smarthost_tls = \"sometimes\"\n").unwrap_err();
        assert!(err.contains("smarthost_tls"), "{err}");
    }
}
