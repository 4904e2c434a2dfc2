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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let log_format = cli.log_format.unwrap_or(match &cli.command {
        Command::Dev(_) => LogFormat::Pretty,
        _ => LogFormat::Json,
    });
    init_tracing(log_format);
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
