//! `keysmith`: the command line over keysmith-core. It parses, signs in, calls the
//! [`Registry`], and prints. It runs no SQL and decides no permission itself.
//!
//! Exit codes: 0 success; 1 refused or failed (for `verify`: unknown, revoked or expired
//! key); 2 usage error (for `verify`: malformed key); 3 (`verify` only) the key could not be
//! checked (no account, keyring or database).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keysmith_client::{ConnectOptions, Remote, Team};
use keysmith_core::digest::Pepper;
use keysmith_core::policy::Policy;
use keysmith_core::scope::ScopeCatalog;
use keysmith_core::verifier::Verifier;
use keysmith_core::{Error, OsKeyring, Registry};
use keysmith_types::{
    AuditFilter, ErrorCode, GenerateKeyRequest, IpcError, KeyReveal, KeyStatus, KeySummary, Role,
};
use zeroize::Zeroizing;

/// Freed heap blocks are wiped (1Password's zeroizing-alloc): the keys this process prints or
/// verifies, and the passphrases it reads, leave no copies in freed memory (HTTP buffers in
/// the verifier, JSON, argon2 inputs).
#[global_allocator]
static ALLOC: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

/// `println!` that ends the program quietly when standard output is closed (`keysmith … |
/// head`), instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// Keysmith: generate, list, revoke and verify your team's API keys.
#[derive(Debug, Parser)]
#[command(name = "keysmith", version, about)]
struct Cli {
    /// Directory holding the database (default: the OS data directory).
    #[arg(long, global = true, env = "KEYSMITH_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use the team's PostgreSQL database instead of the data directory
    /// (`postgres://USER:PASS@HOST:PORT/DB`; libpq's PG* variables fill in the rest). For the
    /// team server's host: `init`, `serve`, `serve-verifier` and the other commands.
    #[arg(
        long,
        global = true,
        env = "KEYSMITH_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Act as this member; the passphrase is read from KEYSMITH_PASSPHRASE or prompted for.
    #[arg(long = "as", global = true, value_name = "NAME")]
    as_member: Option<String>,
    /// Work on a team server (`https://HOST[:PORT]`, from `keysmith serve`) instead of this
    /// computer's account: `keys`, `members`, `audit list` and `passphrase`.
    #[arg(
        long,
        global = true,
        env = "KEYSMITH_SERVER",
        value_name = "URL",
        conflicts_with = "database_url"
    )]
    server: Option<String>,
    /// Trust only this certificate authority (PEM) for the team server's certificate.
    #[arg(long, global = true, env = "KEYSMITH_SERVER_CA", value_name = "FILE")]
    server_ca: Option<PathBuf>,
    /// Allow plain http:// to a team server that is not on this computer (passphrases and
    /// keys then cross the network unencrypted).
    #[arg(long, global = true)]
    allow_plain_http: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the account and its Owner (first run).
    Init {
        /// The Owner's display name.
        #[arg(long, value_name = "NAME")]
        owner: String,
    },
    /// Generate, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Add, list, re-role, remove members; transfer ownership.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Read the audit log, or check its hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Change your own passphrase (the new one from KEYSMITH_NEW_PASSPHRASE or a prompt).
    Passphrase,
    /// Check a key: exit 0 valid, 1 unknown, revoked or expired, 2 malformed, 3 cannot check
    /// (no account, keyring or database).
    Verify {
        /// The key, or `-` (the default) to read it from standard input.
        #[arg(value_name = "KEY|-", default_value = "-")]
        key: String,
    },
    /// Look through files, directories and git history for Keysmith keys, and name the
    /// account's keys found (never the key itself). Exit 0 no live key, 1 a live key found,
    /// 2 something could not be scanned, 3 cannot check (no account, keyring or database).
    Scan {
        /// Files and directories (default: the current directory). A directory that is a
        /// git repository's top also has its history read (every commit of every branch).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Only what is staged in the git repository here: for a pre-commit hook.
        #[arg(long, conflicts_with = "paths")]
        staged: bool,
        /// Do not read git history.
        #[arg(long)]
        no_history: bool,
        /// One JSON array of findings.
        #[arg(long)]
        json: bool,
    },
    /// Run the forward-auth verifier (nginx auth_request, Traefik ForwardAuth) on loopback.
    ServeVerifier {
        /// Address to listen on; keep it on loopback or a private network.
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9181")]
        listen: std::net::SocketAddr,
        /// The policy file: which methods and paths each role's keys may call.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// Read the pepper from this file (mode 0600, from `keysmith export-pepper`) instead
        /// of the OS keyring.
        #[arg(long, value_name = "FILE")]
        pepper_file: Option<PathBuf>,
        /// How often last-used times and usage counts are written to the database, in
        /// seconds.
        #[arg(long, value_name = "SECS", default_value_t = 2)]
        flush_secs: u64,
        /// Keep this many days of per-key usage counts (30 to 36500); older days are deleted
        /// once a day.
        #[arg(long, value_name = "DAYS", default_value_t = keysmith_core::usage::RETENTION_DAYS_DEFAULT,
              value_parser = clap::value_parser!(u32).range(30..=36_500))]
        keep_usage_days: u32,
        /// With --database-url (a replica of the team's PostgreSQL store): answer 503, never
        /// a possibly stale allow, when the replica cannot confirm within this long that it
        /// holds every change (`1s`, `500ms`).
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_staleness)]
        max_staleness: std::time::Duration,
        /// Believe `X-Forwarded-For` from this proxy address or network (CIDR; repeat for
        /// several): the client's address for keys limited to networks is then the rightmost
        /// entry that is not a trusted proxy. Without it the connection's peer is the client.
        #[arg(long, value_name = "CIDR")]
        trusted_proxy: Vec<String>,
        /// Log one JSON object per line instead of text.
        #[arg(long)]
        log_json: bool,
        /// Threads answering requests. Default: half the CPU cores (at least 1), leaving the
        /// rest to the proxy and the API beside it; one thread answers tens of thousands of
        /// checks a second.
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
    },
    /// Run the team server: the HTTP JSON API members' desktops and CLIs use (needs
    /// --database-url). Stateless: run as many instances as you like behind a load balancer.
    Serve {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9180")]
        listen: std::net::SocketAddr,
        /// Speak HTTPS with this certificate chain (PEM); needs --tls-key. Without it, put a
        /// TLS-terminating reverse proxy in front (README).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Database connections this instance keeps open at most.
        #[arg(long, value_name = "N", default_value_t = 16)]
        max_connections: u32,
        /// Log one JSON object per line instead of text.
        #[arg(long)]
        log_json: bool,
        /// Keep the account's secrets (pepper, audit key, audit anchor) in this directory
        /// (mode 0700, made by `keysmith export-server-secrets`) instead of the OS keyring:
        /// for a further server host, or one without a keyring.
        #[arg(long, value_name = "DIR")]
        secrets_dir: Option<PathBuf>,
        /// The policy file whose `[[scope]]` tables define the scopes members may give keys
        /// (the verifiers' policy). Without it only the built-in `read-only` is offered.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Move this computer's account (members, keys, the whole audit log) to the team's
    /// PostgreSQL database, for `keysmith serve` on this host. Owner only; audited. Keys keep
    /// working: the pepper stays in this host's keyring under the same account.
    Migrate {
        /// The team's database: postgres://USER:PASS@HOST:PORT/DB (it must hold no account).
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Write the account's pepper to a new file (mode 0600) for a verifier without a
    /// keyring. Owner only; audited.
    ExportPepper {
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Write the team server's secrets (pepper, audit key, and an anchor on the audit log as
    /// it is now) to a new directory (mode 0700), for `keysmith serve --secrets-dir` on a
    /// further host. Run with --database-url on the host that holds them. Owner only;
    /// audited.
    ExportServerSecrets {
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a key; standard output gets the key alone, this once.
    Create {
        /// A descriptive name: which integration uses this key (1 to 64 characters).
        #[arg(long, value_name = "TEXT")]
        name: String,
        /// Make the key expire after this long (`30d`, `12h`, `90min`; 1 minute to 3650 days).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
        expires_in: Option<i64>,
        /// Accept the key only from this address or network (CIDR, IPv4 or IPv6; repeat, or
        /// separate with commas; at most 32). Fixed for the key's life. Default: anywhere.
        #[arg(long, value_name = "CIDR")]
        allow_from: Vec<String>,
        /// Refuse the key's requests beyond this rate, with 429 and Retry-After (`10/s`,
        /// `600/min`, `10/s burst 20`; 1 to 1000000 per second or minute; the burst defaults
        /// to one period's worth). Each verifier counts on its own. Fixed for the key's life.
        /// Default: no limit.
        #[arg(long, value_name = "RATE")]
        rate_limit: Option<String>,
        /// Narrow the key to these scopes (repeat, or separate with commas; at most 16):
        /// `read-only` (GET and HEAD), or scopes the policy file defines and your role may
        /// give (`keys scopes` lists them). The key may then call only what both its creator's
        /// role and one of its scopes allow. Fixed for the key's life. Default: the creator's
        /// whole role.
        #[arg(long = "scope", value_name = "NAME", value_delimiter = ',')]
        scopes: Vec<String>,
        /// The policy file whose `[[scope]]` tables define the scopes (default: `policy.toml`
        /// in the data directory, if there is one). With --server, the team server's policy
        /// decides instead.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// List the scopes your role may give a key (`keys create --scope`).
    Scopes {
        /// The policy file that defines them (default: `policy.toml` in the data directory,
        /// if there is one).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace a key: standard output gets the new key alone, this once; the old key keeps
    /// working for the grace period, then fails as expired.
    Roll {
        /// The key's id (from `keys list`).
        id: String,
        /// How long the old key keeps working (`24h` by default; `0s` ends it now).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms, default_value = "24h")]
        grace: i64,
    },
    /// List keys: name, first 4 characters, dates, status. Never the key.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key, irreversibly.
    Revoke {
        /// The key's id (from `keys list`).
        id: String,
        /// Must be exactly REVOKE.
        #[arg(long, value_name = "REVOKE")]
        confirm: String,
    },
    /// Pause a key: every verifier refuses it until it is resumed.
    Pause {
        /// The key's id (from `keys list`).
        id: String,
    },
    /// Resume a paused key: it works again (its expiry, if any, still applies).
    Resume {
        /// The key's id (from `keys list`).
        id: String,
    },
    /// How a key was used, per UTC day: accepted requests and refusals by reason, as the
    /// verifiers counted them, with its last use and that use's address.
    Usage {
        /// The key's id (from `keys list`).
        id: String,
        /// How many days, today included (1 to 366).
        #[arg(long, value_name = "N", default_value_t = keysmith_types::USAGE_DAYS_DEFAULT,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(keysmith_types::USAGE_DAYS_MAX)))]
        days: u32,
        /// Print JSON (every day, oldest first) instead of a table of the days with use.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MembersCommand {
    /// Add a member; their initial passphrase comes from KEYSMITH_NEW_PASSPHRASE or a prompt,
    /// and they must change it at first sign-in.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List members: name, role, keys, status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give a member another role.
    Role {
        name: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Remove a member and revoke every key they generated; prints the keys revoked.
    Remove {
        name: String,
        /// Must be exactly REMOVE.
        #[arg(long, value_name = "REMOVE")]
        confirm: String,
    },
    /// Make another member the Owner (you become an Admin).
    TransferOwnership { name: String },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List audit entries, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain: exit 0 intact, 1 tampered (naming the first bad entry).
    Verify,
    /// After putting back the database from a backup older than the last action: accept it
    /// as it is (Owner only; their passphrase; audited). Rows that lost their seal stay
    /// refused.
    AcceptRestore {
        /// Must be exactly RESTORED.
        #[arg(long, value_name = "RESTORED")]
        confirm: String,
    },
}

fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try 30d, 12h or 90min)"))?;
    i64::try_from(d.as_millis()).map_err(|_| "that duration is far too long".to_owned())
}

fn parse_staleness(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_millis(10) || d > std::time::Duration::from_secs(3600) {
        return Err("between 10ms and 1h".into());
    }
    Ok(d)
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(&s.to_ascii_lowercase())
        .ok_or_else(|| format!("unknown role {s:?}: owner, admin, manager, author or viewer"))
}

/// A failure with its exit code; the message never holds key material.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            code: 1,
            message: e.to_ipc().message,
        }
    }
}

impl From<IpcError> for Failure {
    fn from(e: IpcError) -> Self {
        Failure {
            code: 1,
            message: e.message,
        }
    }
}

fn main() -> ExitCode {
    // No core file and no debugger of the same account, for the pepper, passphrases and keys
    // this process may hold.
    let core_dumps = keysmith_core::process::deny_core_dumps();
    let cli = Cli::parse();
    // The verifier logs its decisions (info); other commands only warnings.
    let (serving, json, workers) = match &cli.command {
        Command::ServeVerifier {
            log_json, workers, ..
        } => (true, *log_json, *workers),
        Command::Serve { log_json, .. } => (true, *log_json, None),
        _ => (false, false, None),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYSMITH_LOG").unwrap_or_else(|_| {
        // sqlx reports PostgreSQL's notices ("already exists, skipping") at info.
        tracing_subscriber::EnvFilter::new(if serving {
            "info,sqlx::postgres::notice=warn"
        } else {
            "warn"
        })
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    if let Err(e) = core_dumps {
        tracing::warn!(error = %e, "core dumps are not denied");
    }
    let mut builder = if serving {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        b.worker_threads(workers.unwrap_or(cores / 2).max(1));
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keysmith: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("keysmith: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Some(url) = cli.server.clone() {
        return run_remote(cli, &url).await;
    }
    let verifying = matches!(cli.command, Command::Verify { .. } | Command::Scan { .. });
    let setup_failure = |e: Error| Failure {
        code: if verifying { 3 } else { 1 },
        message: e.to_ipc().message,
    };
    let (registry, dir) = match &cli.database_url {
        Some(url) => {
            let connections = match &cli.command {
                Command::Serve {
                    max_connections, ..
                } => *max_connections,
                _ => 4,
            };
            // A replica only reads (and writes last-used times): it leaves the schema to
            // the team server, which migrates it.
            let opened = if matches!(cli.command, Command::ServeVerifier { .. }) {
                keysmith_core::store::connect_postgres_as_is(url, connections)
                    .await
                    .map(|pool| {
                        Registry::with_parts(
                            pool,
                            Arc::new(OsKeyring),
                            Arc::new(keysmith_core::clock::SystemClock),
                        )
                    })
            } else {
                let secrets: Arc<dyn keysmith_core::SecretStore> = match &cli.command {
                    Command::Serve {
                        secrets_dir: Some(dir),
                        ..
                    } => Arc::new(keysmith_core::FileStore::open(dir).map_err(|e| Failure {
                        code: 2,
                        message: e.to_string(),
                    })?),
                    _ => Arc::new(OsKeyring),
                };
                Registry::connect_postgres(url, connections, secrets).await
            };
            let registry = opened.map_err(|e| {
                let mut failure = setup_failure(e);
                failure.message = format!("{} (PostgreSQL database)", failure.message);
                failure
            })?;
            (registry, None)
        }
        None => {
            if matches!(
                cli.command,
                Command::Serve { .. } | Command::ExportServerSecrets { .. }
            ) {
                return Err(Failure {
                    code: 2,
                    message: "the team server needs the team's PostgreSQL database: \
                              --database-url postgres://… (or KEYSMITH_DATABASE_URL)"
                        .into(),
                });
            }
            let dir = keysmith_core::data_dir::resolve(cli.data_dir).map_err(setup_failure)?;
            // Only `init` creates a database; any other command on a directory without one
            // says so.
            let opened = if matches!(cli.command, Command::Init { .. }) {
                Registry::open(&dir, Arc::new(OsKeyring)).await
            } else {
                Registry::open_existing(&dir, Arc::new(OsKeyring)).await
            };
            let registry = opened.map_err(|e| {
                let mut failure = setup_failure(e);
                failure.message = format!("{} (data directory {})", failure.message, dir.display());
                failure
            })?;
            (registry, Some(dir))
        }
    };
    match cli.command {
        Command::Init { owner } => {
            let pass = read_passphrase(&format!("New passphrase for {owner}: "))?;
            let member = registry.create_account(&owner, &pass).await?;
            out!("Created the account; {} is its Owner.", member.name);
        }
        Command::Verify { key } => verify(&registry, &key).await?,
        Command::Scan {
            paths,
            staged,
            no_history,
            json,
        } => scan(&registry, paths, staged, !no_history, json).await?,
        Command::ExportPepper { to } => {
            let actor = sign_in(&registry, cli.as_member.as_deref()).await?;
            registry.export_pepper(&actor, &to).await?;
            out!(
                "Wrote the pepper to {} (mode 0600). Keep it as secret as the keyring entry.",
                to.display()
            );
        }
        Command::ServeVerifier {
            listen,
            policy,
            pepper_file,
            flush_secs,
            keep_usage_days,
            max_staleness,
            trusted_proxy,
            log_json: _,
            workers: _,
        } => {
            let trusted =
                keysmith_verifier::TrustedProxies::parse(&trusted_proxy).map_err(|e| Failure {
                    code: 2,
                    message: format!("--trusted-proxy: {e}"),
                })?;
            serve_verifier(
                &registry,
                dir.as_deref(),
                listen,
                &policy,
                pepper_file.as_deref(),
                flush_secs,
                keep_usage_days,
                max_staleness,
                trusted,
            )
            .await?;
        }
        Command::ExportServerSecrets { to } => {
            let actor = sign_in(&registry, cli.as_member.as_deref()).await?;
            registry.export_server_secrets(&actor, &to).await?;
            out!(
                "Wrote the server's secrets to {} (mode 0700). Copy it to the new host's \
                 account only (for example with scp -rp), start `keysmith serve --secrets-dir` \
                 there, then delete this copy.",
                to.display()
            );
        }
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            max_connections: _,
            log_json: _,
            secrets_dir: _,
            policy,
        } => {
            let tls = tls_cert.zip(tls_key);
            serve(registry, listen, tls, policy.as_deref()).await?;
            return Ok(());
        }
        Command::Audit(AuditCommand::Verify) => {
            let status = registry.audit_chain().await?;
            match status.problem {
                None => out!("intact: {} entries", status.entries),
                Some(problem) => {
                    return Err(Failure {
                        code: 1,
                        message: format!("the audit log was tampered with: {problem}"),
                    })
                }
            }
        }
        Command::Audit(AuditCommand::AcceptRestore { confirm }) => {
            let name = cli.as_member.as_deref().ok_or_else(needs_as)?;
            let pass = read_passphrase(&format!("Passphrase for {name}: "))?;
            let problem = registry
                .accept_restored_store(name, &pass, &confirm)
                .await?;
            out!("Accepted the store as it is ({problem}).");
        }
        Command::Migrate { to } => {
            if dir.is_none() {
                return Err(Failure {
                    code: 2,
                    message: "migrate moves this computer's account: leave out --database-url"
                        .into(),
                });
            }
            let actor = sign_in(&registry, cli.as_member.as_deref()).await?;
            let target = keysmith_core::store::connect_postgres(&to, 4)
                .await
                .map_err(|e| Failure {
                    code: 1,
                    message: format!("{} (the team's PostgreSQL database)", e.to_ipc().message),
                })?;
            let label = database_label(&to);
            let moved = registry.move_to(&actor, &target, &label).await?;
            out!(
                "Moved {} members, {} keys and {} audit entries to {label}. Start the team server \
                 here with: keysmith --database-url URL serve",
                moved.members,
                moved.keys,
                moved.audit_entries
            );
        }
        Command::Passphrase => {
            let name = cli.as_member.as_deref().ok_or_else(needs_as)?;
            let current = read_passphrase(&format!("Current passphrase for {name}: "))?;
            let member = registry.sign_in(name, &current).await?;
            let new = read_new_passphrase(&format!("New passphrase for {name}: "))?;
            registry
                .change_passphrase(&member.id, &current, &new)
                .await?;
            out!("Passphrase changed.");
        }
        Command::Members(_) | Command::Audit(AuditCommand::List { .. }) | Command::Keys(_) => {
            let member_id = sign_in(&registry, cli.as_member.as_deref()).await?;
            let team = Team::Local {
                registry: Arc::new(registry),
                member_id,
            };
            team_command(&team, cli.command, dir.as_deref()).await?;
        }
    }
    Ok(())
}

/// The scope catalogue for a command: `policy` if given, else `policy.toml` in the data
/// directory `dir` when there is one, else only the built-in `read-only`.
fn scope_catalog(
    policy: Option<&std::path::Path>,
    dir: Option<&std::path::Path>,
) -> Result<ScopeCatalog, Failure> {
    let refused = |e: keysmith_core::policy::PolicyError| Failure {
        code: 1,
        message: format!("policy refused: {e}"),
    };
    match (policy, dir) {
        (Some(path), _) => ScopeCatalog::load(path).map_err(refused),
        (None, Some(dir)) => ScopeCatalog::of_data_dir(dir).map_err(refused),
        (None, None) => Ok(ScopeCatalog::builtin()),
    }
}

/// The commands a member runs on their account, on this computer (`dir`, the data directory,
/// when it has one) or on a team server.
async fn team_command(
    team: &Team,
    command: Command,
    dir: Option<&std::path::Path>,
) -> Result<(), Failure> {
    match command {
        Command::Members(cmd) => members(team, cmd).await?,
        Command::Audit(AuditCommand::List { json }) => {
            let entries = team.audit_report(&AuditFilter::default()).await?.entries;
            if json {
                out!("{}", to_json(&entries)?);
            } else {
                for e in entries {
                    out!(
                        "{:>5}  {}  {:<16}  {:<22}  {}{}",
                        e.seq,
                        keysmith_core::clock::format_utc(e.at),
                        truncate(&e.actor_name, 16),
                        e.action,
                        e.target,
                        if e.detail.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", e.detail)
                        }
                    );
                }
            }
        }
        Command::Keys(cmd) => match cmd {
            KeysCommand::Create {
                name,
                expires_in,
                allow_from,
                rate_limit,
                scopes,
                policy,
            } => {
                let catalog = scope_catalog(policy.as_deref(), dir)?;
                let request = GenerateKeyRequest {
                    name,
                    expires_in_secs: expires_in.map(|ms| ms / 1000),
                    allowed_sources: allow_from,
                    rate_limit,
                    scopes,
                };
                let generated = team.generate_key(&request, &catalog).await?;
                print_once(&generated)?;
                let expiry = generated.key.expires_at.map_or_else(String::new, |at| {
                    format!(" It expires {} UTC.", keysmith_core::clock::format_utc(at))
                });
                let from = if generated.key.allowed_sources.is_empty() {
                    String::new()
                } else {
                    format!(
                        " It works only from {}.",
                        generated.key.allowed_sources.join(", ")
                    )
                };
                let limit = generated
                    .key
                    .rate_limit
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" It is limited to {r}."));
                let scoped = if generated.key.scopes.is_empty() {
                    String::new()
                } else {
                    format!(" Its scopes are {}.", generated.key.scopes.join(", "))
                };
                eprintln!(
                    "Generated \"{}\" (id {}).{expiry}{from}{limit}{scoped} This is the only time the key is shown: store it now.",
                    generated.key.name, generated.key.id
                );
            }
            KeysCommand::Scopes { policy, json } => {
                let catalog = scope_catalog(policy.as_deref(), dir)?;
                let scopes = team.scopes(&catalog).await?;
                if json {
                    out!("{}", to_json(&scopes)?);
                } else {
                    out!("{:<24}  {:<33}  DESCRIPTION", "SCOPE", "GIVEN BY");
                    for s in &scopes {
                        let roles: Vec<&str> = s.roles.iter().map(|r| r.as_str()).collect();
                        out!("{:<24}  {:<33}  {}", s.name, roles.join(","), s.description);
                    }
                }
            }
            KeysCommand::Roll { id, grace } => {
                let generated = team.roll_key(&id, grace).await?;
                print_once(&generated)?;
                let until = keysmith_core::clock::format_utc(
                    generated.key.created_at.saturating_add(grace),
                );
                eprintln!(
                    "Rolled \"{}\": the new key (id {}) is shown this once; the old key works until {until} UTC.",
                    generated.key.name, generated.key.id
                );
            }
            KeysCommand::List { json } => {
                let keys = team.list_keys().await?;
                if json {
                    out!("{}", to_json(&keys)?);
                } else {
                    print_table(&keys);
                }
            }
            KeysCommand::Revoke { id, confirm } => {
                let key = team.revoke_key(&id, &confirm).await?;
                out!(
                    "Revoked \"{}\" ({}…). It can never be used again.",
                    key.name,
                    key.start
                );
            }
            KeysCommand::Pause { id } => {
                let key = team.set_key_paused(&id, true).await?;
                out!(
                    "Paused \"{}\" ({}…): it is refused until you resume it (keysmith keys resume {}).",
                    key.name,
                    key.start,
                    key.id
                );
            }
            KeysCommand::Usage { id, days, json } => {
                let usage = team.key_usage(&id, days).await?;
                if json {
                    out!("{}", to_json(&usage)?);
                } else {
                    print_usage(&usage, days);
                }
            }
            KeysCommand::Resume { id } => {
                let key = team.set_key_paused(&id, false).await?;
                out!(
                    "Resumed \"{}\" ({}…): it is {} again.",
                    key.name,
                    key.start,
                    status_word(&key)
                );
            }
        },
        _ => {}
    }
    Ok(())
}

