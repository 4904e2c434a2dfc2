//! `openclaws-controller` command line: parse, build, run. The production binary: it carries the
//! controller (`serve`, `migrate`), the support commands (`get`, `describe`), the import of the
//! web app's fleet (`import`), the CRD and the LLM proxy token tool, and nothing of the
//! simulator or the development stack.

mod cli;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use openclaws_server::config::{DatabaseSettings, ServeSettings};
use openclaws_server::serve;
use openclaws_store as store;
use openclaws_telemetry::{init_sentry, init_tracing, LogFormat, SentrySettings};

/// jemalloc rather than glibc's malloc: under API load glibc's allocator (its arena locks and
/// consolidation of freed chunks) took about a fifth of the process's CPU; with jemalloc a PATCH
/// costs the API 0.42 ms of CPU instead of 0.54 ms (bench/RESULTS.md). The benches that host the
/// controller in their own process declare the same allocator, so their figures are this binary's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Reconciliation controller for per-customer OpenClaw gateways on Fly.io.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log format: `json` (one object per line) or `pretty`. Default: `pretty` for `dev`,
    /// `json` for everything else.
    #[arg(long, env = "OPENCLAWS_LOG_FORMAT", value_enum, global = true)]
    log_format: Option<LogFormat>,
    #[command(flatten)]
    sentry: SentrySettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the reconcile workers.
    Serve(Box<ServeSettings>),
    /// Apply database migrations and exit.
    Migrate(DatabaseSettings),
    /// Print the OpenClawInstance CustomResourceDefinition (YAML).
    Crd,
    /// Print the API's OpenAPI document (JSON, as served at `/openapi.json`), for client
    /// generators (`make ts-client`).
    Openapi,
    /// List instances (phase, Ready reason, machine state, age) through the API; with `-w`,
    /// then print each change as it happens.
    Get(cli::GetArgs),
    /// Show one instance in detail: status, conditions, Fly ids, pairing, last error, the next
    /// plan and recent events (through the API).
    Describe(cli::DescribeArgs),
    /// Take over the apps the old web app built (docs/adoption.md): `--dry-run` lists them with
    /// what adopting each would change; otherwise adopts `--app …` or `--all` through the API.
    Import(Box<cli::import::ImportArgs>),
    /// Releases of a new OpenClaw image across the fleet: `release status [NAME]` (waves,
    /// failed members, events) and `release list` (through the API).
    #[command(subcommand)]
    Release(cli::release::ReleaseCommand),
    /// Mint or verify the short-lived LLM proxy token (the proxy's side of it).
    #[command(subcommand)]
    ProxyToken(openclaws_gateway::proxy_token::ProxyTokenCommand),
}

/// Prints a support command's page, or its error alone (no backtrace: it says what to fix) and
/// exits 1.
fn print_or_exit(result: Result<String, cli::CliError>) {
    match result {
        Ok(page) => print!("{page}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        // The support commands print for people: no log lines in their output.
        Command::Get(_)
        | Command::Describe(_)
        | Command::Release(_)
        | Command::Import(_)
        | Command::Openapi => None,
        _ => Some(cli.log_format.unwrap_or(LogFormat::Json)),
    };
    if let Some(format) = log_format {
        init_tracing(format);
    }
    let _sentry = init_sentry(&cli.sentry);
    match cli.command {
        Command::Serve(settings) => {
            let shutdown = CancellationToken::new();
            let running = serve::start(&settings, shutdown.clone()).await?;
            serve::shutdown_signal().await;
            running.stop().await?;
        }
        Command::Migrate(db) => {
            // sqlx's migrator holds a session advisory lock: through the session URL, never a
            // transaction pooler.
            let (url, name) = match db.database_listen_url.is_some() {
                true => (db.listen_url(), "DATABASE_LISTEN_URL"),
                false => (db.database_url.clone(), "DATABASE_URL"),
            };
            db.check().map_err(anyhow::Error::msg)?;
            let pool = store::connect(&url, 2)
                .await
                .with_context(|| format!("connecting to {name}"))?;
            store::migrate(&pool).await?;
            tracing::info!("migrations applied");
        }
        Command::Crd => print!("{}", openclaws_model::crd::crd_yaml()),
        Command::Openapi => println!(
            "{}",
            serde_json::to_string_pretty(&openclaws_api::openapi::document())?
        ),
        Command::Get(args) if args.watch => {
            if let Err(e) = cli::watch::run(&args, &mut std::io::stdout()).await {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        Command::Get(args) => print_or_exit(cli::get(&args).await),
        Command::Describe(args) => print_or_exit(cli::describe(&args).await),
        Command::Import(args) => match cli::import::run(&args).await {
            Ok((page, all_adopted)) => {
                print!("{page}");
                if !all_adopted {
                    std::process::exit(1);
                }
            }
            Err(e) => print_or_exit(Err(e)),
        },
        Command::Release(command) => print_or_exit(cli::release::run(&command).await),
        Command::ProxyToken(command) => {
            let result = command.run(chrono::Utc::now(), || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text);
                text
            });
            match result {
                Ok(out) => println!("{out}"),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
    }
    Ok(())
}
