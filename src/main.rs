//! The `tern` command line: parses arguments, loads the config, and calls
//! into the library. Nothing here knows how mail works.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use tern::admin::{self, AdminRequest};
use tern::config::Config;

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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            init_logging();
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(tern::server::serve(config))?;
            Ok(())
        }
        Command::CheckConfig => {
            tern::tls::check(&config)?;
            for d in &config.local_domains {
                let postmaster = format!("postmaster@{d}");
                if !config.aliases.contains_key(&postmaster) {
                    eprintln!(
                        "warning: no alias for {postmaster} (RFC 5321 requires it; add one under [aliases] unless it is a user)"
                    );
                }
            }
            println!(
                "config ok: {} listener(s), {} local domain(s)",
                config.listen.len(),
                config.local_domains.len()
            );
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

/// Sends the request to a running server, or runs it on the store directly.
fn admin_request(config: &Config, request: AdminRequest) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(response) = runtime.block_on(tern::control::request(&config.data_dir, &request))? {
        if !response.ok {
            bail!("{}", response.output);
        }
        print!("{}", response.output);
        return Ok(());
    }
    let store = open_store(&config.data_dir)?;
    let output = admin::execute(&store, config, None, request)?;
    runtime.block_on(store.flush())?;
    print!("{output}");
    std::io::stdout().flush()?;
    Ok(())
}

fn open_store(data_dir: &Path) -> Result<tern::store::Store> {
    tern::store::Store::open(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))
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