/// A command on a team server (`--server URL`): signs in, runs it, signs out.
async fn run_remote(cli: Cli, url: &str) -> Result<(), Failure> {
    let ca_pem = match &cli.server_ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| Failure {
            code: 1,
            message: format!("cannot read {}: {e}", path.display()),
        })?),
        None => None,
    };
    let options = ConnectOptions {
        allow_plain_http: cli.allow_plain_http,
        ca_pem,
    };
    match &cli.command {
        Command::Keys(_)
        | Command::Members(_)
        | Command::Audit(AuditCommand::List { .. })
        | Command::Passphrase => {}
        _ => {
            return Err(Failure {
                code: 2,
                message: "with --server, only `keys`, `members`, `audit list` and \
                          `passphrase` run here; run the others on the team server's host \
                          (with --database-url)"
                    .into(),
            })
        }
    }
    let remote = Remote::connect(url, &options).await?;
    let name = cli.as_member.as_deref().ok_or_else(needs_as)?;
    if matches!(cli.command, Command::Passphrase) {
        let current = read_passphrase(&format!("Current passphrase for {name}: "))?;
        remote.sign_in(name, &current).await?;
        let new = read_new_passphrase(&format!("New passphrase for {name}: "))?;
        let changed = remote.change_passphrase(&current, &new).await;
        remote.sign_out().await;
        changed?;
        out!("Passphrase changed.");
        return Ok(());
    }
    let pass = read_passphrase(&format!("Passphrase for {name}: "))?;
    let signed = remote.sign_in(name, &pass).await?;
    if signed.must_change_passphrase {
        remote.sign_out().await;
        return Err(Failure {
            code: 1,
            message: format!(
                "{name} must change the initial passphrase first: keysmith --server {url} --as {name} passphrase"
            ),
        });
    }
    let team = Team::Remote(remote);
    let result = team_command(&team, cli.command, None).await;
    if let Team::Remote(remote) = &team {
        remote.sign_out().await;
    }
    result
}

