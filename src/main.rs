//! The `tern` command line: parses arguments, loads the config, and calls
//! into the library. Nothing here knows how mail works.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use tern::admin::{self, AdminRequest};
use tern::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "A mail transfer agent with WebAssembly plugins"
)]
struct Cli {
    /// Config file (default: config/tern.toml if it exists, else built-in defaults)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
enum SieveCommand {
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
enum StoreCommand {
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
enum TlsCommand {
    /// Make the running server load its certificates again (like SIGHUP);
    /// if one fails to load, the ones in use stay and the error is shown
    Reload,
}

#[derive(Subcommand)]
enum DmarcCommand {
    /// Send the reports whose window has ended now (the server also does
    /// it by itself); --dry-run prints every report that would be sent,
    /// the window in progress included, and sends and forgets nothing
    Report {
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum DkimCommand {
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
enum KeyAlgorithm {
    Ed25519,
    Rsa,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// The configured plugins and the hooks each exports (loads and type-checks each)
    List,
    /// What a component file imports and exports, and which hooks Tern would call
    Inspect { file: PathBuf },
    /// Make the running server load the plugins of its config file again (like SIGHUP)
    Reload,
    /// Run a plugin's hooks on a message outside a server and print each
    /// verdict; exit 0 when the message would be accepted, 1 when refused,
    /// 2 on error (the plugin failed, or bad input)
    Test {
        file: PathBuf,
        /// A `[[plugin]] config` entry (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// The message (.eml)
        #[arg(long, value_name = "FILE")]
        mail: PathBuf,
        /// Envelope sender (default: the message's From:; "<>" for none)
        #[arg(long)]
        from: Option<String>,
        /// Envelope recipient (repeatable; default: the message's To: and Cc:)
        #[arg(long)]
        to: Vec<String>,
        /// The client's address
        #[arg(long, default_value = "192.0.2.1")]
        client: std::net::IpAddr,
        #[arg(long, default_value = "client.example")]
        helo: String,
        /// The account the client logged in as (a submission session)
        #[arg(long)]
        login: Option<String>,
        /// Outgoing TCP the plugin may open, as `[[plugin]] connect` (repeatable)
        #[arg(long, value_name = "HOST:PORT")]
        connect: Vec<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
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
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Show queued messages: id, size, arrival, sender, recipients and state
    List,
    /// Show one message's envelope and per-recipient state
    Show { id: String },
    /// Retry now: one message, or all
    Flush { id: Option<String> },
    /// Remove a message from the queue without delivering it
    Delete { id: String },
}

fn main() {
    release_big_allocations();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("tern: {e:#}");
        std::process::exit(1);
    }
}

/// Every password check allocates argon2's 19 MiB work area on a blocking
/// thread. glibc's dynamic mmap threshold rises after the first such block
/// is freed, so later ones come from per-thread arenas that keep the memory:
/// under many logins the server grew by ~14 MiB per login (imaptest's
/// stress mode: about 1 GiB). A fixed threshold keeps big blocks on mmap,
/// returned to the system when freed.
fn release_big_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// Logs to stderr: text (coloured on a terminal) or, with `log_format =
/// "json"`, one JSON object per line (timestamp, level, target, fields).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Dkim(DkimCommand::Generate {
        domain,
        selector,
        algorithm,
        out,
    }) = &cli.command
    {
        // Needs no config: it only writes a file and prints.
        let algorithm = match algorithm {
            KeyAlgorithm::Ed25519 => tern::config::DkimAlgorithm::Ed25519Sha256,
            KeyAlgorithm::Rsa => tern::config::DkimAlgorithm::RsaSha256,
        };
        let key = tern::mailauth::keygen::generate(domain, selector, algorithm, out)?;
        println!("private key: {}", key.path.display());
        println!("{}", key.zone_line());
        return Ok(());
    }
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "tern", &mut std::io::stdout());
            return Ok(());
        }
        Command::Manpages { dir } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
            return Ok(());
        }
        _ => {}
    }
    if let Command::Init {
        domain,
        hostname,
        dir,
        data_dir,
        run_as,
        account,
        password_stdin,
    } = &cli.command
    {
        // Writes a config rather than reading one.
        return init(
            domain,
            hostname,
            dir.clone(),
            data_dir.clone(),
            run_as.clone(),
            account.clone(),
            *password_stdin,
        );
    }
    if let Command::Sieve(SieveCommand::Check { file }) = &cli.command {
        // Needs no config: it only reads the script.
        return sieve_check(file);
    }
    if let Command::Store(StoreCommand::Migrate { from, to }) = &cli.command {
        // Names both stores itself: no config needed.
        return store_migrate(from, to);
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            init_logging(config.log_format);
            // Trust anchors the config names must load: a queue that cannot
            // verify its smarthost would accept mail it can never send.
            tern::outbound::policy::check(&config)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let source = config_source(cli.config.as_deref());
            runtime.block_on(tern::server::serve_with_reload(config, source))?;
            Ok(())
        }
        Command::CheckConfig => {
            for w in tern::tls::check(&config)? {
                eprintln!("warning: {w}");
            }
            tern::outbound::policy::check(&config)?;
            tern::mailauth::Signer::load(&config.dkim, config.auth.arc_seal.as_deref())?;
            if let Some(w) =
                tern::mailauth::arc_seal_warning(&config.dkim, config.auth.arc_seal.as_deref())
            {
                eprintln!("warning: {w}");
            }
            for d in &config.local_domains {
                let postmaster = format!("postmaster@{d}");
                if !config.aliases.contains_key(&postmaster) {
                    eprintln!(
                        "warning: no alias for {postmaster} (RFC 5321 requires it; add one under [aliases] unless it is a user)"
                    );
                }
            }
            let plugins = check_plugins(&config)?;
            println!(
                "config ok: {} listener(s), {} local domain(s), {} plugin(s)",
                config.listen.len(),
                config.local_domains.len(),
                plugins.len()
            );
            Ok(())
        }
        Command::Plugin(PluginCommand::List) => {
            let plugins = check_plugins(&config)?;
            if plugins.is_empty() {
                println!("no plugins configured");
            }
            for (p, hooks) in config.plugin.iter().zip(plugins) {
                println!(
                    "{}\t{}\thooks: {}\tmax_memory: {} bytes\ttimeout: {:?}\ton_error: {:?}",
                    p.name,
                    p.path.display(),
                    hooks.join(","),
                    p.max_memory.0,
                    p.timeout.0,
                    p.on_error
                );
            }
            Ok(())
        }
        Command::Plugin(PluginCommand::Test {
            file,
            settings,
            mail,
            from,
            to,
            client,
            helo,
            login,
            connect,
        }) => {
            let input = trial_input(
                file, &settings, &mail, from, to, client, helo, login, connect, &config,
            )
            .unwrap_or_else(|e| {
                eprintln!("tern: {e:#}");
                std::process::exit(2)
            });
            plugin_test(&input)
        }
        Command::Plugin(PluginCommand::Reload) => {
            admin_request(&config, AdminRequest::PluginReload)
        }
        Command::Tls(TlsCommand::Reload) => admin_request(&config, AdminRequest::TlsReload),
        Command::Plugin(PluginCommand::Inspect { file }) => {
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let i = tern::hooks::engine::inspect(&file, &name)?;
            println!("file: {}", file.display());
            println!(
                "size: {} bytes, compiled in {} ms",
                i.size,
                i.compile_time.as_millis()
            );
            println!(
                "hooks: {}",
                if i.hooks.is_empty() {
                    "none".to_string()
                } else {
                    i.hooks.join(", ")
                }
            );
            match &i.declared {
                Some(names) if names.is_empty() => println!("calls: none (declares no hook)"),
                Some(names) => println!("calls: {} (declared in tern:hooks)", names.join(", ")),
                None => println!("calls: every hook of those interfaces (no tern:hooks section)"),
            }
            println!("imports:");
            for name in &i.imports {
                println!("  {name}");
            }
            println!("exports:");
            for name in &i.exports {
                println!("  {name}");
            }
            if let Some(problem) = i.problem {
                bail!("{}: Tern would not load it: {problem}", file.display());
            }
            Ok(())
        }
        Command::User(u) => {
            let request = match u {
                UserCommand::Add {
                    address,
                    password_stdin,
                } => {
                    let password = read_password(password_stdin)?;
                    AdminRequest::UserAdd { address, password }
                }
                UserCommand::Del { address } => AdminRequest::UserDel { address },
                UserCommand::List => AdminRequest::UserList,
                UserCommand::Passwd {
                    address,
                    password_stdin,
                } => {
                    let password = read_password(password_stdin)?;
                    AdminRequest::UserPasswd { address, password }
                }
            };
            admin_request(&config, request)
        }
        Command::Sieve(c) => {
            let request = match c {
                SieveCommand::Put { user, name, file } => {
                    let script = std::fs::read(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let script = String::from_utf8(script).map_err(|_| {
                        anyhow::anyhow!("{}: the script is not UTF-8", file.display())
                    })?;
                    AdminRequest::SievePut { user, name, script }
                }
                SieveCommand::Activate { user, name, .. } => {
                    AdminRequest::SieveActivate { user, name }
                }
                SieveCommand::List { user } => AdminRequest::SieveList { user },
                SieveCommand::Get { user, name } => AdminRequest::SieveGet { user, name },
                SieveCommand::Delete { user, name } => AdminRequest::SieveDelete { user, name },
                SieveCommand::Check { .. } => return Ok(()),
            };
            admin_request(&config, request)
        }
        Command::Dkim(_)
        | Command::Store(_)
        | Command::Init { .. }
        | Command::Completions { .. }
        | Command::Manpages { .. } => Ok(()),
        Command::Doctor { domains, json } => doctor(&config, &domains, json),
        Command::Dmarc(DmarcCommand::Report { dry_run }) => dmarc_report(&config, dry_run),
        Command::Queue(q) => {
            let request = match q {
                QueueCommand::List => AdminRequest::QueueList,
                QueueCommand::Show { id } => AdminRequest::QueueShow { id },
                QueueCommand::Flush { id } => AdminRequest::QueueFlush { id },
                QueueCommand::Delete { id } => AdminRequest::QueueDelete { id },
            };
            admin_request(&config, request)
        }
    }
}

