//! The command line's grammar: the global options, every subcommand and its
//! arguments, with the help text `tern --help` and the manual pages show.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "A mail transfer agent with WebAssembly plugins"
)]
pub(crate) struct Cli {
    /// Config file (default: config/tern.toml if it exists, else built-in defaults)
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run every listener, the queue and the plugins
    Serve,
    /// Validate the config and every plugin
    CheckConfig,
    /// Local accounts
    #[command(subcommand)]
    User(UserCommand),
    /// The delivery queue (like mailq/postqueue)
    #[command(subcommand)]
    Queue(QueueCommand),
    /// DKIM signing keys
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// WebAssembly plugins
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// The server's TLS certificates
    #[command(subcommand)]
    Tls(TlsCommand),
    /// DMARC aggregate reports (`[dmarc] reports = true`)
    #[command(subcommand)]
    Dmarc(DmarcCommand),
    /// Check what the world sees of this server: MX, A/AAAA, PTR, SPF,
    /// DKIM, DMARC, MTA-STS and TLS-RPT records, the certificate and the
    /// listeners; prints the record to publish for every problem and
    /// exits non-zero on any error
    Doctor {
        /// Domains to check (default: the configured local domains)
        #[arg(value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Print the findings as a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Copy the whole store, as it is at one moment, into DIR (absent or
    /// empty). While `tern serve` runs it sends the snapshot over the
    /// control socket (mail keeps flowing) and this command writes DIR
    Backup { dir: PathBuf },
    /// Load a backup made by `tern backup` into the configured store, which
    /// must be empty (sled: an absent or empty data_dir). Stop the server first
    Restore { dir: PathBuf },
    /// Write every folder of USER into DIR (absent or empty): Maildir++
    /// (flags in the file names, keywords in dovecot-keywords) or one mbox
    /// file per folder (flags in Status/X-Status/X-Keywords)
    Export {
        user: String,
        #[arg(long, value_enum)]
        format: ExportFormat,
        dir: PathBuf,
    },
    /// Add the mail at PATH to USER's folders (made when missing), flags
    /// and dates kept: a Maildir with its Maildir++ folders, a folder of
    /// .mbox files (one per folder), or one mbox file (into INBOX)
    Import { user: String, path: PathBuf },
    /// Pull a whole account from another IMAP server into USER: every
    /// folder, with flags and internal dates, over verified TLS. Run it
    /// again to copy what arrived since (nothing is copied twice). The
    /// password comes from --password-file, else $TERN_MIGRATE_PASSWORD
    Migrate {
        user: String,
        /// imaps://LOGIN@HOST[:PORT] (%40 for an @ in LOGIN)
        #[arg(long, value_name = "URL")]
        from: String,
        /// A file whose first line is the source account's password
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Trust anchors (PEM) for the source's certificate instead of the system's
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Do not verify the source's certificate (tests only: the
        /// password then goes to whoever answers)
        #[arg(long, hide = true)]
        insecure: bool,
    },
    /// Why did a message go there? The decisions about a message (by queue
    /// id or Message-ID) or about every session of a client in a time
    /// window: each check and plugin with its verdict, reply and time,
    /// header edits, the route chosen and each delivery attempt, in order
    Trace {
        /// A queue id or a Message-ID
        #[arg(
            value_name = "ID",
            required_unless_present = "client",
            conflicts_with = "client"
        )]
        id: Option<String>,
        /// Every session from this client address instead (refused
        /// attempts included)
        #[arg(long, value_name = "IP")]
        client: Option<String>,
        /// With --client: from this time (RFC 3339, or a duration ago: 2h, 3d)
        #[arg(long, value_name = "TIME", requires = "client")]
        since: Option<String>,
        /// With --client: up to this time (RFC 3339, or a duration ago)
        #[arg(long, value_name = "TIME", requires = "client")]
        until: Option<String>,
        /// Print the traces as a JSON array
        #[arg(long)]
        json: bool,
    },
    /// The store: move an installation between engines
    #[command(subcommand)]
    Store(StoreCommand),
    /// Print the completion script for a shell (bash, zsh, fish, elvish,
    /// powershell), generated from this command line
    Completions { shell: clap_complete::Shell },
    /// Write the manual pages (tern.1, tern-SUBCOMMAND.1) into DIR,
    /// generated from this command line (the Debian package ships them)
    #[command(hide = true)]
    Manpages { dir: PathBuf },
    /// Write a production config for DOMAIN (real ports, TLS paths, a DKIM
    /// key, postmaster and abuse aliases, a first account) and print the
    /// DNS records to publish; never overwrites a config
    Init {
        domain: String,
        /// This server's name (MX target, PTR, certificate)
        #[arg(long, value_name = "HOST", default_value_t = String::new(), hide_default_value = true)]
        hostname: String,
        /// Where the config, DKIM key and certificate go (default: /etc/tern
        /// as root, else the current folder)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The store's folder (default: /var/lib/tern as root, else DIR/data)
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The account tern serve runs as (default: tern as root, else none)
        #[arg(long, value_name = "USER")]
        run_as: Option<String>,
        /// The first mail account (default: admin@DOMAIN); postmaster@ and abuse@ go to it
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
        /// Read the account's password from standard input (one line)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Users' Sieve scripts
    #[command(subcommand)]
    Sieve(SieveCommand),
}