/// A key's usage as text: the totals, the last use, then one line per day with any use.
fn print_usage(usage: &keysmith_types::KeyUsage, days: u32) {
    let t = &usage.total;
    let first = usage.days.first().map_or("", |d| d.date.as_str());
    let span = match days {
        1 => "Today".to_owned(),
        n => format!("Last {n} days"),
    };
    out!(
        "{span} (UTC, from {first}): {} accepted, {} refused{}.",
        t.allowed,
        t.refused(),
        t.refusals_in_words()
            .map(|why| format!(" ({why})"))
            .unwrap_or_default()
    );
    let when = match usage.last_used_at {
        None => "never".to_owned(),
        Some(ms) => format!("{} UTC", keysmith_core::clock::format_utc(ms)),
    };
    let from = usage
        .last_used_from
        .as_deref()
        .map(|from| format!(" from {from}"))
        .unwrap_or_default();
    out!("Last used: {when}{from}.");
    let used: Vec<_> = usage
        .days
        .iter()
        .filter(|d| d.counts.allowed + d.counts.refused() > 0)
        .collect();
    if used.is_empty() {
        return;
    }
    // The reason columns grouped under what they count (the JSON calls ACCEPTED `allowed`).
    out!("{:<10}  {:>9}  {:-^58}", "", "", " refused, by reason ");
    out!(
        "{:<10}  {:>9}  {:>7}  {:>7}  {:>6}  {:>6}  {:>6}  {:>7}  {:>7}  {:>10}",
        "DATE",
        "ACCEPTED",
        "REVOKED",
        "EXPIRED",
        "PAUSED",
        "ROLE",
        "SCOPE",
        "ADDRESS",
        "LIMITED",
        "REFUSED"
    );
    for d in used {
        let c = &d.counts;
        out!(
            "{:<10}  {:>9}  {:>7}  {:>7}  {:>6}  {:>6}  {:>6}  {:>7}  {:>7}  {:>10}",
            d.date,
            c.allowed,
            c.revoked,
            c.expired,
            c.paused,
            c.role,
            c.scope,
            c.address,
            c.rate_limited,
            c.refused()
        );
    }
}