/// The envelope and message `tern plugin test` runs on.
#[allow(clippy::too_many_arguments)]
fn trial_input(
    plugin: PathBuf,
    settings: &[String],
    mail: &Path,
    from: Option<String>,
    to: Vec<String>,
    client: std::net::IpAddr,
    helo: String,
    login: Option<String>,
    connect: Vec<String>,
    config: &Config,
) -> Result<tern::hooks::trial::TrialInput> {
    let message = std::fs::read(mail).with_context(|| format!("reading {}", mail.display()))?;
    let settings = settings
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => bail!("--set {kv}: write KEY=VALUE"),
        })
        .collect::<Result<Vec<_>>>()?;
    let (header_from, header_to) = tern::hooks::trial::header_addresses(&message);
    let to = if to.is_empty() { header_to } else { to };
    if to.is_empty() {
        bail!("no recipient: give --to, or a message with To: or Cc:");
    }
    Ok(tern::hooks::trial::TrialInput {
        plugin,
        settings,
        connect,
        from: from.or(header_from).unwrap_or_default(),
        to,
        message,
        client,
        helo,
        login,
        dns: config.dns.clone(),
    })
}

/// `tern plugin test`: prints each call and exits 0 (accepted), 1
/// (refused) or 2 (the plugin failed, or the input was wrong).
fn plugin_test(input: &tern::hooks::trial::TrialInput) -> Result<()> {
    // The plugin's log lines, as they come, on standard output.
    tracing_subscriber::fmt()
        .with_env_filter(
            // The plugin's own lines (host.rs logs them), and warnings.
            tracing_subscriber::EnvFilter::try_from_env("TERN_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,tern::hooks::host=trace")
            }),
        )
        .with_writer(std::io::stdout)
        .with_ansi(std::io::stdout().is_terminal())
        .without_time()
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let report = match runtime.block_on(tern::hooks::trial::run(input)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tern: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "plugin: {} (hooks: {})",
        report.plugin,
        report.hooks.join(", ")
    );
    for c in &report.calls {
        println!(
            "{:<18} {:<28} {:>9.3} ms  {}",
            c.hook,
            c.subject,
            c.took.as_secs_f64() * 1000.0,
            c.answer
        );
    }
    let code = match (&report.refused, report.failures) {
        (_, n) if n > 0 => {
            println!("error: the plugin failed {n} time(s) (see above)");
            2
        }
        (Some(r), _) => {
            println!("refused: {r}");
            1
        }
        (None, _) => {
            println!("accepted for {}", report.accepted.join(", "));
            0
        }
    };
    std::process::exit(code)
}

