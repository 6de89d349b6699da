//! What the subcommands other than `serve` do: the admin requests (through
//! the running server's control socket, or on the store), plugin checks and
//! `tern plugin test`, store migration, DMARC reports, `tern init` and
//! `tern doctor`. Each takes what it needs; none knows how mail works.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use tern::admin::{self, AdminRequest};
use tern::config::Config;

/// The envelope and message `tern plugin test` runs on.
pub(crate) fn trial_input(
    args: super::args::TrialArgs,
    config: &Config,
) -> Result<tern::hooks::trial::TrialInput> {
    let super::args::TrialArgs {
        file,
        settings,
        mail,
        from,
        to,
        client,
        helo,
        login,
        connect,
        sieve,
        dns,
    } = args;
    let message = std::fs::read(&mail).with_context(|| format!("reading {}", mail.display()))?;
    let sieve = sieve
        .map(|p| std::fs::read(&p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let canned_dns = dns
        .map(|p| -> Result<_> {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            tern::dns::Canned::parse(&text).with_context(|| format!("--dns {}", p.display()))
        })
        .transpose()?;
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
        plugin: file,
        settings,
        connect,
        from: from.or(header_from).unwrap_or_default(),
        to,
        message,
        client,
        helo,
        login,
        dns: config.dns.clone(),
        canned_dns,
        sieve,
    })
}