/// Prints a new key alone on standard output, so it can be piped into a secret store.
fn print_once(generated: &KeyReveal) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", generated.secret.expose())
        .and_then(|()| out.flush())
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot write the key to standard output: {e}"),
        })
}

async fn verify(registry: &Registry, arg: &str) -> Result<(), Failure> {
    let presented = if arg == "-" {
        let mut buf = Zeroizing::new(String::new());
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut buf)
            .map_err(|e| Failure {
                code: 2,
                message: format!("cannot read the key from standard input: {e}"),
            })?;
        buf
    } else {
        Zeroizing::new(arg.to_owned())
    };
    match registry.verify(&presented).await {
        Ok(v) => {
            out!(
                "valid: key {} (\"{}\") of {} ({})",
                v.key_id,
                v.key_name,
                v.creator.name,
                v.creator.role
            );
            Ok(())
        }
        Err(e) => Err(Failure {
            code: match e.code() {
                ErrorCode::MalformedKey => 2,
                ErrorCode::UnknownKey
                | ErrorCode::KeyRevoked
                | ErrorCode::KeyExpired
                | ErrorCode::KeyPaused => 1,
                // No account, no keyring, no database, or a store changed outside Keysmith:
                // the key could not be checked at all.
                _ => 3,
            },
            message: e.to_ipc().message,
        }),
    }
}

