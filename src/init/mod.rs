//! `tern init DOMAIN`: a production setup in one step, like mox's
//! quickstart. It writes the config (`template.rs`), a DKIM key
//! (`mailauth::keygen`), a self-signed placeholder certificate where the
//! real one will go, creates the first account in the store the config
//! names (postmaster and abuse are aliases of it), hands the data to the
//! account the server runs as, and returns the DNS records to publish,
//! built as `tern doctor` proposes them. It never overwrites a config,
//! except the untouched example the Debian package installs.

mod template;

pub use template::LISTENERS;

use crate::admin::{self, AdminRequest};
use crate::config::{Config, DkimAlgorithm};
use crate::doctor::records;
use crate::service::privileges::{self, Account};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The example config the Debian package installs as /etc/tern/tern.toml;
/// `tern init` may replace it as long as nobody has changed it.
pub const PACKAGED_EXAMPLE: &str = include_str!("../../dist/tern.toml");

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists; tern init never overwrites a config (move it away first)")]
    Exists(PathBuf),
    #[error("{0}: not a domain name")]
    Domain(String),
    #[error("{0}")]
    Account(#[from] privileges::PrivilegeError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] crate::mailauth::MailAuthError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("the config written does not load: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("first account: {0}")]
    Admin(#[from] crate::admin::AdminError),
}

/// What the operator asked for (defaults filled in by the caller).
pub struct Options {
    pub domain: String,
    pub hostname: String,
    /// Where the config, the key and the certificate go.
    pub dir: PathBuf,
    pub data_dir: PathBuf,
    /// The account `tern serve` runs as (`user`); None: no `user` key.
    pub run_as: Option<String>,
    /// The first mail account, and its password.
    pub first_account: String,
    pub password: String,
}

/// What was written, and what to publish.
pub struct Outcome {
    pub config: PathBuf,
    pub dkim_key: PathBuf,
    pub certificate: PathBuf,
    /// Zone-file lines; lines starting with `;` are advice, not records.
    pub records: Vec<String>,
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes everything, or fails before writing the config.
pub async fn run(o: &Options) -> Result<Outcome, InitError> {
    let domain = o.domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || !domain.contains('.') || domain.contains(['@', '/', ' ']) {
        return Err(InitError::Domain(o.domain.clone()));
    }
    let config_path = o.dir.join("tern.toml");
    if let Ok(existing) = std::fs::read_to_string(&config_path)
        && existing != PACKAGED_EXAMPLE
    {
        return Err(InitError::Exists(config_path));
    }
    // Checked before anything is written: the account must exist.
    let account = match o.run_as.as_deref() {
        Some(user) => Some(privileges::account(user, None)?).filter(|a| a.uid != 0),
        None => None,
    };
    let dkim_dir = o.dir.join("dkim");
    let tls_dir = o.dir.join("tls");
    for d in [&o.dir, &dkim_dir, &tls_dir] {
        std::fs::create_dir_all(d).map_err(write_error(d))?;
    }
    let selector = chrono::Utc::now().format("tern%Y%m").to_string();
    let key =
        crate::mailauth::keygen::generate(&domain, &selector, DkimAlgorithm::RsaSha256, &dkim_dir)?;
    let certificate = tls_dir.join("cert.pem");
    let private_key = tls_dir.join("key.pem");
    if !(certificate.exists() && private_key.exists()) {
        crate::tls::write_self_signed(&certificate, &private_key, &o.hostname)?;
    }
    let text = template::render(&template::Settings {
        domain: &domain,
        hostname: &o.hostname,
        data_dir: &o.data_dir,
        run_as: o.run_as.as_deref(),
        first_account: &o.first_account,
        certificate: &certificate,
        private_key: &private_key,
        dkim_selector: &selector,
        dkim_key: &key.path,
    });
    // Loaded before it is written: a template error never lands on disk.
    let config = Config::from_toml(&text, &o.dir)?;
    std::fs::write(&config_path, &text).map_err(write_error(&config_path))?;
    add_first_account(&config, o).await?;
    if let Some(account) = &account {
        hand_over(
            o,
            &config,
            account,
            &[&key.path, &private_key, &config_path],
        )?;
    }
    Ok(Outcome {
        config: config_path,
        dkim_key: key.path.clone(),
        certificate,
        records: dns_records(&domain, &o.hostname, &key.record_name, &key.record),
    })
}

/// The first account, in the store of the data directory the config names.
async fn add_first_account(config: &Config, o: &Options) -> Result<(), InitError> {
    std::fs::create_dir_all(&config.data_dir).map_err(write_error(&config.data_dir))?;
    use crate::store::backend::{Backend, EngineSettings};
    let backend = Backend::open(&EngineSettings::from_config(config))
        .await
        .map_err(crate::store::StoreError::from)?;
    let store = crate::store::Store::on(backend).await?;
    let request = AdminRequest::UserAdd {
        address: o.first_account.clone(),
        password: o.password.clone(),
    };
    admin::execute(&store, config, None, request).await?;
    store.flush().await?;
    Ok(())
}

/// The data directory becomes the account's; the secrets the server reads
/// (keys, config) are root's and readable by its group only.
fn hand_over(
    o: &Options,
    config: &Config,
    account: &Account,
    secrets: &[&Path],
) -> Result<(), InitError> {
    privileges::chown_tree(&config.data_dir, account).map_err(write_error(&config.data_dir))?;
    let group_only = |path: &Path, mode: u32| -> Result<(), InitError> {
        std::os::unix::fs::chown(path, Some(0), Some(account.gid)).map_err(write_error(path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(write_error(path))
    };
    for d in [o.dir.join("dkim"), o.dir.join("tls")] {
        group_only(&d, 0o750)?;
    }
    for f in secrets {
        group_only(f, 0o640)?;
    }
    Ok(())
}

/// The records a new domain needs, as `tern doctor` proposes them.
pub fn dns_records(domain: &str, hostname: &str, dkim_name: &str, dkim_value: &str) -> Vec<String> {
    vec![
        format!("; {hostname} must resolve to this server: an A (and AAAA) record, e.g."),
        format!(";   {hostname}. IN A 192.0.2.25   (this server's public address)"),
        "; and the PTR of each address must name it (ask the provider of the address).".into(),
        records::mx(domain, hostname),
        records::txt(domain, "v=spf1 mx -all"),
        records::txt(dkim_name, dkim_value),
        records::txt(&format!("_dmarc.{domain}"), &records::dmarc_value(domain)),
        records::txt(&format!("_mta-sts.{domain}"), &records::mta_sts_value()),
        records::sts_policy_file(domain, &[hostname.to_string()]),
        records::txt(
            &format!("_smtp._tls.{domain}"),
            &records::tls_rpt_value(domain),
        ),
    ]
}
