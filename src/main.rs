//! The `passerelle` command line: parse arguments, load configuration, start.
//!
//! Above every room, it may import any: `serve`, `demo`, `check` and `preview` hand over to
//! `app/`; `keys`, `hash-password` and `migrate` call their own room directly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use passerelle::config::{Config, LogFormat, Severity};

#[derive(Parser)]
#[command(
    name = "passerelle",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PASSERELLE_BUILD_INFO"), ")"),
    about = "Self-hosted SSO identity provider bridge for Lucca (SAML 2.0 + OpenID Connect)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the identity provider.
    Serve {
        /// Configuration file (default: ./passerelle.toml when present, else built-in defaults).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run a self-contained demo: the IdP, demo users, a demo client and a landing page.
    Demo {
        /// Address to listen on (also PASSERELLE_LISTEN).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Validate the configuration; one line per problem, naming the key.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show or rotate the signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
    /// Print an argon2id hash of a password read from standard input, for `password_hash`.
    HashPassword,
    /// The store: move this node's SQLite data to PostgreSQL.
    Store {
        #[command(subcommand)]
        action: StoreAction,
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
    /// Show what a person would receive: groups, the rows that mapped them, roles, claims.
    Preview {
        /// The person's email (or login).
        user: String,
        /// Only this OIDC client.
        #[arg(long)]
        client_id: Option<String>,
        /// Only this SAML service provider (entity id).
        #[arg(long)]
        sp: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Move the people of a CSV/JSON file to SSO through a running server; writes FILE.report.csv.
    Migrate {
        file: PathBuf,
        /// Only report what would be done.
        #[arg(long)]
        dry_run: bool,
        /// The server (default: server.public_url of the configuration).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, env = "PASSERELLE_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Copy every table of the SQLite database in server.data_dir into an empty PostgreSQL
    /// database (one transaction, row counts verified); then set [store] url to it. Stop the
    /// node first.
    Migrate {
        /// The target: postgres://USER:PASSWORD@HOST:PORT/DATABASE (must hold no data).
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Print each key: kid, fingerprint, validity and state.
    Show,
    /// Stage a next key: published at once, signing after `keys.rotation_delay`.
    Rotate,
    /// PostgreSQL: seal every key of the shared ring under `keys.encryption_key`, opening each
    /// with whichever configured key sealed it; then `previous_encryption_keys` can go.
    Rewrap,
    /// PostgreSQL: copy a keys directory (keyring.json and its PEM files) into the database's
    /// empty key ring, so the nodes keep signing with the single node's keys.
    Import {
        /// The keys directory (default: server.keys_dir).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// The store for `passerelle keys` in PostgreSQL mode (the `[keys]` settings checked first, as
/// `serve` checks them); `None` in the SQLite mode, whose keys are files.
async fn shared_store(config: &Config) -> Result<Option<passerelle::store::Store>, String> {
    if config.store.url().is_none() {
        return Ok(None);
    }
    let errors: Vec<String> = config
        .validate()
        .into_iter()
        .filter(|p| p.severity == Severity::Error && p.key.starts_with("keys."))
        .map(|p| p.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let store_config =
        passerelle::store::StoreConfig::from_settings(config.store.url(), &config.server.data_dir)
            .map_err(|e| format!("error: store.url: {e}"))?;
    passerelle::store::open(&store_config)
        .await
        .map(Some)
        .map_err(|e| format!("error: {e}"))
}

async fn keys_command(config: &Config, action: KeysAction) -> Result<ExitCode, String> {
    use passerelle::keys::Keys;
    let store = shared_store(config).await?;
    let needs_database = |what: &str| {
        format!(
            "error: `passerelle keys {what}` works on the key ring kept in PostgreSQL: set [store] url \
             (the SQLite mode keeps its keys as files in server.keys_dir)"
        )
    };
    let keys = match (&action, &store) {
        (KeysAction::Rewrap, Some(store)) => {
            let done = passerelle::keys::rewrap(store.signing_keys().clone(), &config.keys)
                .await
                .map_err(|e| format!("error: {e}"))?;
            for kid in &done.resealed {
                println!("{kid}  sealed under keys.encryption_key");
            }
            for kid in &done.current {
                println!("{kid}  already sealed under keys.encryption_key");
            }
            println!(
                "done: {} key(s) rewrapped; previous_encryption_keys can now be removed from every node",
                done.resealed.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        (KeysAction::Import { from }, Some(store)) => {
            let dir = from.as_deref().unwrap_or(&config.server.keys_dir);
            let kids = passerelle::keys::import_dir(dir, store.signing_keys().clone(), &config.keys)
                .await
                .map_err(|e| format!("error: {e}"))?;
            println!(
                "copied {} key(s) from {} into the database:",
                kids.len(),
                dir.display()
            );
            for kid in kids {
                println!("  {kid}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        (KeysAction::Rewrap, None) => return Err(needs_database("rewrap")),
        (KeysAction::Import { .. }, None) => return Err(needs_database("import")),
        (_, Some(store)) => Keys::open_shared(store.signing_keys().clone(), &config.keys).await,
        (_, None) => Keys::load_or_generate(&config.server.keys_dir, &config.keys),
    }
    .map_err(|e| format!("error: {e}"))?;
    if let KeysAction::Rotate = action {
        let staged = keys.rotate().await.map_err(|e| format!("error: {e}"))?;
        println!(
            "staged key {} — published now, signs from {}",
            staged.kid, staged.signs_from
        );
        println!(
            "running servers pick it up within keys.reload_interval ({})",
            humantime::format_duration(config.keys.reload_interval)
        );
    }
    for k in keys.status() {
        println!(
            "{}  {}\n    sha256 {}\n    valid {} .. {}\n    signs from {}",
            k.kid, k.state, k.fingerprint_sha256, k.not_before, k.not_after, k.signs_from
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn default_config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit.or_else(|| Some(PathBuf::from("passerelle.toml")).filter(|p| p.exists()))
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    Config::load(path).map_err(|e| format!("error: {e}"))
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("passerelle-preview-{}", std::process::id()));
    passerelle::store::create_private_dir(&dir)
        .map_err(|e| format!("error: cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Files and directories this process creates are private to its user (0600 / 0700): the
/// database holds session ids, `keys_dir` private keys, migration reports people's data.
/// The store and the key ring also set these modes explicitly, for library callers.
fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask(2) only swaps the process file-mode mask; it cannot fail, touches no memory
    // of ours, and runs before any thread is started.
    unsafe {
        libc::umask(0o077);
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn")
    });
    // Logs are diagnostics: stderr, so stdout stays for what a command prints (the demo's
    // banner, `keys show`, a hash). Colours only on a terminal, and never with NO_COLOR set:
    // escape codes in a journal or a log file are noise.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The async workers and the signing pool follow the cores this process may run on (its CPU
/// affinity, e.g. `taskset`, and cgroup quota), not the machine's.
fn log_runtime() {
    tracing::info!(
        target: "passerelle::runtime",
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        signing_pool = passerelle::cpu::pool().size(),
        "async workers and signing pool sized to the cores this process may use"
    );
}

/// At most two malloc arenas. glibc gives each thread that allocates an arena of its own (up to
/// eight per core): the async workers, the signing pool and each SQLite connection's thread
/// would each keep their own partly used heap. Two keep the resident size of a server with
/// many sessions down, at no measurable cost in allocation speed for a process that spends its
/// time in signatures and SQLite.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) only sets an allocator parameter; called first thing in main, before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    restrict_umask();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve { config } => {
            let path = default_config_path(config);
            let config = load(path.as_deref())?;
            init_logging(config.server.log_format);
            log_runtime();
            match &path {
                Some(p) => tracing::info!(config = %p.display(), "starting passerelle"),
                None => tracing::warn!("no configuration file: starting on built-in defaults"),
            }
            let options = passerelle::app::StartOptions {
                demo: false,
                config_path: path.clone(),
            };
            serve(config, options, None).await
        }
        Command::Demo { listen } => {
            init_logging(LogFormat::Text);
            let config =
                passerelle::demo::demo_config(listen).map_err(|e| format!("error: {e}"))?;
            let banner = passerelle::demo::banner(&config);
            serve(
                config,
                passerelle::app::StartOptions {
                    demo: true,
                    config_path: None,
                },
                Some(banner),
            )
            .await
        }
        Command::Check { config } => {
            // Everything `check` finds goes to stdout, one line per problem (a parse error adds
            // the offending line), then the count: its output is its answer, and one stream
            // keeps the order. Logs, if any, stay on stderr.
            let path = default_config_path(config);
            let (config, mut problems) = match Config::load_for_check(path.as_deref()) {
                Ok(loaded) => loaded,
                Err(e) => {
                    println!("error: {e}");
                    println!("1 error(s)");
                    return Ok(ExitCode::FAILURE);
                }
            };
            problems.extend(passerelle::app::check::check(&config).await);
            for p in &problems {
                println!("{p}");
            }
            let count = |severity| problems.iter().filter(|p| p.severity == severity).count();
            let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
            if errors > 0 {
                println!("{errors} error(s), {warnings} warning(s)");
                Ok(ExitCode::FAILURE)
            } else if warnings > 0 {
                println!("no errors, {warnings} warning(s)");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("configuration OK");
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Keys { action, config } => {
            let config = load(default_config_path(config).as_deref())?;
            keys_command(&config, action).await
        }
        Command::Store {
            action: StoreAction::Migrate { to },
            config,
        } => {
            let config = load(default_config_path(config).as_deref())?;
            let url = passerelle::store::DatabaseUrl::parse(&to)
                .map_err(|e| format!("error: --to {e}"))?;
            let data_dir = &config.server.data_dir;
            println!(
                "copying {} into {}",
                data_dir.join(passerelle::store::DB_FILE).display(),
                url.redacted()
            );
            let copied = passerelle::store::transfer::sqlite_to_postgres(data_dir, &url)
                .await
                .map_err(|e| format!("error: {e}"))?;
            for (table, rows) in &copied {
                println!("  {table:<22} {rows:>8} rows");
            }
            println!(
                "done: set [store] url (or PASSERELLE_DATABASE_URL) to this database on every node"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Preview {
            user,
            client_id,
            sp,
            config,
        } => {
            let path = default_config_path(config);
            let mut config = load(path.as_deref())?;
            // The preview reads the configuration only; keep its database apart from a running server's.
            let scratch = tempfile_dir()?;
            config.server.data_dir = scratch.join("data");
            config.store.url = None;
            let target = passerelle::app::preview::Target::from_params(sp, client_id)
                .map_err(|e| format!("error: {e}"))?;
            let state =
                passerelle::app::build_state(config, &passerelle::app::StartOptions::default())
                    .await
                    .map_err(|e| format!("error: {e}"))?;
            let result = passerelle::app::preview::preview(&state, &user, &target).await;
            let _ = std::fs::remove_dir_all(&scratch);
            let preview = result.map_err(|e| format!("error: {e}"))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&preview).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate {
            file,
            dry_run,
            url,
            token,
            config,
        } => {
            use passerelle::provisioning::migration::cli;
            let config = load(default_config_path(config).as_deref())?;
            let token =
                token.or_else(|| config.admin.token.as_ref().map(|t| t.expose().to_string()));
            let url = match url {
                Some(url) => server_url(&url).map_err(|e| format!("error: --url {e}"))?,
                None => config.server.base_url(),
            };
            let done = cli::run(cli::MigrateArgs {
                file,
                dry_run,
                url,
                token,
            })
            .await
            .map_err(|e| format!("error: {e}"))?;
            Ok(if done.status == "done" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::HashPassword => {
            let password = read_password()?;
            if password.is_empty() {
                return Err("error: the password is empty: type it at the prompt, or pipe it (`passerelle hash-password < file`)".into());
            }
            let password = password.as_str();
            let hash =
                passerelle::login::hash_password(password).map_err(|e| format!("error: {e}"))?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--url` of `migrate`: an absolute http(s) URL. Without a scheme, say so with the fix
/// rather than the HTTP client's "builder error".
fn server_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let with_http = || format!("the URL needs a scheme: http://{url} (or https://{url})");
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(url.to_string())
        }
        Ok(parsed) if url.contains("://") => Err(format!(
            "`{url}`: use an http:// or https:// URL (not {}://)",
            parsed.scheme()
        )),
        // `localhost:8080` parses with the scheme `localhost`.
        Ok(_) | Err(url::ParseError::RelativeUrlWithoutBase) => Err(with_http()),
        Err(e) => Err(format!("`{url}` is not a URL ({e})")),
    }
}

/// The password for `hash-password`: at a terminal, asked twice without echo; otherwise the
/// first line of standard input (a pipe or a file).
fn read_password() -> Result<String, String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map_err(|e| format!("error: cannot read the password from the terminal: {e}"))
        };
        let first = ask("Password: ")?;
        let again = ask("Password again: ")?;
        if first != again {
            return Err("error: the two passwords differ; nothing was hashed".into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("error: cannot read standard input: {e}"))?;
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}

async fn serve(
    config: Config,
    options: passerelle::app::StartOptions,
    banner: Option<String>,
) -> Result<ExitCode, String> {
    let listen = config.server.listen.clone();
    let state = passerelle::app::build_state(config, &options)
        .await
        .map_err(|e| format!("error: {e}"))?;
    let running = passerelle::app::start(state, &listen)
        .await
        .map_err(|e| format!("error: {e}"))?;
    tracing::info!(addr = %running.addr, public_url = %running.state.base_url, "passerelle is listening");
    if let Some(metrics) = running.metrics_addr {
        tracing::info!(addr = %metrics, "/metrics is served on its own listener");
    }
    if let Some(banner) = banner {
        println!("{banner}");
    }
    running.wait().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