async fn members(team: &Team, cmd: MembersCommand) -> Result<(), Failure> {
    match cmd {
        MembersCommand::Add { name, role } => {
            let initial = read_new_passphrase(&format!("Initial passphrase for {name}: "))?;
            let m = team.add_member(&name, role, &initial).await?;
            out!(
                "Added {} as {}. They must change the initial passphrase at first sign-in.",
                m.name,
                m.role
            );
        }
        MembersCommand::List { json } => {
            let list = team.list_members().await?;
            if json {
                out!("{}", to_json(&list)?);
            } else {
                out!(
                    "{:<24}  {:<8}  {:>11}  STATUS",
                    "NAME",
                    "ROLE",
                    "ACTIVE KEYS"
                );
                for m in list {
                    let status = match (m.removed_at, m.must_change_passphrase) {
                        (Some(_), _) => "removed",
                        (None, true) => "must change passphrase",
                        (None, false) => "active",
                    };
                    out!(
                        "{:<24}  {:<8}  {:>11}  {status}",
                        truncate(&m.member.name, 24),
                        m.member.role.as_str(),
                        m.active_keys
                    );
                }
            }
        }
        MembersCommand::Role { name, role } => {
            let target = team.member_named(&name).await?;
            let m = team.change_role(&target.id, role).await?;
            out!("{} is now {}.", m.name, m.role);
        }
        MembersCommand::Remove { name, confirm } => {
            let target = team.member_named(&name).await?;
            let revoked = team.remove_member(&target.id, &confirm).await?;
            match revoked.len() {
                0 => out!("Removed {}; they had no active keys.", target.name),
                1 => out!("Removed {}; 1 key revoked:", target.name),
                n => out!("Removed {}; {n} keys revoked:", target.name),
            }
            for k in revoked {
                out!("  {}  {}…  {}", k.id, k.start, k.name);
            }
        }
        MembersCommand::TransferOwnership { name } => {
            let target = team.member_named(&name).await?;
            let m = team.transfer_ownership(&target.id).await?;
            out!("{} is now the Owner; you are an Admin.", m.name);
        }
    }
    Ok(())
}

