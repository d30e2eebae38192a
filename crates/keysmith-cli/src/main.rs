//! `keysmith`: the command line over keysmith-core. It parses, signs in, calls the
//! [`Registry`], and prints. It runs no SQL and decides no permission itself.
//!
//! Exit codes: 0 success; 1 refused or failed (for `verify`: unknown or revoked key);
//! 2 usage error (for `verify`: malformed key).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keysmith_core::{Error, OsKeyring, Registry};
use keysmith_types::{ErrorCode, KeyStatus, KeySummary};
use zeroize::Zeroizing;

/// Keysmith: generate, list, revoke and verify your team's API keys.
#[derive(Debug, Parser)]
#[command(name = "keysmith", version, about)]
struct Cli {
    /// Directory holding the database (default: the OS data directory).
    #[arg(long, global = true, env = "KEYSMITH_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Act as this member; the passphrase is read from KEYSMITH_PASSPHRASE or prompted for.
    #[arg(long = "as", global = true, value_name = "NAME")]
    as_member: Option<String>,
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
    /// Check a key: exit 0 valid, 1 unknown or revoked, 2 malformed.
    Verify {
        /// The key, or `-` (the default) to read it from standard input.
        #[arg(value_name = "KEY|-", default_value = "-")]
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a key; standard output gets the key alone, this once.
    Create {
        /// A descriptive name: which integration uses this key (1 to 64 characters).
        #[arg(long, value_name = "TEXT")]
        name: String,
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEYSMITH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
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
    let dir = keysmith_core::data_dir::resolve(cli.data_dir)?;
    let registry = Registry::open(&dir, Arc::new(OsKeyring)).await?;
    match cli.command {
        Command::Init { owner } => {
            let pass = read_passphrase(&format!("New passphrase for {owner}: "))?;
            let member = registry.create_account(&owner, &pass).await?;
            println!("Created the account; {} is its Owner.", member.name);
        }
        Command::Verify { key } => verify(&registry, &key).await?,
        Command::Keys(cmd) => {
            let actor = sign_in(&registry, cli.as_member.as_deref()).await?;
            match cmd {
                KeysCommand::Create { name } => {
                    let generated = registry.generate_key(&actor, &name).await?;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{}", generated.secret.expose())
                        .and_then(|()| out.flush())
                        .map_err(|e| Failure {
                            code: 1,
                            message: format!("cannot write the key to standard output: {e}"),
                        })?;
                    eprintln!(
                        "Generated \"{}\" (id {}). This is the only time the key is shown: store it now.",
                        generated.summary.name, generated.summary.id
                    );
                }
                KeysCommand::List { json } => {
                    let keys = registry.list_keys(&actor).await?;
                    if json {
                        let text = serde_json::to_string_pretty(&keys).map_err(|e| Failure {
                            code: 1,
                            message: e.to_string(),
                        })?;
                        println!("{text}");
                    } else {
                        print_table(&keys);
                    }
                }
                KeysCommand::Revoke { id, confirm } => {
                    let key = registry.revoke_key(&actor, &id, &confirm).await?;
                    println!(
                        "Revoked \"{}\" ({}…). It can never be used again.",
                        key.name, key.start
                    );
                }
            }
        }
    }
    Ok(())
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
            println!(
                "valid: key {} (\"{}\") of {} ({})",
                v.key_id, v.key_name, v.creator.name, v.creator.role
            );
            Ok(())
        }
        Err(e) => Err(Failure {
            code: if e.code() == ErrorCode::MalformedKey {
                2
            } else {
                1
            },
            message: e.to_ipc().message,
        }),
    }
}

/// Signs in as `--as NAME` and returns the member id.
async fn sign_in(registry: &Registry, name: Option<&str>) -> Result<String, Failure> {
    let name = name.ok_or_else(|| Failure {
        code: 2,
        message: "this command needs --as NAME (the member acting)".into(),
    })?;
    let pass = read_passphrase(&format!("Passphrase for {name}: "))?;
    Ok(registry.sign_in(name, &pass).await?.id)
}

/// The passphrase from KEYSMITH_PASSPHRASE, else from a prompt on the terminal.
fn read_passphrase(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if let Some(p) = std::env::var_os("KEYSMITH_PASSPHRASE") {
        return Ok(Zeroizing::new(p.to_string_lossy().into_owned()));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure {
            code: 2,
            message: "no passphrase: set KEYSMITH_PASSPHRASE or run from a terminal".into(),
        });
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot read the passphrase: {e}"),
        })
}

fn print_table(keys: &[KeySummary]) {
    if keys.is_empty() {
        println!("No API keys yet. Create one with `keysmith --as NAME keys create --name TEXT`.");
        return;
    }
    println!(
        "{:<36}  {:<24}  {:<9}  {:<8}  {:<16}  {:<16}  {:<16}",
        "ID", "NAME", "KEY", "STATUS", "CREATED BY", "CREATED", "LAST USED"
    );
    for k in keys {
        let status = match k.status {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
        };
        println!(
            "{:<36}  {:<24}  {:<9}  {:<8}  {:<16}  {:<16}  {:<16}",
            k.id,
            truncate(&k.name, 24),
            format!("{}…", k.start),
            status,
            truncate(&k.created_by.name, 16),
            format_time(Some(k.created_at)),
            format_time(k.last_used_at),
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
