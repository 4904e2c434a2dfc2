//! `openclaws-dev`: development commands that must not be in the production binary.
//! `run` is `make run` (the whole system locally with a demo instance); `with-postgres` runs a
//! command with `DATABASE_URL` pointing at a throwaway PostgreSQL (`make test` uses it).

use anyhow::Context;
use clap::{Parser, Subcommand};
use openclaws_testkit::{dev, postgres::ThrowawayPostgres};

/// Development tools of openclaws-controller.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything locally: throwaway PostgreSQL, the Fly simulator, the controller, and a
    /// demo instance reaching Ready.
    Run(dev::DevArgs),
    /// Run a command with DATABASE_URL pointing at a throwaway PostgreSQL.
    WithPostgres {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => dev::run(args).await,
        Command::WithPostgres { command } => {
            let pg = ThrowawayPostgres::start().await?;
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
}