/// A database URL as the audit log names it: host and database, never the user or password.
fn database_label(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.split('?').next().unwrap_or(rest);
    format!("postgres://{rest}")
}

/// A key's status in a word (a rolled key still working is in its grace period).
fn status_word(k: &KeySummary) -> &'static str {
    match k.status {
        KeyStatus::Active if k.replaced_by.is_some() => "grace",
        KeyStatus::Active => "active",
        KeyStatus::Revoked => "revoked",
        KeyStatus::Expired => "expired",
        KeyStatus::Paused => "paused",
        KeyStatus::Tampered => "CHANGED OUTSIDE KEYSMITH",
    }
}

/// `keysmith scan`: finds keys, then asks the registry what each is.
async fn scan(
    registry: &Registry,
    paths: Vec<PathBuf>,
    staged: bool,
    history: bool,
    json: bool,
) -> Result<(), Failure> {
    use keysmith_core::scan::ScanTarget;
    let started = std::time::Instant::now();
    let target = if staged {
        ScanTarget::Staged {
            repo: PathBuf::from("."),
        }
    } else if paths.is_empty() {
        ScanTarget::Paths {
            paths: vec![PathBuf::from(".")],
            history,
        }
    } else {
        ScanTarget::Paths { paths, history }
    };
    let report = registry.scan(target).await.map_err(|e| Failure {
        code: 3,
        message: e.to_ipc().message,
    })?;
    let findings = &report.findings;
    if json {
        out!("{}", to_json(findings)?);
    } else {
        for f in findings {
            match &f.key {
                Some(k) => out!(
                    "{}:{}: {} key \"{}\" (ksk_{}…, {}) by {}{}",
                    f.place,
                    f.line,
                    if f.live { "LIVE" } else { "dead" },
                    k.name,
                    k.start,
                    status_word(k),
                    k.created_by.name,
                    match (f.live, k.status) {
                        // A paused key is not rolled: revoke it (or resume, then roll).
                        (true, KeyStatus::Paused) => ": revoke it",
                        (true, _) => ": roll or revoke it",
                        (false, _) => "",
                    }
                ),
                None => out!(
                    "{}:{}: a Keysmith key that is not this account's",
                    f.place,
                    f.line
                ),
            }
        }
    }
    for problem in &report.problems {
        eprintln!("keysmith scan: {problem}");
    }
    let live = findings.iter().filter(|f| f.live).count();
    eprintln!(
        "Scanned {} files ({:.1} MB{}{}) in {:.2} s: {} keys found, {} live.",
        report.files,
        report.bytes as f64 / 1e6,
        if report.binary_skipped > 0 {
            format!(", {} binary files skipped", report.binary_skipped)
        } else {
            String::new()
        },
        if report.git_lines > 0 {
            format!(", {} lines added in git", report.git_lines)
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64(),
        findings.len(),
        live
    );
    if live > 0 {
        Err(Failure {
            code: 1,
            message: format!(
                "{live} live key(s) found: roll or revoke them, then remove them from the files"
            ),
        })
    } else if !report.problems.is_empty() {
        Err(Failure {
            code: 2,
            message: format!("{} path(s) could not be scanned", report.problems.len()),
        })
    } else {
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })
}