/// `tern store migrate`: copies, verifies, and prints what was moved.
fn store_migrate(from: &str, to: &str) -> Result<()> {
    use tern::store::backend::{Backend, EngineSettings, migrate};
    let from = EngineSettings::parse_location(from)?;
    let to = EngineSettings::parse_location(to)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let source = Backend::open(&from)
            .await
            .with_context(|| format!("opening the source ({})", from.describe()))?;
        let destination = Backend::open(&to)
            .await
            .with_context(|| format!("opening the destination ({})", to.describe()))?;
        let summaries = migrate::migrate(&source, &destination).await?;
        for s in &summaries {
            println!(
                "{:?}: {} keys, {} bytes, checksum {} (equal on both sides)",
                s.space, s.keys, s.bytes, s.checksum
            );
        }
        destination.sync().await?;
        println!("copied {} to {}", from.describe(), to.describe());
        Ok(())
    })
}

/// The file the config came from, for reloads.
/// `tern sieve check FILE`: ok, or the first compile error at line:column.
fn sieve_check(file: &Path) -> Result<()> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("{}: the script is not UTF-8", file.display()))?;
    match tern_sieve::compile(&text) {
        Ok(_) => {
            println!("{}: ok", file.display());
            Ok(())
        }
        Err(e) => bail!("{}:{e}", file.display()),
    }
}

