//! `openclaws-controller` command line: parse, build, run.

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use openclaws_controller::config::{DatabaseSettings, ServeSettings};
use openclaws_controller::telemetry::{init_sentry, init_tracing, LogFormat, SentrySettings};
use openclaws_controller::{dev, serve, sim, store};

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
    /// Run the Fly Machines API simulator.
    Sim(sim::SimArgs),
    /// Run everything locally: throwaway PostgreSQL, simulator, API and workers, and a demo instance.
    Dev(dev::DevArgs),
    /// Print the OpenClawInstance CustomResourceDefinition (YAML).
    Crd,
    /// List instances (phase, Ready reason, machine state, age) through the API.
    Get(openclaws_controller::cli::GetArgs),
    /// Show one instance in detail: status, conditions, Fly ids, pairing, last error, the next
    /// plan and recent events (through the API).
    Describe(openclaws_controller::cli::DescribeArgs),
    /// Mint or verify the short-lived LLM proxy token (the proxy's side of it).
    #[command(subcommand)]
    ProxyToken(openclaws_controller::gateway::proxy_token::ProxyTokenCommand),
    /// Run a command with DATABASE_URL pointing at a throwaway PostgreSQL (used by `make test`).
    #[command(hide = true)]
    WithPostgres {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

/// Prints a support command's page, or its error alone (no backtrace: it says what to fix) and
/// exits 1.
fn print_or_exit(result: Result<String, openclaws_controller::cli::CliError>) {
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
        Command::Get(_) | Command::Describe(_) => None,
        Command::Dev(_) => Some(cli.log_format.unwrap_or(LogFormat::Pretty)),
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
            let pool = store::connect(&db.database_url, 2)
                .await
                .context("connecting to DATABASE_URL")?;
            store::migrate(&pool).await?;
            tracing::info!("migrations applied");
        }
        Command::Sim(args) => sim::run(args).await?,
        Command::Dev(args) => dev::run(args).await?,
        Command::Crd => print!("{}", openclaws_controller::crd::crd_yaml()),
        Command::Get(args) => print_or_exit(openclaws_controller::cli::get(&args).await),
        Command::Describe(args) => print_or_exit(openclaws_controller::cli::describe(&args).await),
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
        Command::WithPostgres { command } => {
            let pg = dev::postgres::ThrowawayPostgres::start().await?;
            let status = tokio::process::Command::new(&command[0])
                .args(&command[1..])
                .env("DATABASE_URL", pg.url())
                .status()
                .await
                .with_context(|| format!("running {}", command[0]))?;
            drop(pg);
            std::process::exit(status.code().unwrap_or(1));
        }
    }
    Ok(())
}