fn needs_as() -> Failure {
    Failure {
        code: 2,
        message: "this command needs --as NAME (the member acting)".into(),
    }
}

/// The longest sign-in delay the CLI waits out by itself (seconds), and the most it waits in
/// all: several commands of one member started at once are counted before Argon2 runs, so
/// the fourth may be asked to wait a second although every passphrase is right.
const WAIT_OUT_SECS: i64 = 5;
const WAIT_OUT_TOTAL_SECS: i64 = 15;

/// Signs in as `--as NAME` and returns the member id. A short delay ("try again in N s",
/// N ≤ 5) is waited out, with a note on stderr; a longer one is the error.
async fn sign_in(registry: &Registry, name: Option<&str>) -> Result<String, Failure> {
    let name = name.ok_or_else(needs_as)?;
    let pass = read_passphrase(&format!("Passphrase for {name}: "))?;
    let mut waited = 0;
    let member = loop {
        match registry.sign_in(name, &pass).await {
            Err(Error::TooManyAttempts { retry_after_secs })
                if retry_after_secs <= WAIT_OUT_SECS
                    && waited + retry_after_secs <= WAIT_OUT_TOTAL_SECS =>
            {
                eprintln!("keysmith: sign-ins for {name} are slowed down; trying again in {retry_after_secs} s");
                let secs = u64::try_from(retry_after_secs.max(1)).unwrap_or(1);
                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                waited += retry_after_secs.max(1);
            }
            other => break other?,
        }
    };
    if member.must_change_passphrase {
        return Err(Failure {
            code: 1,
            message: format!(
                "{name} must change the initial passphrase first: keysmith --as {name} passphrase"
            ),
        });
    }
    Ok(member.id)
}

/// A new passphrase from KEYSMITH_NEW_PASSPHRASE, else from a prompt (asked twice).
fn read_new_passphrase(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if let Some(p) = passphrase_from_env("KEYSMITH_NEW_PASSPHRASE")? {
        return Ok(p);
    }
    let first = read_passphrase_prompt(prompt)?;
    let again = read_passphrase_prompt("Repeat it: ")?;
    if first != again {
        return Err(Failure {
            code: 1,
            message: "the two passphrases differ".into(),
        });
    }
    Ok(first)
}

/// The passphrase from KEYSMITH_PASSPHRASE, else from a prompt on the terminal.
fn read_passphrase(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if let Some(p) = passphrase_from_env("KEYSMITH_PASSPHRASE")? {
        return Ok(p);
    }
    read_passphrase_prompt(prompt)
}

/// A passphrase from the environment variable `name`, exactly as set. Bytes that are not
/// UTF-8 are refused, never replaced: a lossy conversion would turn different passphrases
/// into the same one.
fn passphrase_from_env(name: &str) -> Result<Option<Zeroizing<String>>, Failure> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(raw) => raw.into_string().map(|p| Some(Zeroizing::new(p))).map_err(|raw| {
            drop(Zeroizing::new(raw.into_encoded_bytes()));
            Failure {
                code: 2,
                message: format!(
                    "{name} is not valid UTF-8 text; a passphrase must be text (set it again, or type it at the prompt)"
                ),
            }
        }),
    }
}

fn read_passphrase_prompt(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure {
            code: 2,
            message: "no passphrase: set KEYSMITH_PASSPHRASE (and KEYSMITH_NEW_PASSPHRASE for a new one) or run from a terminal".into(),
        });
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| Failure {
            code: 1,
            message: if e.kind() == std::io::ErrorKind::InvalidData {
                "the passphrase typed is not valid UTF-8 text; check the terminal's encoding".into()
            } else {
                format!("cannot read the passphrase: {e}")
            },
        })
}

