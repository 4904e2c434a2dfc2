//! `openclaws-chaos`: the seeded chaos harness (`make chaos`). Runs one seed or a range of
//! seeds, each with real controller replicas, its own PostgreSQL and the Fly simulator under a
//! schedule of faults the seed fixes; prints each seed's invariants with their figures, a
//! table of all seeds, and for a failing seed the command that replays it. Exits 1 when any
//! seed failed.

use clap::Parser;
use openclaws_testkit::chaos::{self, report, ChaosOptions};
use std::time::Duration;

/// The seeded chaos harness of openclaws-controller (docs/chaos.md).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// One seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Several seeds: `A..B` (B excluded), `A..=B`, `A,B,C`, or one.
    #[arg(long, value_parser = parse_range)]
    seeds: Option<Seeds>,
    /// Instances created through the API per seed.
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// Controller replicas.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Seconds of faults and API traffic.
    #[arg(long, default_value_t = 150)]
    duration: u64,
    /// The replicas' work lease (`OPENCLAWS_LEASE_SECONDS`, at least 3).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(3..=30))]
    lease_seconds: u64,
    /// Seconds the fleet gets to converge after the faults end.
    #[arg(long, default_value_t = 240)]
    deadline: u64,
    /// The longest a write made outside fault windows may wait for its generation, in seconds.
    #[arg(long, default_value_t = 60)]
    max_wait: u64,
    /// The simulator's latency multiplier (1 = Fly-like).
    #[arg(long, default_value_t = 1.0)]
    latency_scale: f64,
    /// Keep the replicas' logs and the request log of passing seeds too.
    #[arg(long)]
    keep_logs: bool,
    /// Print each seed's schedule before running it.
    #[arg(long)]
    print_schedule: bool,
}

/// The seeds `--seeds` names.
#[derive(Debug, Clone)]
struct Seeds(Vec<u64>);

/// Seeds as `A..B` (B excluded), `A..=B`, a list `A,B,C`, or one seed.
fn parse_range(s: &str) -> Result<Seeds, String> {
    let bad = || format!("{s:?} is not A..B, A..=B, A,B,C or a seed");
    let number = |v: &str| v.trim().parse::<u64>().map_err(|_| bad());
    let seeds: Vec<u64> = if let Some((a, b)) = s.split_once("..=") {
        (number(a)?..=number(b)?).collect()
    } else if let Some((a, b)) = s.split_once("..") {
        (number(a)?..number(b)?).collect()
    } else {
        s.split(',').map(number).collect::<Result<_, _>>()?
    };
    if seeds.is_empty() {
        return Err(format!("{s:?} holds no seed"));
    }
    Ok(Seeds(seeds))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    let cli = Cli::parse();
    let seeds = match (cli.seed, &cli.seeds) {
        (Some(seed), _) => vec![seed],
        (None, Some(seeds)) => seeds.0.clone(),
        (None, None) => vec![1],
    };
    let mut reports = Vec::new();
    for seed in seeds {
        let options = ChaosOptions {
            seed,
            instances: cli.instances,
            replicas: cli.replicas,
            duration: Duration::from_secs(cli.duration),
            lease_seconds: cli.lease_seconds,
            deadline: Duration::from_secs(cli.deadline),
            max_wait: Duration::from_secs(cli.max_wait),
            latency_scale: cli.latency_scale,
            keep_logs: cli.keep_logs,
        };
        if cli.print_schedule {
            println!("{:#?}", options.schedule());
        }
        println!("seed {seed}: running ({})", options.replay_command());
        let report = chaos::run(&options).await?;
        println!("{}", report::seed(&report));
        reports.push(report);
    }
    println!("{}", report::table(&reports));
    let failed: Vec<_> = reports.iter().filter(|r| !r.passed()).collect();
    for r in &failed {
        println!(
            "seed {} failed; replay: {}",
            r.options.seed,
            r.options.replay_command()
        );
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// Warnings and errors of the harness itself on stderr (`RUST_LOG` to change).
fn tracing_subscriber_init() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,sqlx=error".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_read_as_ranges_lists_or_one() {
        let seeds = |arg: &str| {
            Cli::try_parse_from(["openclaws-chaos", "--seeds", arg])
                .map(|cli| cli.seeds.map(|s| s.0))
                .map_err(|e| e.to_string())
        };
        assert_eq!(seeds("1..=3"), Ok(Some(vec![1, 2, 3])));
        assert_eq!(seeds("1..3"), Ok(Some(vec![1, 2])));
        assert_eq!(seeds("4,9"), Ok(Some(vec![4, 9])));
        assert_eq!(seeds("7"), Ok(Some(vec![7])));
        assert!(seeds("3..3").is_err());
        assert!(seeds("x").is_err());
        let cli = Cli::try_parse_from(["openclaws-chaos", "--seed", "5", "--instances", "15"])
            .expect("parse");
        assert_eq!((cli.seed, cli.instances, cli.replicas), (Some(5), 15, 3));
    }
}
