//! `keymint`: run the service, apply migrations, mint a development token, or
//! manage and verify keys on a running server.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keymint::configuration::StorageUrl;
use keymint::startup::connect_and_migrate;
use keymint::{telemetry, Application, Settings};
use keymint_cli::{
    Connection, CreditsCommand, Failure, KeysCommand, Output, UsageArgs, VerifyConnection, WebhooksCommand,
};
use keymint_infrastructure::{unix_now, DevTokenRequest};
use secrecy::ExposeSecret;
use uuid::Uuid;

/// Self-hosted API-key management.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
// Parsed once per process: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a bearer token signed with the configured HS256 secret.
    DevToken {
        /// The organisation the token acts for: its UUID.
        #[arg(long, value_name = "UUID", value_parser = organisation_id)]
        org: Uuid,
        /// The token's subject.
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Manage keys on a running server (KEYMINT_URL, KEYMINT_TOKEN).
    Keys {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Ask a running server whether a key is valid (exit code 0 if it is).
    Verify {
        /// The private key; `-` reads it from standard input (keeps it out of
        /// the shell history and `ps`).
        key: String,
        /// A permission query the key must satisfy, e.g. "billing.read AND billing.write".
        #[arg(long)]
        permissions: Option<String>,
        #[command(flatten)]
        connection: VerifyConnection,
    },
    /// Manage a key's credits on a running server (KEYMINT_URL, KEYMINT_TOKEN).
    Credits {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: CreditsCommand,
    },
    /// How the organisation's keys were used: verifications totalled by
    /// outcome, key, owner or tag (KEYMINT_URL, KEYMINT_TOKEN).
    Usage {
        #[command(flatten)]
        connection: Connection,
        #[command(flatten)]
        args: UsageArgs,
    },
    /// Manage webhooks and their deliveries on a running server (KEYMINT_URL,
    /// KEYMINT_TOKEN).
    Webhooks {
        #[command(flatten)]
        connection: Connection,
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Ask a running server whether it is up (exit code 0 if it is): for
    /// container health checks and scripts.
    Health {
        /// Ask /readyz (which also needs the database) instead of /healthz.
        #[arg(long)]
        ready: bool,
        /// The server's base URL [default: this machine's server.listen from
        /// the configuration, else http://127.0.0.1:8080].
        #[arg(long, env = "KEYMINT_URL")]
        url: Option<String>,
    },
}

/// An organisation id, or a message that says what one looks like.
fn organisation_id(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|_| format!("expected the organisation's UUID, such as {}", Uuid::nil().hyphenated()))
}

/// Where `keymint health` asks: the URL given, else the address this
/// machine's configuration listens on (so a container's health check follows
/// `KEYMINT_SERVER__LISTEN`), else the default.
fn health_url(given: Option<String>) -> String {
    if let Some(url) = given {
        return url;
    }
    match Settings::load() {
        Ok(settings) => {
            let mut address = settings.server.listen;
            // A server listening on every address is reached on loopback.
            if address.ip().is_unspecified() {
                address.set_ip(if address.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("http://{address}")
        }
        Err(_) => "http://127.0.0.1:8080".to_owned(),
    }
}

/// The async runtime `builder` makes, or the reason printed and the exit code.
fn runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|err| {
        eprintln!("keymint: cannot start the async runtime: {err}");
        ExitCode::FAILURE
    })
}

/// Runs a client command against a server, printing its answer or its failure.
fn client_command(command: Command) -> ExitCode {
    let runtime = match runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Keys { connection, command } => keymint_cli::keys(&connection, command)
                .await
                .map(|text| Output { text, code: 0 }),
            Command::Credits { connection, command } => keymint_cli::credits(&connection, command)
                .await
                .map(|text| Output { text, code: 0 }),
            Command::Webhooks { connection, command } => keymint_cli::webhooks(&connection, command)
                .await
                .map(|text| Output { text, code: 0 }),
            Command::Usage { connection, args } => keymint_cli::usage(&connection, args)
                .await
                .map(|text| Output { text, code: 0 }),
            Command::Health { ready, url } => keymint_cli::health(&health_url(url), ready).await,
            Command::Verify {
                key,
                permissions,
                connection,
            } => {
                let key = if key == "-" {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .map_err(|e| Failure::from(anyhow::anyhow!("reading the key from stdin: {e}")))?;
                    line.trim().to_owned()
                } else {
                    key
                };
                keymint_cli::verify(&connection, &key, permissions).await
            }
            _ => Ok(Output {
                text: String::new(),
                code: 0,
            }),
        }
    });
    match result {
        Ok(out) => {
            print!("{}", out.text);
            ExitCode::from(out.code)
        }
        Err(failure) => {
            eprintln!("keymint: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// glibc raises the size from which it serves an allocation from a mapping of
/// its own each time such a mapping is freed; the analytics buffer's minute
/// tables (megabytes each, a new set every minute) then came from its arenas,
/// which kept them resident once freed: tens of MB under load (BENCHMARKS.md).
/// Fixed at glibc's own starting value, a large allocation that does not fit
/// in free arena space gets a mapping, returned to the system when freed. An
/// operator's `MALLOC_MMAP_THRESHOLD_` or `GLIBC_TUNABLES` is left to rule.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_allocations_mapped() {
    const THRESHOLD: libc::c_int = 128 * 1024;
    let tuned = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|tunables| tunables.contains("mmap_threshold"));
    if !tuned {
        // SAFETY: mallopt sets one allocator parameter under glibc's own lock;
        // it reads or writes no memory of ours.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        }
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    keep_large_allocations_mapped();
    let cli = Cli::parse();
    // A client needs no server configuration: it talks to a server over HTTP.
    if let Some(
        command @ (Command::Keys { .. }
        | Command::Verify { .. }
        | Command::Credits { .. }
        | Command::Usage { .. }
        | Command::Webhooks { .. }
        | Command::Health { .. }),
    ) = cli.command
    {
        return client_command(command);
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("keymint: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::DevToken { org, sub, ttl } => dev_token(&settings, org, sub, ttl),
        command => {
            telemetry::init(&settings.log, std::io::stdout, std::io::stdout().is_terminal());
            let runtime = match runtime(tokio::runtime::Builder::new_multi_thread()) {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            let result = runtime.block_on(async move {
                match command {
                    Command::Migrate => migrate(&settings).await,
                    _ => serve(settings).await,
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    let causes = keymint_web::causes(err.as_ref());
                    tracing::error!(error = %causes, "keymint failed");
                    eprintln!("keymint: {causes}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    Application::build(settings).await?.run_until_stopped().await?;
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let StorageUrl::Sql(url) = &settings.database.url else {
        anyhow::bail!("database.url: the in-memory store has no schema to migrate");
    };
    connect_and_migrate(url, &settings.database).await?.close().await;
    println!("keymint: migrations applied");
    Ok(())
}

fn dev_token(settings: &Settings, org: Uuid, sub: String, ttl: u64) -> ExitCode {
    if settings.auth.hs256.secret.expose_secret().is_empty() {
        eprintln!("keymint: dev-token signs with auth.hs256_secret, which is not set");
        return ExitCode::FAILURE;
    }
    let now = unix_now();
    match (DevTokenRequest {
        org_id: org,
        subject: sub,
        ttl_seconds: ttl,
    })
    .sign(&settings.hs256(), now)
    {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("keymint: cannot sign a token: {err}");
            ExitCode::FAILURE
        }
    }
}