#[derive(Subcommand)]
pub(crate) enum SieveCommand {
    /// Compile a Sieve script and print its errors as FILE:LINE:COLUMN: message
    Check { file: PathBuf },
    /// Save FILE as the user's script NAME (compiled first; refused with
    /// line:column when it does not compile, or past the [sieve] limits)
    Put {
        user: String,
        name: String,
        file: PathBuf,
    },
    /// Make NAME the user's active script ("--none": no script runs)
    Activate {
        user: String,
        #[arg(required_unless_present = "none")]
        name: Option<String>,
        #[arg(long, conflicts_with = "name")]
        none: bool,
    },
    /// The user's scripts, the active one marked
    List { user: String },
    /// Print the user's script NAME
    Get { user: String, name: String },
    /// Delete the user's script NAME (not the active one)
    Delete { user: String, name: String },
}

#[derive(Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy a whole store into an empty one and verify the copy (counts and
    /// checksums per space). Stop `tern serve` first.
    Migrate {
        /// sled:DATA_DIR or postgres:postgresql://user@host:port/db[?sslmode=…]
        #[arg(long, value_name = "STORE")]
        from: String,
        /// The destination, named the same way; it must hold no data yet
        #[arg(long, value_name = "STORE")]
        to: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum TlsCommand {
    /// Make the running server load its certificates again (like SIGHUP);
    /// if one fails to load, the ones in use stay and the error is shown
    Reload,
}

#[derive(Subcommand)]
pub(crate) enum DmarcCommand {
    /// Send the reports whose window has ended now (the server also does
    /// it by itself); --dry-run prints every report that would be sent,
    /// the window in progress included, and sends and forgets nothing
    Report {
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum DkimCommand {
    /// Write a new key (DIR/DOMAIN.SELECTOR.key) and print the DNS TXT record to publish
    Generate {
        domain: String,
        selector: String,
        #[arg(long, value_enum, default_value = "ed25519")]
        algorithm: KeyAlgorithm,
        /// Folder for the key file (default: the current folder)
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    Maildir,
    Mbox,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeyAlgorithm {
    Ed25519,
    Rsa,
}

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// The configured plugins and the hooks each exports (loads and type-checks each)
    List,
    /// What a component file imports and exports, and which hooks Tern would call
    Inspect { file: PathBuf },
    /// Make the running server load the plugins of its config file again (like SIGHUP)
    Reload,
    /// Run a plugin's hooks on a message outside a server and print each
    /// verdict; exit 0 when the message would be accepted, 1 when refused,
    /// 2 on error (the plugin failed, or bad input)
    Test(Box<TrialArgs>),
}

/// `tern plugin test`'s arguments: the plugin, the message and the session.
#[derive(clap::Args)]
pub(crate) struct TrialArgs {
    /// The plugin component (.wasm)
    #[arg(value_name = "PLUGIN")]
    pub file: PathBuf,
    /// A `[[plugin]] config` entry (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// The message (.eml)
    #[arg(long, value_name = "FILE")]
    pub mail: PathBuf,
    /// Envelope sender (default: the message's From:; "<>" for none)
    #[arg(long)]
    pub from: Option<String>,
    /// Envelope recipient (repeatable; default: the message's To: and Cc:)
    #[arg(long)]
    pub to: Vec<String>,
    /// The client's address
    #[arg(long, default_value = "192.0.2.1")]
    pub client: std::net::IpAddr,
    /// The name the client gives in EHLO
    #[arg(long, default_value = "client.example")]
    pub helo: String,
    /// The account the client logged in as (a submission session)
    #[arg(long)]
    pub login: Option<String>,
    /// Outgoing TCP the plugin may open, as `[[plugin]] connect` (repeatable)
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Vec<String>,
    /// A Sieve script to make each recipient's active script (for a
    /// delivery plugin such as plugins/sieve)
    #[arg(long, value_name = "FILE")]
    pub sieve: Option<PathBuf>,
    /// Canned DNS answers instead of the resolver (and of `[dns]` in
    /// --config): one record a line,
    /// `name. [TTL] TYPE value` (A, AAAA, MX, TXT; `;` starts a comment);
    /// a name not in the file does not exist (NXDOMAIN)
    #[arg(long, value_name = "FILE")]
    pub dns: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add an account
    Add {
        address: String,
        /// Read the password from standard input (one line)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and its mail
    Del { address: String },
    /// List accounts
    List,
    /// Change an account's password
    Passwd {
        address: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show an account's quota and usage, or set it: a size ("2GiB"),
    /// "none" (unlimited, whatever the default) or "default" ([users]
    /// default_quota again)
    Quota {
        address: String,
        size: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum QueueCommand {
    /// Show queued messages: id, size, arrival, sender, recipients and state
    List,
    /// Show one message's envelope and per-recipient state
    Show { id: String },
    /// Retry now: one message, or all
    Flush { id: Option<String> },
    /// Remove a message from the queue without delivering it
    Delete { id: String },
}
