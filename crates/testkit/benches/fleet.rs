//! `make bench`: the controller against the Fly simulator at fleet scale, over real HTTP and a
//! real PostgreSQL. Three figures:
//!
//! 1. **Provisioning**: N new instances → time until all are Ready, Fly calls per instance by
//!    endpoint, and 429s (Fly's, counted by the simulator).
//! 2. **Steady state**: Fly calls per instance per watch pass with no drift, measured over a
//!    window, plus the measured cost of a deep look amortised over the full resync.
//! 3. **Drift**: a random share of instances has its machine stopped or destroyed out of band;
//!    time until the controller notices (its `DriftDetected` event) and until the instance is
//!    Ready again (p50, p99, max).
//!
//! Each figure is printed next to the lower bound implied by the latency model and the rate
//! limits. `cargo bench --bench fleet -- --help` lists the knobs; run through `make bench`, which
//! provides a throwaway PostgreSQL when `DATABASE_URL` is unset. Under `cargo test` (no
//! `--bench` argument) it runs a small smoke version and fails on any broken expectation, so the
//! bench cannot rot.

/// The controller binary's allocator (`src/main.rs`), so this bench measures what runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::{bail, ensure, Context};
use clap::Parser;
use fly_sim as sim;
use futures_util::{stream, StreamExt};
use openclaws_model::secrets::SecretCipher;
use openclaws_server::config::SecretKey;
use openclaws_server::serve;
use openclaws_store as store;
use openclaws_testkit::db::{create_database, drop_database};
use openclaws_testkit::stack::{serve_settings, FLY_TOKEN, ORG, WRITER};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DOMAIN: &str = "openclaws.biz";

/// Knobs of the bench.
#[derive(Debug, Clone, Parser)]
#[command(about = "openclaws-controller fleet bench against the Fly simulator")]
struct Args {
    /// New instances to provision.
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// Share of instances drifted out of band (percent).
    #[arg(long, default_value_t = 5.0)]
    drift_percent: f64,
    /// Length of the steady-state window in seconds.
    #[arg(long, default_value_t = 60)]
    steady_seconds: u64,
    /// Instances given a forced deep look to measure its cost.
    #[arg(long, default_value_t = 20)]
    deep_sample: usize,
    /// Multiplies the simulator's transition latencies (1 = Fly-like).
    #[arg(long, default_value_t = 1.0)]
    latency_scale: f64,
    /// Added to every Fly and DNS request (plus up to `request_jitter_ms`).
    #[arg(long, default_value_t = 80)]
    request_latency_ms: u64,
    /// Random extra request latency.
    #[arg(long, default_value_t = 120)]
    request_jitter_ms: u64,
    /// Concurrent reconciles.
    #[arg(long, default_value_t = 32)]
    workers: u32,
    /// Fleet watch interval in seconds.
    #[arg(long, default_value_t = 15.0)]
    watch_seconds: f64,
    /// Deep resync interval in seconds.
    #[arg(long, default_value_t = 3600)]
    resync_seconds: u64,
    /// Seed of the drift sample.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Controller replicas sharing the database (and Fly's budget through it).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Measure provisioning only (no steady state, no drift, no release), then the idle cost in
    /// two windows of `--steady-seconds`. With `--instances 0` only the empty controller's idle.
    #[arg(long)]
    provision_only: bool,
    /// Provision, then measure a release over the whole fleet (no steady state, no drift).
    #[arg(long)]
    release_only: bool,
    /// Scales Fly's rate limits in the simulator and in the controller's client and shared
    /// budget together (1 = Fly's own). Not Fly: a way to provision 10,000 instances through
    /// the whole path in minutes and measure the controller's own overhead.
    #[arg(long, default_value_t = 1.0)]
    rate_scale: f64,
    /// Runs the simulator as a process of its own (the `fly-sim` binary of this build, which
    /// `make bench` builds), so the CPU time and peak RSS reported are the controller's alone.
    #[arg(long)]
    sim_process: bool,
    /// `maxUnavailable` of the bench's release (canary 1, then waves of 10 %, 50 %, 100 %).
    #[arg(long, default_value_t = 50)]
    release_max_unavailable: u32,
    /// Passed by `cargo bench`; without it the smoke version runs.
    #[arg(long, hide = true)]
    bench: bool,
    /// Test-name filters passed by `cargo test`/`cargo bench` (ignored).
    #[arg(hide = true)]
    filters: Vec<String>,
}

impl Args {
    /// The small version run by `cargo test`.
    fn smoke() -> Self {
        Self {
            instances: 4,
            drift_percent: 50.0,
            steady_seconds: 3,
            deep_sample: 2,
            latency_scale: 0.2,
            request_latency_ms: 5,
            request_jitter_ms: 5,
            workers: 8,
            watch_seconds: 0.5,
            resync_seconds: 3600,
            seed: 7,
            replicas: 2,
            provision_only: false,
            release_only: false,
            release_max_unavailable: 2,
            rate_scale: 1.0,
            sim_process: false,
            bench: false,
            filters: Vec::new(),
        }
    }
}

