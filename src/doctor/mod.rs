//! `tern doctor`: is the DNS (and the rest of what the outside world sees)
//! right for this server? It checks, with the server's own resolver
//! (`[dns]`), what other mail servers will check: the MX records of each
//! domain, the A/AAAA records of `hostname`, forward-confirmed reverse DNS
//! of the addresses mail leaves from, SPF, each `[[dkim]]` key, DMARC,
//! MTA-STS and TLS-RPT, the TLS certificate, and that each listener
//! answers. Every finding is ok, a warning or an error, and every problem
//! carries the exact record to publish.
//!
//! One file per family of checks (`host.rs`: the host name and which
//! addresses are ours; `ptr.rs`, `mx.rs`, `spf.rs`, `dkim.rs`, `dmarc.rs`,
//! `sts.rs` (MTA-STS and TLS-RPT), `cert.rs`, `listeners.rs`), the record
//! formats in `records.rs`, and the report here. It only reads: it never
//! changes the config, the store or the DNS.

mod cert;
mod dkim;
mod dmarc;
mod host;
mod listeners;
mod mx;
mod ptr;
mod records;
mod spf;
mod sts;

use crate::config::Config;
use crate::dns::{Dns, DnsError};
use crate::mailauth::MailAuthError;
use crate::mailauth::probe::Probe;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error("the resolver: {0}")]
    Dns(#[from] DnsError),
    #[error(transparent)]
    MailAuth(#[from] MailAuthError),
    #[error("no domain to check: give one, or list local_domains in the config")]
    NoDomain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub status: Status,
    /// The family: `addresses`, `a`, `ptr`, `mx`, `spf`, `dkim`, `dmarc`,
    /// `mta-sts`, `tls-rpt`, `certificate`, `listener`.
    pub check: &'static str,
    /// What was checked: a domain, a host name, an address, a key, a listener.
    pub subject: String,
    pub message: String,
    /// For a problem: the record(s) to publish, as zone-file lines (or the
    /// file to serve, for an MTA-STS policy); one per line.
    pub publish: Option<String>,
}

/// What a run found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.count(Status::Error)
    }

    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// One line per finding (`ok`, `warning` or `error`, the check, the
    /// subject and what was found), each record to publish on an indented
    /// `publish:` line under it, and a count at the end.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{:<8}{:<12}{}: {}",
                f.status.name(),
                f.check,
                f.subject,
                f.message
            );
            for line in f.publish.iter().flat_map(|p| p.lines()) {
                let _ = writeln!(out, "{:<8}publish:    {line}", "");
            }
        }
        let _ = writeln!(
            out,
            "{} ok, {} warning(s), {} error(s)",
            self.count(Status::Ok),
            self.count(Status::Warning),
            self.errors()
        );
        out
    }

    /// The findings as a JSON array of objects (`status`, `check`,
    /// `subject`, `message`, `publish`: a string or null).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.findings).unwrap_or_else(|_| "[]".into())
    }
}

/// The state shared by the checks of one run.
pub(crate) struct Doctor<'a> {
    config: &'a Config,
    dns: Dns,
    probe: Probe,
    /// `hostname`, lower case, without the final dot.
    hostname: String,
    report: Report,
}

impl Doctor<'_> {
    fn push(
        &mut self,
        status: Status,
        check: &'static str,
        subject: &str,
        message: String,
        publish: Option<String>,
    ) {
        self.report.findings.push(Finding {
            status,
            check,
            subject: subject.to_string(),
            message,
            publish,
        });
    }

    fn ok(&mut self, check: &'static str, subject: &str, message: String) {
        self.push(Status::Ok, check, subject, message, None);
    }

    fn warning(
        &mut self,
        check: &'static str,
        subject: &str,
        message: String,
        publish: Option<String>,
    ) {
        self.push(Status::Warning, check, subject, message, publish);
    }

    fn error(
        &mut self,
        check: &'static str,
        subject: &str,
        message: String,
        publish: Option<String>,
    ) {
        self.push(Status::Error, check, subject, message, publish);
    }
}

/// Runs every check for `domains` (none given: the configured local
/// domains) and returns what was found.
pub async fn run(config: &Config, domains: &[String]) -> Result<Report, DoctorError> {
    let domains: Vec<String> = if domains.is_empty() {
        config.local_domains.clone()
    } else {
        domains.to_vec()
    };
    let domains: Vec<String> = domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    if domains.is_empty() {
        return Err(DoctorError::NoDomain);
    }
    let mut doctor = Doctor {
        config,
        dns: Dns::from_config(&config.dns)?,
        probe: Probe::new(&config.dns)?,
        hostname: config.hostname.trim_end_matches('.').to_ascii_lowercase(),
        report: Report::default(),
    };
    let addresses = host::check(&mut doctor).await;
    ptr::check(&mut doctor, &addresses).await;
    if !domains.contains(&doctor.hostname) {
        spf::check_hostname(&mut doctor, &addresses).await;
    }
    for domain in &domains {
        mx::check(&mut doctor, domain).await;
        spf::check(&mut doctor, domain, &addresses).await;
        dkim::check(&mut doctor, domain).await;
        dmarc::check(&mut doctor, domain).await;
        sts::check(&mut doctor, domain).await;
    }
    cert::check(&mut doctor);
    listeners::check(&mut doctor).await;
    Ok(doctor.report)
}