fn config_source(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(tern::config::DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
    }
}

/// Loads and type-checks every configured plugin (compiling it, without a
/// store or running any plugin code); the hooks each exports.
fn check_plugins(config: &Config) -> Result<Vec<Vec<&'static str>>> {
    let mut out = Vec::new();
    for p in &config.plugin {
        let i = tern::hooks::engine::inspect(&p.path, &p.name)?;
        if let Some(problem) = i.problem {
            bail!("plugin {:?}: {}: {problem}", p.name, p.path.display());
        }
        let grants = tern::hooks::network::Grants::parse(&p.connect)
            .map_err(|e| anyhow::anyhow!("plugin {:?}: {e}", p.name))?;
        let http = tern::hooks::http_grant::HttpGrants::parse(&p.http)
            .map_err(|e| anyhow::anyhow!("plugin {:?}: {e}", p.name))?;
        let imports = || i.imports.iter().filter_map(|s| s.split(' ').next());
        if let Some(problem) = tern::hooks::network::ungranted_http_import(imports(), &http) {
            bail!("plugin {:?}: {}: {problem}", p.name, p.path.display());
        }
        if let Some(warning) = tern::hooks::network::ungranted_import(imports(), &grants) {
            eprintln!(
                "warning: plugin {:?}: {}: {warning}",
                p.name,
                p.path.display()
            );
        }
        if let Some(d) = &p.directory
            && !d.is_dir()
        {
            bail!(
                "plugin {:?}: directory {} is not a folder",
                p.name,
                d.display()
            );
        }
        out.push(i.hooks);
    }
    Ok(out)
}

