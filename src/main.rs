//! The `tern` command line: parses arguments, loads the config, and calls
//! into the library. Nothing here knows how mail works.

use anyhow::{Context, Result, bail};
use clap::Parser;
use tern::admin::AdminRequest;
use tern::config::Config;

mod cli;

use cli::args::*;
use cli::commands::*;

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
            cli::logging::init(config.log_format, &config.node_id);
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
        Command::Plugin(PluginCommand::Test(args)) => {
            let input = trial_input(*args, &config).unwrap_or_else(|e| {
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
                UserCommand::Quota { address, size } => AdminRequest::UserQuota { address, size },
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
        Command::Backup { dir } => backup(&config, &dir),
        Command::Restore { dir } => restore(&config, &dir),
        Command::Export { user, format, dir } => {
            let format = match format {
                ExportFormat::Maildir => tern::mailbox_io::Format::Maildir,
                ExportFormat::Mbox => tern::mailbox_io::Format::Mbox,
            };
            export(&config, user, format, &absolute(&dir)?)
        }
        Command::Migrate {
            user,
            from,
            password_file,
            ca_file,
            insecure,
        } => {
            let password = migrate_password(password_file.as_deref())?;
            let ca_file = ca_file.map(|f| absolute(&f)).transpose()?;
            tern::mailbox_io::parse_url(&from)?;
            let source = tern::mailbox_io::PullSource {
                url: from,
                password,
                ca_file,
                insecure,
            };
            admin_request(&config, AdminRequest::Migrate { user, source })
        }
        Command::Import { user, path } => {
            let path = absolute(&path)?;
            admin_request(&config, AdminRequest::Import { user, path })
        }
        Command::Trace {
            id,
            client,
            since,
            until,
            json,
        } => {
            let query = tern::trace::query::TraceQuery {
                id,
                client,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                json,
            };
            admin_request(&config, AdminRequest::Trace(query))
        }
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
