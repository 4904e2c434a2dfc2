//! `fly-sim`: the Fly Machines API simulator (and its Cloudflare-compatible DNS API and
//! Fly-like proxy) as its own program, for `make run`, `make sim-process` and manual testing.
//! Point the controller at it with `FLY_API_BASE` and `OPENCLAWS_DNS_API_BASE`.

use clap::Parser;

/// A Fly Machines API simulator.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    sim: fly_sim::SimArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    fly_sim::run(Cli::parse().sim).await
}
