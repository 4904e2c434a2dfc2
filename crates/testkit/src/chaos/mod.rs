//! The seeded chaos harness (`make chaos`, `openclaws-chaos`, and a short run in `make test`):
//! real `openclaws-controller serve` replicas on one PostgreSQL the harness owns and the Fly
//! simulator in the harness, while a seeded schedule kills, freezes and restarts replicas,
//! stops the database, takes Fly down, injects the simulator's faults, and drives creates,
//! updates, pauses, resumes and deletes through the API. When the faults stop and the fleet
//! had its time to converge, the invariants are checked ([`check`]) and reported with figures.
//!
//! A failing seed prints the command that replays it; the same seed gives the same schedule
//! ([`schedule`]). `docs/chaos.md` says what each invariant means and how to read a failure.

pub mod check;
pub mod foreign;
pub mod leases;
pub mod recorder;
pub mod replicas;
pub mod report;
pub mod sampler;
pub mod schedule;
pub mod workload;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::postgres::ThrowawayPostgres;
use crate::stack::{FLY_TOKEN, ORG};
use check::{AppliedFault, EventRow, Evidence, FinalRow, FinalWorld, Violation};
use replicas::{ReplicaSettings, Replicas};
use schedule::{Fault, Schedule, ScheduleParams};

/// The DNS zone and base domain of a chaos run.
pub const DOMAIN: &str = "openclaws.test";

/// What a run is made of.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// The seed of the schedule.
    pub seed: u64,
    /// Instances created through the API.
    pub instances: usize,
    /// Controller replicas.
    pub replicas: usize,
    /// How long faults and API traffic last.
    pub duration: Duration,
    /// `OPENCLAWS_LEASE_SECONDS` of the replicas.
    pub lease_seconds: u64,
    /// How long the fleet gets to converge after the last fault.
    pub deadline: Duration,
    /// The longest a write made outside fault windows may wait for its generation.
    pub max_wait: Duration,
    /// The simulator's latency multiplier (1 = Fly-like).
    pub latency_scale: f64,
    /// Keep the replicas' logs of a passing run too.
    pub keep_logs: bool,
}

impl ChaosOptions {
    /// The run `make chaos` makes of each seed: 3 replicas, 100 instances.
    pub fn full(seed: u64) -> Self {
        Self {
            seed,
            instances: 100,
            replicas: 3,
            duration: Duration::from_secs(150),
            lease_seconds: 4,
            deadline: Duration::from_secs(240),
            max_wait: Duration::from_secs(60),
            latency_scale: 1.0,
            keep_logs: false,
        }
    }

    /// The short run inside `make test`: 3 replicas, 15 instances, about a minute and a half.
    pub fn short(seed: u64) -> Self {
        Self {
            instances: 15,
            duration: Duration::from_secs(45),
            deadline: Duration::from_secs(90),
            ..Self::full(seed)
        }
    }

    fn schedule_params(&self) -> ScheduleParams {
        ScheduleParams {
            seed: self.seed,
            instances: self.instances,
            replicas: self.replicas,
            duration: self.duration,
            lease: Duration::from_secs(self.lease_seconds),
        }
    }

    /// The schedule these options make.
    pub fn schedule(&self) -> Schedule {
        Schedule::generate(&self.schedule_params())
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        format!(
            "cargo build --workspace --bins && target/debug/openclaws-chaos --seed {} \
             --instances {} --replicas {} --duration {} --lease-seconds {} --deadline {} \
             --max-wait {} --latency-scale {} --keep-logs",
            self.seed,
            self.instances,
            self.replicas,
            self.duration.as_secs(),
            self.lease_seconds,
            self.deadline.as_secs(),
            self.max_wait.as_secs(),
            self.latency_scale
        )
    }
}

/// The result of one seed.
#[derive(Debug)]
pub struct SeedReport {
    /// What ran.
    pub options: ChaosOptions,
    /// How long the whole seed took.
    pub elapsed: Duration,
    /// How long after the last fault the fleet converged (`None`: not within the deadline).
    pub converged_after: Option<Duration>,
    /// The figures.
    pub figures: check::Figures,
    /// Every broken invariant.
    pub violations: Vec<Violation>,
    /// The faults as applied.
    pub faults: Vec<String>,
    /// Where the replicas' logs are (kept for a failing run or with `keep_logs`).
    pub log_dir: PathBuf,
}