/// Sends the request to a running server, or runs it on the store directly.
fn admin_request(config: &Config, request: AdminRequest) -> Result<()> {
    let runtime = current_thread()?;
    if through_server(&runtime, config, &request)? {
        return Ok(());
    }
    let store = open_store(&runtime, config)?;
    let output = runtime.block_on(admin::execute(&store, config, None, request))?;
    runtime.block_on(store.flush())?;
    print!("{output}");
    std::io::stdout().flush()?;
    Ok(())
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Has a running server carried out `request` (its output printed)?
fn through_server(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    request: &AdminRequest,
) -> Result<bool> {
    let Some(response) = runtime.block_on(tern::control::request(&config.data_dir, request))?
    else {
        return Ok(false);
    };
    if !response.ok {
        bail!("{}", response.output);
    }
    print!("{}", response.output);
    Ok(true)
}

/// `tern dmarc report`: through the running server, else (a dry run
/// only) on the store directly.
fn dmarc_report(config: &Config, dry_run: bool) -> Result<()> {
    let request = AdminRequest::DmarcReport { dry_run };
    if !dry_run {
        return admin_request(config, request);
    }
    let runtime = current_thread()?;
    if through_server(&runtime, config, &request)? {
        return Ok(());
    }
    let store = open_store(&runtime, config)?;
    let output = runtime.block_on(async {
        let mailauth = tern::mailauth::MailAuth::new(config)?;
        anyhow::Ok(tern::dmarc::report_now(&store, config, &mailauth, None).await?)
    })?;
    print!("{output}");
    std::io::stdout().flush()?;
    Ok(())
}

/// `tern init`: fills in the defaults (root: /etc/tern, /var/lib/tern,
/// user tern), writes, and prints what to publish.
fn init(
    domain: &str,
    hostname: &str,
    dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    run_as: Option<String>,
    account: Option<String>,
    password_stdin: bool,
) -> Result<()> {
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let dir = dir.unwrap_or_else(|| PathBuf::from(if root { "/etc/tern" } else { "." }));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    let data_dir = data_dir.unwrap_or_else(|| {
        if root {
            PathBuf::from("/var/lib/tern")
        } else {
            dir.join("data")
        }
    });
    let data_dir = if data_dir.is_relative() {
        std::env::current_dir()?.join(data_dir)
    } else {
        data_dir
    };
    let hostname = match hostname.trim() {
        "" => format!("mail.{domain}"),
        h => h.to_ascii_lowercase(),
    };
    let first_account = account.unwrap_or_else(|| format!("admin@{domain}"));
    if !password_stdin && std::io::stdin().is_terminal() {
        eprintln!("The password of {first_account}:");
    }
    let password = read_password(password_stdin)?;
    let options = tern::init::Options {
        domain,
        hostname,
        dir,
        data_dir,
        run_as: run_as.or_else(|| root.then(|| "tern".to_string())),
        first_account,
        password,
    };
    let outcome = current_thread()?.block_on(tern::init::run(&options))?;
    println!("wrote {}", outcome.config.display());
    println!("DKIM key: {}", outcome.dkim_key.display());
    println!(
        "certificate: {} (self-signed placeholder: replace it with a CA-signed one)",
        outcome.certificate.display()
    );
    println!(
        "account: {} (postmaster and abuse go to it)",
        options.first_account
    );
    println!();
    println!("; Publish these records in the zone of {}:", options.domain);
    for r in &outcome.records {
        println!("{r}");
    }
    println!();
    println!(
        "Then: tern check-config --config {0}; tern doctor --config {0}",
        outcome.config.display()
    );
    Ok(())
}

/// `tern doctor`: the report on stdout; exit status 1 when it has errors.
fn doctor(config: &Config, domains: &[String], json: bool) -> Result<()> {
    let report = current_thread()?.block_on(tern::doctor::run(config, domains))?;
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    std::io::stdout().flush()?;
    match report.errors() {
        0 => Ok(()),
        n => bail!("doctor: {n} error(s); publish the records shown and run it again"),
    }
}

/// Opens the store of a stopped server. Run as root with `user` set, the
/// command first becomes that account, as `tern serve` does, so that the
/// files it creates stay the server's.
fn open_store(runtime: &tokio::runtime::Runtime, config: &Config) -> Result<tern::store::Store> {
    use tern::service::privileges;
    use tern::store::backend::{Backend, EngineSettings};
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0
        && let Some(account) = privileges::drop_privileges(config)?.account()
    {
        privileges::check_data_dir(&config.data_dir, account)?;
    }
    let engine = EngineSettings::from_config(config);
    runtime
        .block_on(async {
            let backend = Backend::open(&engine).await?;
            tern::store::Store::on(backend).await
        })
        .with_context(|| format!("opening the store ({})", engine.describe()))
}

fn read_password(from_stdin: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if !from_stdin && stdin.is_terminal() {
        eprint!("Password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password given (use --password-stdin and pipe it in)");
    }
    Ok(password)
}
