//! What `tern plugin test` runs a plugin on: the input (`TrialInput`),
//! the envelope a message's own header gives when none is given, and the
//! one-plugin configuration made from the input.

use super::TrialError;
use crate::address::{Address, ReversePath};
use crate::config::Config;
use std::net::IpAddr;
use std::path::PathBuf;

/// What to run the plugin on.
#[derive(Debug, Clone)]
pub struct TrialInput {
    pub plugin: PathBuf,
    /// `[[plugin]] config` entries.
    pub settings: Vec<(String, String)>,
    /// Outgoing TCP the plugin may open (`[[plugin]] connect`).
    pub connect: Vec<String>,
    /// The message as it would arrive (header section and body).
    pub message: Vec<u8>,
    pub from: String,
    pub to: Vec<String>,
    pub client: IpAddr,
    pub helo: String,
    pub login: Option<String>,
    /// The resolver the plugin's DNS look-ups use (the config's `[dns]`).
    pub dns: crate::config::DnsConfig,
    /// Answers used instead of that resolver (`--dns FILE`).
    pub canned_dns: Option<crate::dns::Canned>,
    /// A Sieve script made each recipient's active script in the scratch
    /// store, for a delivery plugin that runs one (`--sieve`).
    pub sieve: Option<Vec<u8>>,
}

pub(super) fn parse_sender(from: &str) -> Result<ReversePath, TrialError> {
    let bare = from.trim().trim_start_matches('<').trim_end_matches('>');
    if bare.is_empty() {
        return Ok(ReversePath::Null);
    }
    Address::parse(bare, true)
        .map(ReversePath::Mailbox)
        .map_err(|e| TrialError::Input(format!("--from {from}: {e}")))
}

/// A config holding this one plugin, its data in `scratch`.
pub(super) fn trial_config(
    input: &TrialInput,
    scratch: &std::path::Path,
) -> Result<Config, TrialError> {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let name = input
        .plugin
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    let path = std::path::absolute(&input.plugin)
        .map_err(|e| TrialError::Input(format!("{}: {e}", input.plugin.display())))?;
    let dns = toml::to_string(&input.dns).map_err(|e| TrialError::Input(format!("[dns]: {e}")))?;
    let mut text = format!(
        "data_dir = {}\n[dns]\n{dns}\n[[plugin]]\nname = {}\npath = {}\nconnect = [{}]\n[plugin.config]\n",
        quote(&scratch.join("data").display().to_string()),
        quote(&name),
        quote(&path.display().to_string()),
        input
            .connect
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for (k, v) in &input.settings {
        text.push_str(&format!("{} = {}\n", quote(k), quote(v)));
    }
    Config::from_toml(&text, scratch).map_err(|e| TrialError::Input(e.to_string()))
}

/// The From: address and the To:/Cc: addresses of a message, the envelope
/// `tern plugin test` uses when none is given (as `sendmail -t` does).
pub fn header_addresses(message: &[u8]) -> (Option<String>, Vec<String>) {
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(message) else {
        return (None, Vec::new());
    };
    let list = |a: Option<&mail_parser::Address>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    };
    let from = list(parsed.from()).into_iter().next();
    let mut to = list(parsed.to());
    to.extend(list(parsed.cc()));
    (from, to)
}