impl SeedReport {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Runs one seed from start to end and checks it.
pub async fn run(options: &ChaosOptions) -> anyhow::Result<SeedReport> {
    let started = tokio::time::Instant::now();
    let schedule = options.schedule();
    let log_dir = crate::target_tmp_dir().join(format!(
        "chaos/seed-{}-{}",
        options.seed,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&log_dir);
    std::fs::create_dir_all(&log_dir)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    let mut pg = ThrowawayPostgres::start().await?;
    let (database_url, _) = crate::db::create_database(pg.url(), "chaos").await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&database_url)
        .await?;
    openclaws_store::migrate(&pool).await?;
    leases::install(&pool).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_addr = listener.local_addr()?;
    let sim_url = format!("http://{sim_addr}");
    let mut replicas = Replicas::new(
        ReplicaSettings {
            database_url: database_url.clone(),
            sim_url: sim_url.clone(),
            lease_seconds: options.lease_seconds,
            watch_seconds: 5,
            log_dir: log_dir.clone(),
        },
        options.replicas,
    )?;
    let requests = recorder::RequestLog::new(replicas.registry());
    requests.set_sim_port(sim_addr.port());
    let stop_sim = CancellationToken::new();
    serve_simulator(listener, options, requests.clone(), stop_sim.clone());

    foreign::create(&http, &sim_url, &schedule.foreign).await?;
    let foreign_before = settled_foreign(&http, &sim_url, &schedule.foreign).await?;
    replicas.start_all().await?;

    let t0 = tokio::time::Instant::now();
    let t0_utc = Utc::now();
    let samples = Arc::new(Mutex::new(sampler::Samples::default()));
    let stop_sampling = CancellationToken::new();
    let sampling = tokio::spawn(sampler::run(
        http.clone(),
        sim_url.clone(),
        pool.clone(),
        samples.clone(),
        stop_sampling.clone(),
    ));
    let client = workload::ApiClient::new(replicas.registry());
    let drivers: Vec<_> = schedule
        .instances
        .iter()
        .cloned()
        .map(|plan| {
            let client = client.clone();
            tokio::spawn(async move { client.drive(plan, t0).await })
        })
        .collect();

    let applied = inject(
        &schedule,
        t0,
        &mut replicas,
        &requests,
        &mut pg,
        &http,
        &sim_url,
    )
    .await;
    tokio::time::sleep_until(t0 + options.duration).await;
    let mut ledgers = Vec::new();
    for driver in drivers {
        ledgers.push(driver.await.context("an API client task")?);
    }
    let faults_over = tokio::time::Instant::now();
    let converged_after = converge(options, &pool, &http, &sim_url, &ledgers, faults_over).await;

    replicas.stop_all().await;
    stop_sampling.cancel();
    let _ = sampling.await;
    let read_at = Utc::now();
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    let world = final_world(&pool, &http, &sim_url).await?;
    let incarnations = replicas
        .registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .incarnations
        .clone();
    let evidence = Evidence {
        lease: Duration::from_secs(options.lease_seconds),
        t0: t0_utc,
        ledgers,
        events: sqlx::query_as::<_, EventRow>(
            "SELECT instance_uid, instance_name, reason, message, created_at FROM events ORDER BY id",
        )
        .fetch_all(&pool)
        .await?,
        lease_log: leases::LeaseLog::load(&pool).await?,
        read_at,
        requests: requests.entries(),
        incarnations,
        samples,
        faults: applied.clone(),
        foreign_after: foreign::snapshot(&world.sim_state, &schedule.foreign),
        world,
        orphans: sim_get(&http, &sim_url, "/_sim/orphans").await?,
        stats: sim_get(&http, &sim_url, "/_sim/stats").await?,
        foreign: schedule.foreign.clone(),
        foreign_before,
        max_wait: options.max_wait,
    };
    let (figures, violations) = check::check(&evidence);
    stop_sim.cancel();
    pool.close().await;
    drop(pg);
    if violations.is_empty() && !options.keep_logs {
        let _ = std::fs::remove_dir_all(&log_dir);
    } else {
        write_request_log(&log_dir, &evidence)?;
    }
    Ok(SeedReport {
        options: options.clone(),
        elapsed: started.elapsed(),
        converged_after,
        figures,
        violations,
        faults: applied
            .iter()
            .map(|a| {
                format!(
                    "{} {}{}",
                    check_rel(t0_utc, a.start),
                    a.fault.label(),
                    if a.applied { "" } else { " (skipped)" }
                )
            })
            .collect(),
        log_dir,
    })
}

fn check_rel(t0: DateTime<Utc>, t: DateTime<Utc>) -> String {
    format!("t+{:.1}s", (t - t0).num_milliseconds() as f64 / 1000.0)
}

/// Serves the simulator (Fly-like latencies and rate limits, DNS for [`DOMAIN`]) behind the
/// request log until `stop`.
fn serve_simulator(
    listener: tokio::net::TcpListener,
    options: &ChaosOptions,
    requests: Arc<recorder::RequestLog>,
    stop: CancellationToken,
) {
    let mut config = fly_sim::SimConfig::new(FLY_TOKEN, ORG);
    config.dns_zone = DOMAIN.to_owned();
    config.latency = fly_sim::LatencyModel::spec_defaults().scaled(options.latency_scale);
    let simulator = fly_sim::Simulator::new(config);
    let app = simulator
        .router()
        .layer(axum::middleware::from_fn_with_state(
            requests,
            recorder::record,
        ));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    });
}