/// `tern plugin test`: prints each call and exits 0 (accepted), 1
/// (refused) or 2 (the plugin failed, or the input was wrong).
pub(crate) fn plugin_test(input: &tern::hooks::trial::TrialInput) -> Result<()> {
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
pub(crate) fn store_migrate(from: &str, to: &str) -> Result<()> {
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
pub(crate) fn sieve_check(file: &Path) -> Result<()> {
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

pub(crate) fn config_source(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(tern::config::DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
    }
}

/// Loads and type-checks every configured plugin (compiling it, without a
/// store or running any plugin code); the hooks each exports.
pub(crate) fn check_plugins(config: &Config) -> Result<Vec<Vec<&'static str>>> {
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
        if let Some(problem) = tern::hooks::network::ungranted_import(imports(), &grants) {
            bail!("plugin {:?}: {}: {problem}", p.name, p.path.display());
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
pub(crate) fn admin_request(config: &Config, request: AdminRequest) -> Result<()> {
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

pub(crate) fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Has a running server carried out `request` (its output printed)?
pub(crate) fn through_server(
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
pub(crate) fn dmarc_report(config: &Config, dry_run: bool) -> Result<()> {
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
pub(crate) fn init(
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
pub(crate) fn doctor(config: &Config, domains: &[String], json: bool) -> Result<()> {
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
pub(crate) fn open_store(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
) -> Result<tern::store::Store> {
    let backend = open_backend(runtime, config)?;
    runtime
        .block_on(tern::store::Store::on(backend))
        .context("opening the store")
}

/// The engine of a stopped server, as its account (see `open_store`).
fn open_backend(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
) -> Result<tern::store::backend::Backend> {
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
        .block_on(Backend::open(&engine))
        .with_context(|| format!("opening the store ({})", engine.describe()))
}

/// `path` made absolute (a running server resolves it, from elsewhere).
pub(crate) fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(std::path::absolute(path)?)
}

/// `tern backup DIR`: the running server streams a snapshot of its store
/// over the control socket and this command writes the files; with no
/// server running, the store is read directly.
pub(crate) fn backup(config: &Config, dir: &Path) -> Result<()> {
    use tern::store::backend::dump::{self, DirSink, stream};
    let dir = absolute(dir)?;
    let runtime = current_thread()?;
    let request = AdminRequest::Backup;
    let manifest = match runtime.block_on(tern::control::open(&config.data_dir, &request))? {
        Some(socket) => {
            let mut sink = DirSink::create(&dir)?;
            runtime.block_on(stream::receive(socket, &mut sink))?
        }
        None => {
            // As the server's account (see open_store), files included.
            let backend = open_backend(&runtime, config)?;
            let mut sink = DirSink::create(&dir)?;
            runtime.block_on(dump::snapshot_into(&backend, &mut sink))?
        }
    };
    println!(
        "backed up the store ({}) into {}, as of {}",
        manifest.engine,
        dir.display(),
        manifest.created
    );
    for s in &manifest.spaces {
        println!("{}: {} keys, {} bytes", s.space, s.keys, s.bytes);
    }
    Ok(())
}

/// `tern export`: the running server streams the folders over the control
/// socket and this command writes the files (as its user, where it can
/// write); with no server running, the store is read directly.
pub(crate) fn export(
    config: &Config,
    user: String,
    format: tern::mailbox_io::Format,
    dir: &Path,
) -> Result<()> {
    use tern::mailbox_io::{FileSink, receive_export};
    let runtime = current_thread()?;
    let request = AdminRequest::ExportStream { user: user.clone() };
    let Some(socket) = runtime.block_on(tern::control::open(&config.data_dir, &request))? else {
        let dir = dir.to_path_buf();
        return admin_request(config, AdminRequest::Export { user, format, dir });
    };
    let mut sink = FileSink::create(format, dir)?;
    let tally = runtime.block_on(receive_export(socket, &mut sink))?;
    println!("exported {tally} of {user} into {}", dir.display());
    Ok(())
}

/// The source account's password for `tern migrate`: the first line of
/// `file`, else `$TERN_MIGRATE_PASSWORD` (never an argument: those show in
/// `ps`).
pub(crate) fn migrate_password(file: Option<&Path>) -> Result<String> {
    let password = match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        None => std::env::var("TERN_MIGRATE_PASSWORD").unwrap_or_default(),
    };
    if password.is_empty() {
        bail!("no password: give --password-file FILE or set TERN_MIGRATE_PASSWORD");
    }
    Ok(password)
}

/// `tern restore DIR`: the backup checked, then loaded into the configured
/// store, which must be empty; never while a server runs on it.
pub(crate) fn restore(config: &Config, dir: &Path) -> Result<()> {
    use tern::store::backend::{EngineSettings, dump};
    let runtime = current_thread()?;
    if std::os::unix::net::UnixStream::connect(tern::control::socket_path(&config.data_dir)).is_ok()
    {
        bail!(
            "a server is running on {}: stop it, and restore into an empty data directory",
            config.data_dir.display()
        );
    }
    // Opened (and checked) before the command becomes the server's account.
    let opened = dump::open(dir)?;
    if let EngineSettings::Sled { data_dir } = EngineSettings::from_config(config)
        && let Ok(mut entries) = std::fs::read_dir(&data_dir)
        && entries.next().is_some()
    {
        bail!(
            "{} is not empty: restore into an empty (or absent) data directory",
            data_dir.display()
        );
    }
    let backend = open_backend(&runtime, config)?;
    let manifest = runtime.block_on(dump::restore_opened(opened, &backend))?;
    println!(
        "restored the backup of {} (taken at {}, from {}) into {}",
        dir.display(),
        manifest.created,
        manifest.engine,
        EngineSettings::from_config(config).describe()
    );
    for s in &manifest.spaces {
        println!("{}: {} keys, {} bytes (verified)", s.space, s.keys, s.bytes);
    }
    Ok(())
}

pub(crate) fn read_password(from_stdin: bool) -> Result<String> {
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

/// A `--since`/`--until` time: RFC 3339, or a duration ago ("2h", "3d"),
/// as unix milliseconds.
pub(crate) fn parse_time(text: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.timestamp_millis());
    }
    let ago = tern::config::ConfigDuration::parse(text.trim()).map_err(|_| {
        anyhow::anyhow!("{text:?} is neither an RFC 3339 time nor a duration like 2h")
    })?;
    let ago = i64::try_from(ago.0.as_millis()).unwrap_or(i64::MAX);
    Ok(chrono::Utc::now().timestamp_millis().saturating_sub(ago))
}