/// Where the CPU time and peak RSS reported come from.
fn process_label(args: &Args) -> &'static str {
    if args.sim_process {
        "controller alone, simulator in its own process"
    } else {
        "controller and simulator in one process"
    }
}

/// Starts the `fly-sim` binary on a free loopback port with the bench's settings and waits until
/// it answers: its URL and its process (killed when dropped).
async fn start_sim_process(args: &Args) -> anyhow::Result<(String, tokio::process::Child)> {
    let binary = openclaws_testkit::workspace_binary("fly-sim")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = tokio::process::Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--token", FLY_TOKEN, "--org", ORG, "--dns-zone", DOMAIN])
        .args(["--latency-scale", &args.latency_scale.to_string()])
        .args(["--rate-scale", &args.rate_scale.to_string()])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .context("start fly-sim")?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = http.get(format!("{url}/_sim/stats")).send().await;
        if answered.is_ok_and(|r| r.status().is_success()) {
            return Ok((url, child));
        }
        ensure!(Instant::now() < deadline, "fly-sim did not answer at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() -> anyhow::Result<()> {
    let parsed = Args::parse();
    let args = if parsed.bench { parsed } else { Args::smoke() };
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

/// Everything the bench runs against.
struct Bench {
    args: Args,
    pool: PgPool,
    http: reqwest::Client,
    api: String,
    /// Every replica's API: each has its own metrics (only one runs the fleet watch, whichever
    /// takes its lock first), so a figure is the sum over them.
    replicas: Vec<String>,
    sim: String,
    /// The simulator's process with `--sim-process` (killed when dropped).
    _sim_process: Option<tokio::process::Child>,
    stop: CancellationToken,
    database: (String, String),
}

async fn run(args: Args) -> anyhow::Result<()> {
    let smoke = !args.bench;
    let bench = Bench::start(args.clone()).await?;
    println!(
        "fleet bench: {} instances, {} replicas of {} workers, watch every {} s, deep resync \
         every {} s, latency scale {}, request latency {}+{} ms, Fly rate limits ×{}",
        args.instances,
        args.replicas,
        args.workers,
        args.watch_seconds,
        args.resync_seconds,
        args.latency_scale,
        args.request_latency_ms,
        args.request_jitter_ms,
        args.rate_scale
    );

    if args.provision_only && args.instances == 0 {
        println!("\nNo instances: the controller's idle cost alone.\n");
        bench.print_idle().await?;
        bench.stop().await;
        return Ok(());
    }
    let single = bench.provision_one().await?;
    let provisioning = bench.provision_all().await?;
    if args.provision_only {
        println!(
            "\n| Figure | Measured |\n|---|---|\n| One instance alone | {:.1} s |\n\
             | {} instances on {} replicas, all Ready | {:.1} s (p50 {:.1} s, p99 {:.1} s) |\n\
             | Fly 429s | {} |\n| Reconciles per instance | {:.1} |\n{}",
            single.as_secs_f64(),
            args.instances,
            args.replicas,
            provisioning.total.as_secs_f64(),
            provisioning.p50.as_secs_f64(),
            provisioning.p99.as_secs_f64(),
            provisioning.fly_429s,
            provisioning.reconciles_per_instance,
            provisioning.usage_rows(args.instances as f64, process_label(&args))
        );
        bench.print_idle().await?;
        for (endpoint, n) in bench.too_many_by_endpoint().await? {
            println!("429 answers from `{endpoint}`: {n}");
        }
        bench.stop().await;
        return Ok(());
    }
    if args.release_only {
        let release = bench.release().await?;
        println!("\n{}", release.markdown(&args));
        bench.stop().await;
        return Ok(());
    }
    let steady = bench.steady_state().await?;
    let drift = bench.drift().await?;
    let release = bench.release().await?;

    let report = Report {
        args: &args,
        single,
        provisioning: &provisioning,
        steady: &steady,
        drift: &drift,
    };
    println!("\n{}", report.markdown());
    println!("\n{}", release.markdown(&args));
    for (endpoint, n) in bench.too_many_by_endpoint().await? {
        println!("429 answers from `{endpoint}`: {n}");
    }
    bench.stop().await;

    if smoke {
        ensure!(provisioning.fly_429s == 0, "Fly answered 429s");
        ensure!(
            release.phase == "Completed",
            "the release ended {}",
            release.phase
        );
        ensure!(
            release.fly_429s == 0,
            "Fly answered 429s during the release"
        );
        ensure!(
            drift.repaired.len() == drift.drifted,
            "not every drift was repaired"
        );
        ensure!(
            steady.per_instance_per_pass <= 1.0,
            "steady state costs {} calls per instance per pass",
            steady.per_instance_per_pass
        );
    }
    Ok(())
}

impl Bench {
    async fn start(args: Args) -> anyhow::Result<Self> {
        let base = std::env::var("DATABASE_URL")
            .context("DATABASE_URL must name a PostgreSQL server (`make bench` provides one)")?;
        let (url, name) = create_database(&base, "oc_bench").await?;
        let pool = store::connect(&url, 10).await?;
        store::migrate(&pool).await?;

        let stop = CancellationToken::new();
        let (sim, sim_process) = if args.sim_process {
            let (url, child) = start_sim_process(&args).await?;
            (url, Some(child))
        } else {
            let mut config = sim::SimConfig::new(FLY_TOKEN, ORG);
            config.dns_zone = DOMAIN.to_owned();
            config.latency = sim::LatencyModel::spec_defaults().scaled(args.latency_scale);
            config.rate_limits.scale(args.rate_scale);
            let sim = sim::Simulator::new(config);
            (
                openclaws_testkit::sim::serve_on_loopback(&sim, &stop).await,
                None,
            )
        };
        let http = reqwest::Client::new();
        if args.request_latency_ms + args.request_jitter_ms > 0 {
            let resp = http
                .post(format!("{sim}/_sim/faults"))
                .json(
                    &json!({"kind": "latency", "delay_ms": args.request_latency_ms,
                              "jitter_ms": args.request_jitter_ms}),
                )
                .send()
                .await?;
            ensure!(
                resp.status().is_success(),
                "latency rule: {}",
                resp.status()
            );
        }

        let mut settings = serve_settings(&url, &sim);
        settings.database.db_max_connections = 20;
        settings.secret_key = SecretKey(SecretCipher::from_key(rand::random()));
        settings.base_domain = DOMAIN.to_owned();
        settings.workers = args.workers;
        settings.resync_seconds = args.resync_seconds;
        settings.watch_seconds = args.watch_seconds;
        settings.fly.fly_rate_scale = args.rate_scale;
        // Replicas share the database, and through it the work queue and Fly's budget.
        let mut replicas = Vec::new();
        for _ in 0..args.replicas.max(1) {
            let running = serve::start(&settings, stop.clone()).await?;
            replicas.push(format!("http://{}", running.addr));
            let controller_stop = stop.clone();
            tokio::spawn(async move {
                controller_stop.cancelled().await;
                let _ = running.wait().await;
            });
        }
        Ok(Self {
            args,
            pool,
            http,
            api: replicas[0].clone(),
            replicas,
            sim,
            _sim_process: sim_process,
            stop,
            database: (base, name),
        })
    }

    /// Where the CPU time and peak RSS the bench reports come from.
    fn measured(&self) -> &'static str {
        process_label(&self.args)
    }

    async fn stop(self) {
        self.stop.cancel();
        self.pool.close().await;
        drop_database(&self.database.0, &self.database.1).await;
    }

    async fn put(&self, name: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(format!("{}/v1/instances/{name}", self.api))
            .bearer_auth(WRITER)
            .json(&json!({"spec": {"customerId": format!("cust-{name}"), "region": "iad"}}))
            .send()
            .await?;
        ensure!(resp.status().is_success(), "PUT {name}: {}", resp.status());
        Ok(())
    }

    /// Fly calls so far per endpoint (from the simulator, which sees every call).
    async fn fly_calls(&self) -> anyhow::Result<(BTreeMap<String, u64>, u64)> {
        let stats: Value = self
            .http
            .get(format!("{}/_sim/stats", self.sim))
            .send()
            .await?
            .json()
            .await?;
        let mut calls = BTreeMap::new();
        let mut too_many = 0;
        for (endpoint, c) in stats["calls"].as_object().context("stats.calls")? {
            calls.insert(endpoint.clone(), c["total"].as_u64().unwrap_or(0));
            too_many += c["statuses"]["429"].as_u64().unwrap_or(0);
        }
        Ok((calls, too_many))
    }

    /// Endpoints that answered 429 at least once, with how often.
    /// A release of a new image over every instance (canary 1, waves 10/50/100 %): the time
    /// each wave took (from its start to the next one's), Fly calls and 429s meanwhile.
    async fn release(&self) -> anyhow::Result<ReleaseRun> {
        let (calls_before, limited_before) = self.fly_calls().await?;
        let body = json!({"metadata": {"name": "bench-release"}, "spec": {
            "image": "ghcr.io/openclaw/openclaw:2026.9.6",
            "strategy": {"canary": 1, "waves": [10, 50, 100],
                         "maxUnavailable": self.args.release_max_unavailable,
                         "healthDeadlineSeconds": 3600}}});
        let resp = self
            .http
            .post(format!("{}/v1/releases", self.api))
            .bearer_auth(WRITER)
            .json(&body)
            .send()
            .await?;
        ensure!(resp.status().is_success(), "release: {}", resp.status());
        let started = Instant::now();
        let mut wave_started: BTreeMap<u64, Duration> = BTreeMap::new();
        let deadline = started + Duration::from_secs_f64(self.args.instances as f64 * 11.0 + 600.0);
        let last = loop {
            let release: Value = self
                .http
                .get(format!("{}/v1/releases/bench-release", self.api))
                .bearer_auth(WRITER)
                .send()
                .await?
                .json()
                .await?;
            let wave = release["status"]["wave"].as_u64().unwrap_or(0);
            wave_started
                .entry(wave)
                .or_insert_with(|| started.elapsed());
            let phase = release["status"]["phase"].as_str().unwrap_or("");
            if ["Completed", "Halted", "RolledBack", "Aborted"].contains(&phase) {
                break release;
            }
            ensure!(
                Instant::now() < deadline,
                "the release did not finish: {release}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let total = started.elapsed();
        let (calls_after, limited_after) = self.fly_calls().await?;
        let calls: u64 = calls_after
            .iter()
            .map(|(e, c)| c - calls_before.get(e).copied().unwrap_or(0))
            .sum();
        let sizes: Vec<u64> = last["status"]["waves"]
            .as_array()
            .map(|w| w.iter().map(|w| w["size"].as_u64().unwrap_or(0)).collect())
            .unwrap_or_default();
        let starts: Vec<Duration> = wave_started.values().copied().collect();
        let waves = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let from = starts.get(i).copied().unwrap_or(total);
                let to = starts.get(i + 1).copied().unwrap_or(total);
                (*size, to.saturating_sub(from))
            })
            .collect();
        Ok(ReleaseRun {
            phase: last["status"]["phase"].as_str().unwrap_or("").to_owned(),
            total,
            waves,
            fly_calls: calls,
            fly_429s: limited_after - limited_before,
        })
    }

    async fn too_many_by_endpoint(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let stats: Value = self
            .http
            .get(format!("{}/_sim/stats", self.sim))
            .send()
            .await?
            .json()
            .await?;
        Ok(stats["calls"]
            .as_object()
            .context("stats.calls")?
            .iter()
            .filter_map(|(endpoint, c)| {
                let n = c["statuses"]["429"].as_u64()?;
                (n > 0).then(|| (endpoint.clone(), n))
            })
            .collect())
    }

    /// A metric from the controller's `/metrics`, summed over label sets containing `labels`.
    /// A metric summed over every replica.
    async fn metric(&self, name: &str, labels: &str) -> anyhow::Result<f64> {
        let mut sum = 0.0;
        for replica in &self.replicas {
            let text = self
                .http
                .get(format!("{replica}/metrics"))
                .send()
                .await?
                .text()
                .await?;
            sum += text
                .lines()
                .filter(|l| l.starts_with(name) && l.contains(labels))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        Ok(sum)
    }

    /// Phase and machine of every instance whose name starts with `prefix`.
    async fn phases(&self, prefix: &str) -> anyhow::Result<HashMap<String, Row>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT name, coalesce(status->>'phase', '') AS phase, \
                 status->'fly'->>'machineId' AS machine_id, \
                 status->'fly'->>'machineState' AS machine_state \
             FROM instances WHERE name LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| (r.name.clone(), r)).collect())
    }

    /// Time to Ready of one instance alone: the per-instance critical path.
    async fn provision_one(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.put("probe").await?;
        let deadline = started + Duration::from_secs(120);
        loop {
            let phases = self.phases("probe").await?;
            if phases.get("probe").is_some_and(|p| p.phase == "Ready") {
                return Ok(started.elapsed());
            }
            ensure!(
                Instant::now() < deadline,
                "the probe instance was not Ready in 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn provision_all(&self) -> anyhow::Result<Provisioning> {
        let n = self.args.instances;
        let names: Vec<String> = (0..n).map(|i| format!("fleet-{i:05}")).collect();
        let (calls_before, limited_before) = self.fly_calls().await?;
        let reconciles_before = self.metric("openclaws_reconciles_total", "").await?;
        let usage_before = Usage::now(&self.pool).await?;
        let started = Instant::now();
        let puts: Vec<anyhow::Result<()>> = stream::iter(names.iter())
            .map(|name| self.put(name))
            .buffer_unordered(16)
            .collect()
            .await;
        for r in puts {
            r?;
        }
        let written = started.elapsed();
        let mut ready_at: HashMap<String, Duration> = HashMap::new();
        let mut last_report = Instant::now();
        // Generous: ten times the app-creation bound plus ten minutes.
        let deadline = started + Duration::from_secs_f64(n as f64 * 11.0 + 600.0);
        while ready_at.len() < n {
            let phases = self.phases("fleet-").await?;
            for (name, row) in &phases {
                if row.phase == "Ready" && !ready_at.contains_key(name) {
                    ready_at.insert(name.clone(), started.elapsed());
                }
            }
            if last_report.elapsed() >= Duration::from_secs(30) {
                let mut by_phase: BTreeMap<&str, usize> = BTreeMap::new();
                for row in phases.values() {
                    *by_phase.entry(row.phase.as_str()).or_default() += 1;
                }
                println!(
                    "  [{:>6.0}s] {}/{n} Ready {by_phase:?}",
                    started.elapsed().as_secs_f64(),
                    ready_at.len()
                );
                last_report = Instant::now();
            }
            if Instant::now() > deadline {
                bail!(
                    "only {}/{n} instances were Ready by the deadline",
                    ready_at.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let total = started.elapsed();
        let usage = Usage::now(&self.pool).await?.since(&usage_before);
        let (calls_after, limited_after) = self.fly_calls().await?;
        let mut per_endpoint: Vec<(String, f64)> = calls_after
            .iter()
            .map(|(e, c)| {
                let d = c - calls_before.get(e).copied().unwrap_or(0);
                (e.clone(), d as f64 / n as f64)
            })
            .filter(|(_, d)| *d > 0.0)
            .collect();
        per_endpoint.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut times: Vec<Duration> = ready_at.values().copied().collect();
        times.sort();
        Ok(Provisioning {
            written,
            total,
            p50: percentile(&times, 0.50),
            p99: percentile(&times, 0.99),
            per_endpoint,
            fly_429s: limited_after - limited_before,
            reconciles_per_instance: (self.metric("openclaws_reconciles_total", "").await?
                - reconciles_before)
                / n as f64,
            usage,
        })
    }

    /// Measures and prints the idle rows: two windows of `--steady-seconds` in a row. The first
    /// still pays for statements each pooled connection prepares the first time a loop runs
    /// them on it (a `Parse` is a transaction of its own); the second is the steady figure.
    async fn print_idle(&self) -> anyhow::Result<()> {
        let (window, first, second) = self.idle().await?;
        let rate = |u: &Usage| u.transactions / window.as_secs_f64();
        let cpu = |u: &Usage| u.cpu_seconds / window.as_secs_f64() * 100.0;
        println!(
            "| Idle, first {s} s window: database transactions per second | {:.2} |\n\
             | Idle, next {s} s window: database transactions per second | {:.2} |\n\
             | Idle: CPU ({}), first / next window | {:.2} % / {:.2} % of a core |",
            rate(&first),
            rate(&second),
            self.measured(),
            cpu(&first),
            cpu(&second),
            s = window.as_secs(),
        );
        Ok(())
    }

    /// Two windows of `--steady-seconds` in a row with nothing to do: what each cost. The
    /// tables provisioning wrote are vacuumed and analyzed first (autovacuum's transactions
    /// would count in the database's statistics with the controller's), then provisioning's
    /// echoes settle (two fleet-watch passes with no change, time for the vacuum's statistics
    /// to arrive too).
    async fn idle(&self) -> anyhow::Result<(Duration, Usage, Usage)> {
        sqlx::query("VACUUM (ANALYZE)").execute(&self.pool).await?;
        self.wait_quiet().await?;
        let window = Duration::from_secs(self.args.steady_seconds);
        let start = Usage::now(&self.pool).await?;
        tokio::time::sleep(window).await;
        let middle = Usage::now(&self.pool).await?;
        tokio::time::sleep(window).await;
        let end = Usage::now(&self.pool).await?;
        Ok((window, middle.since(&start), end.since(&middle)))
    }

    /// Waits until the echoes of provisioning settled: two watch passes with no wakeups.
    async fn wait_quiet(&self) -> anyhow::Result<()> {
        let mut quiet = 0;
        let mut wakeups = self
            .metric("openclaws_fleet_watch_wakeups_total", "")
            .await?;
        let mut passes = self
            .metric("openclaws_fleet_watch_passes_total", "ok")
            .await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        while quiet < 2 {
            ensure!(Instant::now() < deadline, "the fleet never went quiet");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let p = self
                .metric("openclaws_fleet_watch_passes_total", "ok")
                .await?;
            if p > passes {
                let w = self
                    .metric("openclaws_fleet_watch_wakeups_total", "")
                    .await?;
                quiet = if w == wakeups { quiet + 1 } else { 0 };
                wakeups = w;
                passes = p;
            }
        }
        Ok(())
    }

    async fn steady_state(&self) -> anyhow::Result<Steady> {
        let n = self.args.instances as f64 + 1.0;
        self.wait_quiet().await?;
        let usage_before = Usage::now(&self.pool).await?;
        let (before, _) = self.fly_calls().await?;
        let passes_before = self
            .metric("openclaws_fleet_watch_passes_total", "ok")
            .await?;
        let window = Duration::from_secs(self.args.steady_seconds);
        tokio::time::sleep(window).await;
        let idle = Usage::now(&self.pool).await?.since(&usage_before);
        let (after, _) = self.fly_calls().await?;
        let passes = self
            .metric("openclaws_fleet_watch_passes_total", "ok")
            .await?
            - passes_before;
        let delta = diff(&before, &after);
        let listing: u64 = delta
            .iter()
            .filter(|(e, _)| e.contains("/v1/orgs/"))
            .map(|(_, c)| c)
            .sum();
        let other: u64 = delta.values().sum::<u64>() - listing;

        // The cost of one deep look: force it on a sample and count what it called.
        let sample: Vec<String> = (0..self.args.deep_sample.min(self.args.instances))
            .map(|i| format!("fleet-{i:05}"))
            .collect();
        let (before, _) = self.fly_calls().await?;
        for name in &sample {
            let resp = self
                .http
                .post(format!("{}/v1/instances/{name}/reconcile", self.api))
                .bearer_auth(WRITER)
                .send()
                .await?;
            ensure!(
                resp.status().is_success(),
                "reconcile {name}: {}",
                resp.status()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let done: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM work w JOIN instances i ON i.uid = w.instance_uid \
                 WHERE i.name = ANY($1) AND w.lease_owner IS NULL AND w.reason = 'scheduled' \
                   AND w.due_at > now() + interval '60 seconds'",
            )
            .bind(&sample)
            .fetch_one(&self.pool)
            .await?;
            if done as usize == sample.len() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "forced deep looks did not finish"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (after, _) = self.fly_calls().await?;
        let deep = diff(&before, &after);
        let deep_calls: u64 = deep
            .iter()
            .filter(|(e, _)| !e.contains("/v1/orgs/"))
            .map(|(_, c)| c)
            .sum();
        let deep_per_look = deep_calls as f64 / sample.len().max(1) as f64;
        let passes = passes.max(1.0);
        let measured = (listing + other) as f64 / n / passes;
        let amortised = listing as f64 / passes / n
            + deep_per_look * self.args.watch_seconds / self.args.resync_seconds as f64;
        Ok(Steady {
            window,
            passes,
            listing,
            other,
            per_instance_per_pass: measured,
            deep_per_look,
            deep_endpoints: deep,
            long_run_per_instance_per_pass: amortised,
            idle,
        })
    }

    async fn drift(&self) -> anyhow::Result<Drift> {
        let n = self.args.instances;
        let k = ((n as f64 * self.args.drift_percent / 100.0).ceil() as usize).clamp(1, n);
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.args.seed);
        let mut names: Vec<String> = (0..n).map(|i| format!("fleet-{i:05}")).collect();
        names.shuffle(&mut rng);
        names.truncate(k);
        let phases = self.phases("fleet-").await?;
        let mut drifted: Vec<Drifted> = Vec::new();
        // Spread the changes over two watch intervals, so detection times sample every phase of
        // the watch cycle instead of all landing before the same pass.
        let spacing = Duration::from_secs_f64(2.0 * self.args.watch_seconds / k as f64);
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(spacing).await;
            }
            let machine = phases
                .get(name)
                .and_then(|p| p.machine_id.clone())
                .with_context(|| format!("{name} has no machine"))?;
            let app = format!("oc-{name}");
            let (method, path, kind) = if i % 2 == 0 {
                (
                    reqwest::Method::POST,
                    format!("/v1/apps/{app}/machines/{machine}/stop"),
                    "stopped",
                )
            } else {
                (
                    reqwest::Method::DELETE,
                    format!("/v1/apps/{app}/machines/{machine}?force=true"),
                    "destroyed",
                )
            };
            let at = chrono::Utc::now();
            let t0 = Instant::now();
            let mut req = self
                .http
                .request(method, format!("{}{path}", self.sim))
                .bearer_auth(FLY_TOKEN);
            if kind == "stopped" {
                req = req.json(&json!({}));
            }
            let resp = req.send().await?;
            ensure!(
                resp.status().is_success(),
                "{kind} {name}: {}",
                resp.status()
            );
            drifted.push(Drifted {
                name: name.clone(),
                machine,
                started: t0,
                at,
                kind,
            });
        }

        let mut repaired: HashMap<String, (Duration, &'static str)> = HashMap::new();
        let mut detected_at: HashMap<String, chrono::DateTime<chrono::Utc>> = HashMap::new();
        let drifted_names: Vec<String> = drifted.iter().map(|d| d.name.clone()).collect();
        let deadline = Instant::now() + Duration::from_secs(600);
        while repaired.len() < drifted.len() && Instant::now() < deadline {
            let phases = self.phases("fleet-").await?;
            let events: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
                "SELECT instance_name, created_at FROM events \
                 WHERE reason = 'DriftDetected' AND instance_name = ANY($1)",
            )
            .bind(&drifted_names)
            .fetch_all(&self.pool)
            .await?;
            for d in &drifted {
                let (name, at) = (&d.name, &d.at);
                if let Some(t) = events
                    .iter()
                    .filter(|(n, t)| n == name && t >= at)
                    .map(|(_, t)| *t)
                    .min()
                {
                    detected_at.entry(name.clone()).or_insert(t);
                }
                if repaired.contains_key(name) || !detected_at.contains_key(name) {
                    continue;
                }
                let Some(row) = phases.get(name) else {
                    continue;
                };
                let back = row.phase == "Ready"
                    && row.machine_state.as_deref() == Some("started")
                    && (d.kind == "stopped"
                        || row.machine_id.as_deref() != Some(d.machine.as_str()));
                if back {
                    repaired.insert(name.clone(), (d.started.elapsed(), d.kind));
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut detected: Vec<Duration> = drifted
            .iter()
            .filter_map(|Drifted { name, at, .. }| {
                detected_at
                    .get(name)
                    .map(|t| (*t - *at).to_std().unwrap_or_default())
            })
            .collect();
        detected.sort();
        let mut repair: Vec<Duration> = repaired.values().map(|(d, _)| *d).collect();
        repair.sort();
        let (_, limited) = self.fly_calls().await?;
        Ok(Drift {
            drifted: drifted.len(),
            detected,
            repair,
            repaired: repaired.into_iter().map(|(n, (d, k))| (n, d, k)).collect(),
            fly_429s_total: limited,
        })
    }
}

/// What the bench's release measured.
struct ReleaseRun {
    phase: String,
    total: Duration,
    /// Per wave: members and the time from its start to the next wave's (or the end).
    waves: Vec<(u64, Duration)>,
    fly_calls: u64,
    fly_429s: u64,
}

impl ReleaseRun {
    fn markdown(&self, args: &Args) -> String {
        let mut out = format!(
            "Release over {} instances (canary 1, waves 10/50/100 %, maxUnavailable {}): {} in {:.1} s, \
             {} Fly calls ({:.2} per instance), {} Fly 429s\n\n| Wave | Instances | Time | Per instance |\n|---|---|---|---|\n",
            args.instances,
            args.release_max_unavailable,
            self.phase,
            self.total.as_secs_f64(),
            self.fly_calls,
            self.fly_calls as f64 / args.instances.max(1) as f64,
            self.fly_429s
        );
        for (i, (size, took)) in self.waves.iter().enumerate() {
            let name = if i == 0 {
                "canary".to_owned()
            } else {
                format!("wave {i}")
            };
            let each = took.as_secs_f64() / (*size).max(1) as f64;
            out.push_str(&format!(
                "| {name} | {size} | {:.1} s | {each:.2} s |\n",
                took.as_secs_f64()
            ));
        }
        out
    }
}

/// An instance as the bench polls it.
#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    phase: String,
    machine_id: Option<String>,
    machine_state: Option<String>,
}

/// One out-of-band change.
struct Drifted {
    name: String,
    machine: String,
    started: Instant,
    at: chrono::DateTime<chrono::Utc>,
    kind: &'static str,
}

fn diff(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(e, c)| (e.clone(), c - before.get(e).copied().unwrap_or(0)))
        .filter(|(_, d)| *d > 0)
        .collect()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What the bench process (controller replicas and simulator) and its database used.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    /// User + system CPU seconds of this process.
    cpu_seconds: f64,
    /// Committed and rolled-back transactions of the bench's database.
    transactions: f64,
    /// Peak resident set size of this process, in MB (a high-water mark, not a difference).
    peak_rss_mb: f64,
}

/// How the bounds read when the limits are scaled.
fn scaled_note(k: f64) -> String {
    if k == 1.0 {
        String::new()
    } else {
        format!(" (×{k} in this run, limits scaled)")
    }
}

impl Provisioning {
    /// Table rows: what provisioning cost the controller (and, in one process, the simulator;
    /// `measured` says which).
    fn usage_rows(&self, n: f64, measured: &str) -> String {
        let u = &self.usage;
        format!(
            "| Database transactions per instance while provisioning | {:.1} | |\n\
             | CPU seconds per instance while provisioning ({measured}) | {:.3} | |\n\
             | Peak RSS ({measured}) | {:.1} MB | ≤ 100 MB |\n",
            u.transactions / n,
            u.cpu_seconds / n,
            u.peak_rss_mb
        )
    }
}

/// This process's peak resident set (`VmHWM`), in KiB. Not `getrusage`'s `ru_maxrss`: Linux
/// carries that over from the program the process ran before `exec`, so under `cargo bench` it
/// reports cargo's own peak (113 MB), whatever the bench uses.
fn peak_rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}

impl Usage {
    async fn now(pool: &PgPool) -> anyhow::Result<Self> {
        let transactions: i64 = sqlx::query_scalar(
            "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database \
             WHERE datname = current_database()",
        )
        .fetch_one(pool)
        .await?;
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)?;
        let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        Ok(Self {
            cpu_seconds: seconds(usage.user_time()) + seconds(usage.system_time()),
            transactions: transactions as f64,
            peak_rss_mb: peak_rss_kb()? as f64 / 1024.0,
        })
    }

    fn since(&self, before: &Usage) -> Usage {
        Usage {
            cpu_seconds: self.cpu_seconds - before.cpu_seconds,
            transactions: self.transactions - before.transactions,
            peak_rss_mb: self.peak_rss_mb,
        }
    }
}

struct Provisioning {
    usage: Usage,
    written: Duration,
    total: Duration,
    p50: Duration,
    p99: Duration,
    per_endpoint: Vec<(String, f64)>,
    fly_429s: u64,
    reconciles_per_instance: f64,
}

struct Steady {
    window: Duration,
    passes: f64,
    listing: u64,
    other: u64,
    per_instance_per_pass: f64,
    deep_per_look: f64,
    deep_endpoints: BTreeMap<String, u64>,
    long_run_per_instance_per_pass: f64,
    /// What the steady window cost (no deep look falls in it with the default resync).
    idle: Usage,
}

struct Drift {
    drifted: usize,
    detected: Vec<Duration>,
    repair: Vec<Duration>,
    repaired: Vec<(String, Duration, &'static str)>,
    fly_429s_total: u64,
}

struct Report<'a> {
    args: &'a Args,
    single: Duration,
    provisioning: &'a Provisioning,
    steady: &'a Steady,
    drift: &'a Drift,
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let a = self.args;
        let p = self.provisioning;
        let s = self.steady;
        let d = self.drift;
        let n = a.instances as f64;
        let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
        // Fly: app creation is one action per org, 1/s with a burst of 3 (the simulator's
        // setting); our client stays under it at one per 1.1 s after a burst of 2.
        // With `--rate-scale k` both are k times faster.
        let k = a.rate_scale;
        let fly_bound = self.single.as_secs_f64() + (n - 3.0).max(0.0) / k;
        let client_bound = self.single.as_secs_f64() + (n - 2.0).max(0.0) * 1.1 / k;
        let mut out = String::new();
        out += "| Figure | Measured | Lower bound / goal |\n|---|---|---|\n";
        out += &format!(
            "| One instance alone, create → Ready | {} | latency model: machine ≈ 1.5 s + certificate 2–10 s |\n",
            secs(self.single)
        );
        out += &format!(
            "| {} instances, all Ready | {} (p50 {}, p99 {}; specs written in {}) | {:.0} s at Fly's 1 app create/s per org{}; {:.0} s at our 1.1 s spacing |\n",
            a.instances,
            secs(p.total),
            secs(p.p50),
            secs(p.p99),
            secs(p.written),
            fly_bound,
            scaled_note(k),
            client_bound
        );
        out += &p.usage_rows(n, process_label(a));
        out += &format!(
            "| Fly 429s while provisioning | {} | 0 |\n| Reconciles per instance while provisioning | {:.1} | ≥ 2 |\n",
            p.fly_429s, p.reconciles_per_instance
        );
        let w = s.window.as_secs_f64();
        out += &format!(
            "| Steady state, database transactions per second | {:.2} | < 1 |\n\
             | Steady state, CPU ({}) | {:.2} % of a core | < 0.5 % |\n",
            s.idle.transactions / w,
            process_label(a),
            s.idle.cpu_seconds / w * 100.0
        );
        out += &format!(
            "| Steady state, Fly calls per instance per watch pass (window {}, {:.0} passes) | {:.4} ({} listings, {} other calls) | ≤ 1 |\n",
            secs(s.window),
            s.passes,
            s.per_instance_per_pass,
            s.listing,
            s.other
        );
        out += &format!(
            "| Deep look (full resync) cost | {:.1} calls | one per resource kind |\n",
            s.deep_per_look
        );
        out += &format!(
            "| Long run per instance per pass (listing + deep look every {} s) | {:.4} | ≤ 1 |\n",
            a.resync_seconds, s.long_run_per_instance_per_pass
        );
        let stat = |v: &[Duration]| {
            format!(
                "p50 {}, p99 {}, max {}",
                secs(percentile(v, 0.5)),
                secs(percentile(v, 0.99)),
                secs(v.last().copied().unwrap_or_default())
            )
        };
        out += &format!(
            "| Drift: {} machines stopped/destroyed out of band, detected | {} ({} of {}) | ≈ watch interval {} s / 2 on average, {} s at worst |\n",
            d.drifted,
            stat(&d.detected),
            d.detected.len(),
            d.drifted,
            a.watch_seconds,
            a.watch_seconds
        );
        out += &format!(
            "| Drift repaired (Ready again) | {} ({} of {}) | detection + start ≈ 1 s or create ≈ 1.5 s |\n",
            stat(&d.repair),
            d.repaired.len(),
            d.drifted
        );
        for kind in ["stopped", "destroyed"] {
            let mut v: Vec<Duration> = d
                .repaired
                .iter()
                .filter(|(_, _, k)| *k == kind)
                .map(|(_, t, _)| *t)
                .collect();
            v.sort();
            out += &format!("| … machine {kind} | {} ({}) | |\n", stat(&v), v.len());
        }
        out += &format!(
            "| Fly 429s over the whole run | {} | 0 |\n",
            d.fly_429s_total
        );
        out += "\nFly calls per instance while provisioning, by endpoint:\n\n| Endpoint | Calls per instance |\n|---|---|\n";
        for (endpoint, c) in &p.per_endpoint {
            out += &format!("| `{endpoint}` | {c:.2} |\n");
        }
        out += "\nOne deep look, by endpoint (calls over the sample):\n\n| Endpoint | Calls |\n|---|---|\n";
        for (endpoint, c) in &s.deep_endpoints {
            out += &format!("| `{endpoint}` | {c} |\n");
        }
        out
    }
}