async fn sim_get(http: &reqwest::Client, sim_url: &str, path: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(format!("{sim_url}{path}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The foreign resources' snapshot once their machines have started.
async fn settled_foreign(
    http: &reqwest::Client,
    sim_url: &str,
    plan: &schedule::ForeignPlan,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let snapshot = foreign::snapshot(&sim_get(http, sim_url, "/_sim/state").await?, plan);
        let started = snapshot["machines"]
            .as_array()
            .is_some_and(|ms| ms.len() == 2 && ms.iter().all(|m| m["state"] == "started"));
        if started {
            return Ok(snapshot);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the foreign machines did not start: {snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fault's start or end, in time order.
enum Step {
    Start(usize),
    End(usize),
}

/// How long a kill or a freeze waits for the replica's next mutation before it strikes anyway.
const TRAP_WINDOW: Duration = Duration::from_secs(3);

/// Applies the schedule's faults at their times; returns them as applied. A kill or a freeze
/// strikes at the replica's next mutation within [`TRAP_WINDOW`] of its time (else at the end
/// of that window) and lasts its scheduled time from when it struck.
async fn inject(
    schedule: &Schedule,
    t0: tokio::time::Instant,
    replicas: &mut Replicas,
    requests: &recorder::RequestLog,
    pg: &mut ThrowawayPostgres,
    http: &reqwest::Client,
    sim_url: &str,
) -> Vec<AppliedFault> {
    let mut steps: Vec<(Duration, Step)> = Vec::new();
    for (i, f) in schedule.faults.iter().enumerate() {
        steps.push((f.at, Step::Start(i)));
        steps.push((f.at + f.what.lasting(), Step::End(i)));
    }
    steps.sort_by_key(|(at, _)| *at);
    let mut applied: Vec<AppliedFault> = schedule
        .faults
        .iter()
        .map(|f| AppliedFault {
            fault: f.what.clone(),
            start: Utc::now(),
            end: None,
            applied: false,
            hits: 0,
            removal: None,
        })
        .collect();
    let mut rules: HashMap<usize, u64> = HashMap::new();
    let mut ends: HashMap<usize, tokio::time::Instant> = HashMap::new();
    for (at, step) in steps {
        tokio::time::sleep_until(t0 + at).await;
        match step {
            Step::Start(i) => {
                let a = &mut applied[i];
                a.start = Utc::now();
                a.applied = match &a.fault {
                    Fault::Kill { replica, .. } => {
                        let running = replicas.is_running(*replica);
                        if running {
                            requests.arm(*replica, recorder::Trap::Kill);
                            requests.sprung_within(TRAP_WINDOW).await;
                        }
                        replicas.kill(*replica);
                        running
                    }
                    Fault::Freeze { replica, .. } => {
                        requests.arm(*replica, recorder::Trap::Freeze);
                        requests.sprung_within(TRAP_WINDOW).await || replicas.freeze(*replica)
                    }
                    Fault::PostgresDown { mode, .. } => {
                        let mode = *mode;
                        tokio::task::block_in_place(|| pg.stop(mode));
                        true
                    }
                    Fault::RegionFull { .. } => {
                        region(http, sim_url, true).await;
                        true
                    }
                    Fault::FlyOutage { .. } => {
                        let rule = json!({"kind": "error", "status": 503, "path": "^/v1/"});
                        add_rule(http, sim_url, &rule, &mut rules, i).await
                    }
                    Fault::SimRule { rule, .. } => {
                        add_rule(http, sim_url, rule, &mut rules, i).await
                    }
                };
                if let (Fault::Kill { replica, .. } | Fault::Freeze { replica, .. }, true) =
                    (&a.fault, a.applied)
                {
                    if let Some(struck) = struck_at(replicas, *replica, &a.fault) {
                        a.start = struck;
                    }
                }
                ends.insert(i, tokio::time::Instant::now() + a.fault.lasting());
            }
            Step::End(i) => {
                if let Some(end) = ends.remove(&i) {
                    tokio::time::sleep_until(end).await;
                }
                let a = &mut applied[i];
                match &a.fault {
                    Fault::Kill { replica, .. } if a.applied => {
                        if let Err(e) = replicas.start(*replica).await {
                            tracing::error!(error = %e, "restarting a replica failed");
                        }
                    }
                    Fault::Freeze { replica, .. } if a.applied => replicas.resume(*replica),
                    Fault::PostgresDown { .. } => {
                        if let Err(e) = pg.start_again().await {
                            tracing::error!(error = %e, "starting PostgreSQL again failed");
                        }
                    }
                    Fault::RegionFull { .. } => region(http, sim_url, false).await,
                    Fault::FlyOutage { .. } | Fault::SimRule { .. } => {
                        if let Some(id) = rules.remove(&i) {
                            let from = Utc::now();
                            a.hits = remove_rule(http, sim_url, id).await;
                            a.removal = Some((from, Utc::now()));
                        }
                    }
                    _ => {}
                }
                a.end = Some(Utc::now());
            }
        }
    }
    applied
}

/// When a kill or a freeze of `replica` actually struck.
fn struck_at(replicas: &Replicas, replica: usize, fault: &Fault) -> Option<DateTime<Utc>> {
    let registry = replicas.registry();
    let registry = registry.lock().unwrap_or_else(|e| e.into_inner());
    let inc = registry
        .incarnations
        .iter()
        .rev()
        .find(|i| i.replica == replica)?;
    match fault {
        Fault::Kill { .. } => inc.ended,
        _ => inc.freezes.last().map(|(stopped, _)| *stopped),
    }
}

async fn region(http: &reqwest::Client, sim_url: &str, full: bool) {
    let _ = http
        .post(format!("{sim_url}/_sim/regions/iad"))
        .json(&json!({ "full": full }))
        .send()
        .await;
}

async fn add_rule(
    http: &reqwest::Client,
    sim_url: &str,
    rule: &Value,
    rules: &mut HashMap<usize, u64>,
    i: usize,
) -> bool {
    let added = async {
        let body: Value = http
            .post(format!("{sim_url}/_sim/faults"))
            .json(rule)
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?
            .json()
            .await
            .ok()?;
        body["id"].as_u64()
    }
    .await;
    match added {
        Some(id) => {
            rules.insert(i, id);
            true
        }
        None => {
            tracing::error!(%rule, "the simulator refused a fault rule");
            false
        }
    }
}

/// Removes a rule and returns how often it fired.
async fn remove_rule(http: &reqwest::Client, sim_url: &str, id: u64) -> u64 {
    let hits = sim_get(http, sim_url, "/_sim/faults")
        .await
        .ok()
        .and_then(|list| {
            list["faults"]
                .as_array()?
                .iter()
                .find(|r| r["id"] == id)
                .and_then(|r| r["hits"].as_u64())
        })
        .unwrap_or(0);
    let _ = http
        .delete(format!("{sim_url}/_sim/faults/{id}"))
        .send()
        .await;
    hits
}

/// Waits until every instance ended as asked or the deadline; returns how long it took.
async fn converge(
    options: &ChaosOptions,
    pool: &sqlx::PgPool,
    http: &reqwest::Client,
    sim_url: &str,
    ledgers: &[workload::Ledger],
    from: tokio::time::Instant,
) -> Option<Duration> {
    let deadline = from + options.deadline;
    loop {
        let pending = async {
            let world = final_world(pool, http, sim_url).await.ok()?;
            Some(check::unconverged(&world, ledgers).len())
        }
        .await;
        if pending == Some(0) {
            return Some(from.elapsed());
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The instances' rows, Fly's state and the DNS records, read one after the other.
async fn final_world(
    pool: &sqlx::PgPool,
    http: &reqwest::Client,
    sim_url: &str,
) -> anyhow::Result<FinalWorld> {
    let rows: Vec<FinalRow> = sqlx::query_as(
        "SELECT uid, name, spec, generation, observed_generation, phase, status, \
             deletion_timestamp IS NOT NULL AS deleting FROM instances",
    )
    .fetch_all(pool)
    .await?;
    Ok(FinalWorld {
        rows: rows.into_iter().map(|r| (r.name.clone(), r)).collect(),
        sim_state: sim_get(http, sim_url, "/_sim/state").await?,
        dns_records: sim_get(http, sim_url, "/_sim/dns").await?["records"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    })
}

/// Writes the request log next to the replicas' logs, one request a line, for a failing seed.
fn write_request_log(dir: &std::path::Path, ev: &Evidence) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("requests.log"))?);
    for e in &ev.requests {
        writeln!(
            out,
            "{} {} {} {:?} owner={:?} pid={:?} call={:?}{}",
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            e.method,
            e.path,
            e.status,
            e.owner,
            e.pid,
            e.call,
            if e.broken { " broken" } else { "" }
        )?;
    }
    let mut lease = std::io::BufWriter::new(std::fs::File::create(dir.join("faults.log"))?);
    for a in &ev.faults {
        writeln!(
            lease,
            "{} .. {:?} {}{}",
            a.start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            a.end
                .map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            a.fault.label(),
            if a.applied { "" } else { " (skipped)" }
        )?;
    }
    Ok(())
}