fn print_table(keys: &[KeySummary]) {
    if keys.is_empty() {
        out!("No API keys yet. Create one with `keysmith --as NAME keys create --name TEXT`.");
        return;
    }
    out!(
        "{:<36}  {:<24}  {:<9}  {:<8}  {:<16}  {:<16}  {:<16}  {:<26}  {:<24}  {:<24}  FROM",
        "ID",
        "NAME",
        "KEY",
        "STATUS",
        "CREATED BY",
        "CREATED",
        "LAST USED",
        "EXPIRES",
        "RATE LIMIT",
        "SCOPES"
    );
    for k in keys {
        let status = status_word(k);
        let expires = match (&k.replaced_by, k.expires_at) {
            (Some(_), Some(at)) => format!("{} (rolled)", format_time(Some(at))),
            (_, at) => format_time(at),
        };
        let from = if k.allowed_sources.is_empty() {
            "anywhere".to_owned()
        } else {
            k.allowed_sources.join(",")
        };
        out!(
            "{:<36}  {:<24}  {:<9}  {:<8}  {:<16}  {:<16}  {:<16}  {:<26}  {:<24}  {:<24}  {from}",
            k.id,
            truncate(&k.name, 24),
            format!("{}…", k.start),
            status,
            truncate(&k.created_by.name, 16),
            format_time(Some(k.created_at)),
            format_time(k.last_used_at),
            expires,
            k.rate_limit.as_deref().unwrap_or("none"),
            if k.scopes.is_empty() {
                "whole role".to_owned()
            } else {
                truncate(&k.scopes.join(","), 24)
            },
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// `YYYY-MM-DD HH:MM` in UTC, or "never".
fn format_time(ms: Option<i64>) -> String {
    match ms {
        None => "never".into(),
        Some(ms) => keysmith_core::clock::format_utc(ms),
    }
}

/// Loads the policy and the pepper, builds the index and serves until Ctrl+C or SIGTERM.
#[allow(clippy::too_many_arguments)]
async fn serve_verifier(
    registry: &Registry,
    dir: Option<&std::path::Path>,
    listen: std::net::SocketAddr,
    policy: &std::path::Path,
    pepper_file: Option<&std::path::Path>,
    flush_secs: u64,
    keep_usage_days: u32,
    max_staleness: std::time::Duration,
    trusted: keysmith_verifier::TrustedProxies,
) -> Result<(), Failure> {
    let fail = |message: String| Failure { code: 1, message };
    let policy = Policy::load(policy).map_err(|e| fail(format!("policy refused: {e}")))?;
    let pepper = match pepper_file {
        Some(path) => Pepper::read_file(path).map_err(|e| fail(e.to_string()))?,
        None => {
            // With the keyring at hand, a database rolled back to an earlier copy (where
            // revoked keys may be active again) is refused before serving.
            registry.check_anchor().await?;
            registry.verifier_pepper().await?
        }
    };
    let rules = policy.rule_count();
    // On one computer the verifier watches the SQLite file; on the team's PostgreSQL store
    // it is a replica fed by change notifications.
    let (verifier, _replica) = match dir {
        Some(dir) => {
            let db = dir.join(keysmith_core::store::DB_FILE);
            let verifier =
                tokio::task::spawn_blocking(move || Verifier::open(&db, pepper, Some(policy)))
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .map_err(|e| fail(e.to_string()))?;
            (Arc::new(verifier), None)
        }
        None => {
            let replica = keysmith_core::replica::start(
                registry.pool().clone(),
                pepper,
                Some(policy),
                max_staleness,
            )
            .await?;
            (Arc::clone(&replica.verifier), Some(replica))
        }
    };
    verifier.keep_usage_days(keep_usage_days);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| fail(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    if !bound.ip().is_loopback() {
        tracing::warn!(
            listen = %bound,
            "listening beyond loopback: anyone who can reach this port can test keys; \
             keep it behind a firewall or on a private network"
        );
    }
    tracing::info!(listen = %bound, keys = verifier.key_count(), rules, "verifier ready");
    keysmith_verifier::serve(
        listener,
        verifier,
        trusted,
        std::time::Duration::from_secs(flush_secs.max(1)),
        shutdown_signal(),
    )
    .await
    .map_err(|e| fail(format!("the verifier stopped: {e}")))?;
    tracing::info!("verifier stopped");
    Ok(())
}

/// Serves the team server's API until Ctrl+C or SIGTERM; HTTPS when given a certificate.
async fn serve(
    registry: Registry,
    listen: std::net::SocketAddr,
    tls: Option<(PathBuf, PathBuf)>,
    policy: Option<&std::path::Path>,
) -> Result<(), Failure> {
    let fail = |message: String| Failure { code: 1, message };
    let scopes = scope_catalog(policy, None)?;
    // The account's secrets are read now: a server without them says so at start, not at
    // the first request.
    if !registry.is_initialized().await? {
        return Err(Error::NotInitialized.into());
    }
    registry.check_anchor().await?;
    let registry = Arc::new(registry);
    match tls {
        Some((cert, key)) => {
            let bound = keysmith_server::serve_tls(
                registry,
                scopes,
                listen,
                &cert,
                &key,
                shutdown_signal(),
            )
            .await
            .map_err(|e| fail(format!("the team server stopped: {e}")))?;
            tracing::info!(listen = %bound, "team server stopped");
        }
        None => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| fail(format!("cannot listen on {listen}: {e}")))?;
            let bound = listener.local_addr().map_err(|e| fail(e.to_string()))?;
            if !bound.ip().is_loopback() {
                tracing::warn!(
                    listen = %bound,
                    "plain HTTP beyond loopback: passphrases and keys would cross the network \
                     unencrypted; give --tls-cert/--tls-key or put a TLS reverse proxy in front"
                );
            }
            tracing::info!(listen = %bound, "team server ready (HTTP)");
            keysmith_server::serve(registry, scopes, listener, shutdown_signal())
                .await
                .map_err(|e| fail(format!("the team server stopped: {e}")))?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
