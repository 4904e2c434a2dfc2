//! `make bench-api`: the API's read and write throughput measured side by side with PostgreSQL's
//! own `pgbench` on the same database in the same run, printed as ratios (issue 16).
//!
//! The stack: a database on `DATABASE_URL`'s server, the Fly simulator at latency 0, and the
//! controller (`serve`: API and workers) in a runtime of its own. The fleet: `--provisioned`
//! instances provisioned through the whole path (Fly's app-creation limit makes that about 1.1 s
//! each), then copied in the store to `--instances` in all (the copies are converged rows with no
//! work queued: the store seeding is said in the output). Then, `--runs` times, each path for
//! `--seconds` with `--connections` connections of a load generator
//! ([`openclaws_testkit::load`]: hyper's connection-level HTTP/1.1 client, hyper 1.x as pinned in
//! the workspace's lock file; one keep-alive connection per task, requests back to back), and `pgbench -S` and `pgbench -N` with as many clients. Medians over the runs.
//!
//! - GET one: a random instance of the fleet.
//! - GET `?limit=50`: the first page of 50.
//! - PATCH: a merge patch of `spec.identity.displayName` (a new value each time, so every PATCH
//!   changes the spec and queues a reconcile) on the provisioned instances, workers running.
//!
//! Round trips to PostgreSQL per request are counted on the wire ([`CountingProxy`]): a second
//! API on the same database connects through the proxy and is sent requests one at a time; every
//! `Sync` and simple `Query` its connections send is a round trip, a `Sync` alone is a ping.
//!
//! `cargo bench -p openclaws-testkit --bench api -- --help` lists the knobs. Under `cargo test`
//! (no `--bench` argument) a small smoke version runs, so the bench cannot rot.

/// The controller binary's allocator (`src/main.rs`), so this bench measures what runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::{ensure, Context};
use clap::Parser;
use fly_sim as sim;
use hyper::Method;
use openclaws_model::secrets::SecretCipher;
use openclaws_server::config::{SecretKey, ServeSettings};
use openclaws_server::serve;
use openclaws_store::{self as store, PoolMode};
use openclaws_telemetry::Metrics;
use openclaws_testkit::db::{create_database, drop_database};
use openclaws_testkit::load::{Call, Connection};
use openclaws_testkit::pgwire::{Counted, CountingProxy};
use openclaws_testkit::stack::{serve_settings, WRITER};
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Knobs of the bench.
#[derive(Debug, Clone, Parser)]
#[command(about = "openclaws-controller API throughput against pgbench on the same database")]
struct Args {
    /// Instances in all (provisioned plus copies seeded in the store).
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// Instances provisioned through the whole path (the PATCH targets).
    #[arg(long, default_value_t = 16)]
    provisioned: usize,
    /// Runs of every path (the table shows medians).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Length of each measurement in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Load generator connections, and pgbench clients.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Concurrent reconciles of the controller.
    #[arg(long, default_value_t = 8)]
    workers: u32,
    /// The controller's database connections (`DB_MAX_CONNECTIONS`, default 10).
    #[arg(long, default_value_t = 10)]
    db_connections: u32,
    /// Requests sent one at a time to count round trips per request.
    #[arg(long, default_value_t = 200)]
    counted_requests: usize,
    /// The paths measured (comma-separated: get-one, list, patch); pgbench's rows run whatever
    /// is chosen.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "get-one,list,patch"
    )]
    paths: Vec<Path>,
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
            instances: 20,
            provisioned: 2,
            runs: 1,
            seconds: 1,
            connections: 2,
            workers: 2,
            db_connections: 10,
            counted_requests: 5,
            paths: vec![Path::GetOne, Path::List, Path::Patch],
            bench: false,
            filters: Vec::new(),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let parsed = Args::parse();
    let args = if parsed.bench { parsed } else { Args::smoke() };
    // The controller gets a runtime of its own, as it would be a process of its own; the load
    // generator runs on one thread (an event loop, as wrk's and pgbench's threads are).
    let server = tokio::runtime::Runtime::new()?;
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let base = std::env::var("DATABASE_URL")
        .context("DATABASE_URL must name a PostgreSQL server (`make bench-api` provides one)")?;
    let stop = CancellationToken::new();
    let stack = server.block_on(Stack::start(&args, &base, stop.clone()))?;
    let result = client.block_on(run(&args, &stack));
    stop.cancel();
    server.block_on(async {
        stack.pool.close().await;
        drop_database(&base, &stack.database).await;
    });
    result
}

/// What the bench runs against.
struct Stack {
    pool: PgPool,
    url: String,
    database: String,
    api: String,
    /// The API whose database connections go through the counting proxy.
    counted_api: String,
    proxy: CountingProxy,
}

impl Stack {
    async fn start(args: &Args, base: &str, stop: CancellationToken) -> anyhow::Result<Self> {
        let (url, database) = create_database(base, "oc_bench_api").await?;
        let pool = store::connect(&url, 4).await?;
        store::migrate(&pool).await?;
        let mut config = sim::SimConfig::new(openclaws_testkit::stack::FLY_TOKEN, "personal");
        config.latency = sim::LatencyModel::spec_defaults().scaled(0.0);
        config.dns_zone = "openclaws.test".to_owned();
        let sim =
            openclaws_testkit::sim::serve_on_loopback(&sim::Simulator::new(config), &stop).await;
        let settings = settings(&url, &sim, args);
        let api = start_serve(&settings, &stop).await?;

        let parsed = reqwest::Url::parse(&url)?;
        let upstream = format!(
            "{}:{}",
            parsed.host_str().unwrap_or("127.0.0.1"),
            parsed.port().unwrap_or(5432)
        );
        let proxy = CountingProxy::start(upstream, stop.clone()).await?;
        let mut through = parsed.clone();
        through.set_host(Some("127.0.0.1"))?;
        through
            .set_port(Some(proxy.addr.port()))
            .map_err(|_| anyhow::anyhow!("proxy port"))?;
        through.set_query(Some("sslmode=disable"));
        let counted_api = start_api_only(&settings, through.as_str(), &url, &stop).await?;
        Ok(Self {
            pool,
            url,
            database,
            api,
            counted_api,
            proxy,
        })
    }
}

fn settings(url: &str, sim: &str, args: &Args) -> ServeSettings {
    let mut settings = serve_settings(url, sim);
    settings.database.db_max_connections = args.db_connections;
    settings.secret_key = SecretKey(SecretCipher::from_key(rand::random()));
    settings.workers = args.workers;
    settings
}

/// The API alone (no workers, no other loop) on `through`, with its watch hub listening on
/// `listen_url`, so the proxy sees only what requests cost.
async fn start_api_only(
    settings: &ServeSettings,
    through: &str,
    listen_url: &str,
    stop: &CancellationToken,
) -> anyhow::Result<String> {
    let mut settings = settings.clone();
    settings.database.database_url = through.to_owned();
    settings.database.database_listen_url = Some(listen_url.to_owned());
    let db = store::Db::connect(
        through,
        settings.database.db_max_connections,
        PoolMode::Session,
    )
    .await?;
    let inputs = serve::desired_inputs(&settings)?;
    let state = serve::api_state(
        &settings,
        db,
        Arc::new(Metrics::new()),
        inputs,
        stop.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    tokio::spawn(openclaws_api::serve(
        listener,
        openclaws_api::router_with(state, settings.api.edge()),
        stop.clone().cancelled_owned(),
    ));
    Ok(api)
}

async fn start_serve(settings: &ServeSettings, stop: &CancellationToken) -> anyhow::Result<String> {
    let running = serve::start(settings, stop.clone()).await?;
    let api = format!("http://{}", running.addr);
    let until = stop.clone();
    tokio::spawn(async move {
        until.cancelled().await;
        let _ = running.wait().await;
    });
    Ok(api)
}

async fn run(args: &Args, stack: &Stack) -> anyhow::Result<()> {
    let smoke = !args.bench;
    let http = reqwest::Client::new();
    let started = Instant::now();
    provision(args, stack, &http).await?;
    let provisioned_in = started.elapsed();
    seed(args, stack).await?;
    converge(stack).await?;
    println!(
        "api bench: {} instances ({} provisioned through the API and the simulator at latency 0 \
         in {:.1} s, {} seeded in the store as copies of a converged one), {} connections, {} s \
         per measurement, {} runs, {} workers, {} database connections",
        args.instances,
        args.provisioned,
        provisioned_in.as_secs_f64(),
        args.instances - args.provisioned,
        args.connections,
        args.seconds,
        args.runs,
        args.workers,
        args.db_connections
    );
    let one = http
        .get(format!(
            "{}/v1/instances/{}",
            stack.api,
            provisioned_name(0)
        ))
        .bearer_auth(WRITER)
        .send()
        .await?
        .bytes()
        .await?;
    let page = http
        .get(format!("{}/v1/instances?limit=50", stack.api))
        .bearer_auth(WRITER)
        .send()
        .await?
        .bytes()
        .await?;
    println!(
        "a converged instance is {} bytes of JSON, a page of 50 {} bytes",
        one.len(),
        page.len()
    );
    let pgbench = Pgbench::find();
    if let Some(p) = &pgbench {
        p.init(&stack.url)?;
    } else {
        println!("pgbench not found (PATH, /usr/lib/postgresql/*/bin): its rows are skipped");
    }
    let mut runs: Vec<[Option<Measured>; 5]> = Vec::new();
    for run in 1..=args.runs {
        let load = load_average();
        eprintln!("run {run}: measuring");
        let mut measured = [None, None, None];
        for (slot, path) in measured
            .iter_mut()
            .zip([Path::GetOne, Path::List, Path::Patch])
        {
            if args.paths.contains(&path) {
                *slot = Some(load_test(args, stack, path).await?);
            }
        }
        converge(stack).await?;
        let select = pgbench
            .as_ref()
            .map(|p| p.run(&stack.url, args, "-S"))
            .transpose()?;
        let write = pgbench
            .as_ref()
            .map(|p| p.run(&stack.url, args, "-N"))
            .transpose()?;
        println!("run {run} (load average {load:.2} at its start):");
        let [get, list, patch] = measured;
        let rows = [get, list, patch, select, write];
        for (name, m) in NAMES.iter().zip(&rows) {
            if let Some(m) = m {
                println!("  {name:<16} {}", m.line());
            }
        }
        runs.push(rows);
    }
    let counted = count_round_trips(args, stack).await?;
    println!(
        "\n{}",
        table(&runs, &counted, args.counted_requests, load_average())
    );
    if smoke {
        for rows in &runs {
            for m in rows.iter().take(3).flatten() {
                ensure!(m.requests > 0, "no request answered");
                ensure!(m.errors == 0, "{} requests failed", m.errors);
            }
        }
        ensure!(
            counted.iter().all(|c| c.round_trips() > 0),
            "nothing counted"
        );
    }
    Ok(())
}

const NAMES: [&str; 5] = [
    "GET one",
    "GET ?limit=50",
    "PATCH",
    "pgbench -S",
    "pgbench -N",
];

/// A path the load generator drives.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
enum Path {
    GetOne,
    List,
    Patch,
}

fn provisioned_name(i: usize) -> String {
    format!("real-{i:05}")
}

fn seeded_name(i: usize) -> String {
    format!("seed-{i:05}")
}

/// The `n`th request of a path from task `task`.
fn request(path: Path, args: &Args, task: usize, n: u64) -> Call {
    match path {
        Path::GetOne => {
            let i = rand::thread_rng().gen_range(0..args.instances);
            let name = if i < args.provisioned {
                provisioned_name(i)
            } else {
                seeded_name(i)
            };
            Call::get(format!("/v1/instances/{name}"))
        }
        Path::List => Call::get("/v1/instances?limit=50".to_owned()),
        Path::Patch => {
            // Each task patches its own instances, so tasks do not queue on one another's rows.
            let owned: Vec<usize> = (task..args.provisioned.max(1))
                .step_by(args.connections)
                .collect();
            let i = owned.get(n as usize % owned.len().max(1)).copied();
            let name = provisioned_name(i.unwrap_or(task % args.provisioned.max(1)));
            let body = json!({"spec": {"identity": {"displayName": format!("bench {task} {n}")}}});
            Call {
                method: Method::PATCH,
                path: format!("/v1/instances/{name}"),
                body: body.to_string().into(),
                content_type: Some("application/merge-patch+json"),
            }
        }
    }
}

/// One measurement: throughput and latency.
#[derive(Debug, Clone, Default)]
struct Measured {
    requests: u64,
    errors: u64,
    per_second: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    /// pgbench's average latency (it reports no percentiles without per-transaction logs).
    average: Option<Duration>,
}

impl Measured {
    fn line(&self) -> String {
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_owned(), |d| {
                format!("{:.2} ms", d.as_secs_f64() * 1e3)
            })
        };
        match self.average {
            Some(_) => format!("{:>9.0}/s  average {}", self.per_second, ms(self.average)),
            None => format!(
                "{:>9.0}/s  p50 {}  p99 {}  ({} requests, {} errors)",
                self.per_second,
                ms(self.p50),
                ms(self.p99),
                self.requests,
                self.errors
            ),
        }
    }
}

/// `connections` tasks sending `path` back to back for `seconds`.
async fn load_test(args: &Args, stack: &Stack, path: Path) -> anyhow::Result<Measured> {
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for task in 0..args.connections {
        let (api, args, errors) = (stack.api.clone(), args.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut connection = match Connection::open(&api, WRITER).await {
                Ok(c) => c,
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return latencies;
                }
            };
            let mut n = 0;
            while Instant::now() < until {
                let t0 = Instant::now();
                match connection.send(request(path, &args, task, n)).await {
                    Ok((status, took)) => {
                        latencies.push(took);
                        if !(200..300).contains(&status) {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        latencies.push(t0.elapsed());
                        errors.fetch_add(1, Ordering::Relaxed);
                        match Connection::open(&api, WRITER).await {
                            Ok(c) => connection = c,
                            Err(_) => break,
                        }
                    }
                }
                n += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let elapsed = started.elapsed();
    all.sort();
    Ok(Measured {
        requests: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: Some(percentile(&all, 0.50)),
        p99: Some(percentile(&all, 0.99)),
        average: None,
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// PUTs the provisioned instances and waits until all are Ready.
async fn provision(args: &Args, stack: &Stack, http: &reqwest::Client) -> anyhow::Result<()> {
    for i in 0..args.provisioned.max(1) {
        let name = provisioned_name(i);
        let resp = http
            .put(format!("{}/v1/instances/{name}", stack.api))
            .bearer_auth(WRITER)
            .json(&json!({"spec": {"customerId": format!("cust-{name}"), "region": "iad"}}))
            .send()
            .await?;
        ensure!(resp.status().is_success(), "PUT {name}: {}", resp.status());
    }
    let deadline = Instant::now() + Duration::from_secs(60 + 3 * args.provisioned as u64);
    loop {
        let ready: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM instances WHERE name LIKE 'real-%' AND phase = 'Ready'",
        )
        .fetch_one(&stack.pool)
        .await?;
        if ready as usize >= args.provisioned.max(1) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "only {ready} instances Ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Copies the first provisioned instance's row (status, Fly ids, observations) to the seeded
/// names: converged rows with no work queued, as a fleet at rest looks to the API.
async fn seed(args: &Args, stack: &Stack) -> anyhow::Result<()> {
    let columns: String = sqlx::query_scalar(
        "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'instances' \
           AND is_generated = 'NEVER' AND column_default IS NULL \
           AND column_name NOT IN ('uid', 'name', 'customer_id', 'spec', 'fly_app')",
    )
    .fetch_one(&stack.pool)
    .await?;
    let seeded = args.instances.saturating_sub(args.provisioned.max(1)) as i64;
    let sql = format!(
        "INSERT INTO instances (uid, name, customer_id, spec, fly_app, {columns}) \
         SELECT gen_random_uuid(), n, 'cust-' || n, \
                jsonb_set(spec, '{{customerId}}', to_jsonb('cust-' || n)), 'oc-' || n, {columns} \
         FROM instances, \
              LATERAL (SELECT 'seed-' || lpad(g::text, 5, '0') AS n \
                       FROM generate_series($2::bigint, $2::bigint + $3 - 1) g) s \
         WHERE name = $1"
    );
    sqlx::query(&sql)
        .bind(provisioned_name(0))
        .bind(args.provisioned.max(1) as i64)
        .bind(seeded)
        .execute(&stack.pool)
        .await?;
    sqlx::query("ANALYZE").execute(&stack.pool).await?;
    Ok(())
}

/// Waits until no work is due or leased (the reconciles the last writes caused have run).
async fn converge(stack: &Stack) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM work WHERE due_at <= now() OR lease_owner IS NOT NULL",
        )
        .fetch_one(&stack.pool)
        .await?;
        if busy == 0 {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{busy} work items never settled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Round trips, pings and statements per request of each path, counted on the wire.
async fn count_round_trips(args: &Args, stack: &Stack) -> anyhow::Result<Vec<Counted>> {
    let mut out = Vec::new();
    let mut connection = Connection::open(&stack.counted_api, WRITER).await?;
    for path in [Path::GetOne, Path::List, Path::Patch] {
        // One request first, so its statements are prepared on the connection (the pool holds
        // more than one, so a few may still be prepared inside the count).
        connection.send(request(path, args, 0, u64::MAX)).await?;
        let before = stack.proxy.counts.snapshot();
        for n in 0..args.counted_requests {
            let (status, _) = connection.send(request(path, args, 0, n as u64)).await?;
            ensure!((200..300).contains(&status), "{path:?}: {status}");
        }
        out.push(stack.proxy.counts.snapshot() - before);
    }
    Ok(out)
}

/// The 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// PostgreSQL's `pgbench`.
struct Pgbench(PathBuf);

impl Pgbench {
    fn find() -> Option<Self> {
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("pgbench"))
                .find(|p| p.is_file())
        });
        let installed = || {
            let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| Some(e.ok()?.path().join("bin/pgbench")))
                .filter(|p| p.is_file())
                .collect();
            found.sort();
            found.pop()
        };
        on_path.or_else(installed).map(Self)
    }

    fn init(&self, url: &str) -> anyhow::Result<()> {
        let out = std::process::Command::new(&self.0)
            .args(["-i", "-q", "-s", "10", url])
            .output()?;
        ensure!(
            out.status.success(),
            "pgbench -i: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// `pgbench <mode>` with `connections` clients for `seconds`.
    fn run(&self, url: &str, args: &Args, mode: &str) -> anyhow::Result<Measured> {
        let (clients, seconds) = (args.connections.to_string(), args.seconds.to_string());
        let out = std::process::Command::new(&self.0)
            .args([mode, "-n", "-c", &clients, "-j", "2", "-T", &seconds, url])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "pgbench {mode}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let figure = |prefix: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(prefix))
                .and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        };
        let tps = figure("tps = ").context("pgbench printed no tps")?;
        let average = figure("latency average = ").map(|ms| Duration::from_secs_f64(ms / 1e3));
        Ok(Measured {
            requests: figure("number of transactions actually processed: ").unwrap_or(0.0) as u64,
            errors: 0,
            per_second: tps,
            p50: None,
            p99: None,
            average,
        })
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// The ratio table: medians over the runs, each path against its pgbench mode and goal.
fn table(
    runs: &[[Option<Measured>; 5]],
    counted: &[Counted],
    requests: usize,
    load: f64,
) -> String {
    let med = |row: usize, f: &dyn Fn(&Measured) -> Option<f64>| {
        median(
            runs.iter()
                .filter_map(|r| r[row].as_ref().and_then(f))
                .collect(),
        )
    };
    let rate = |row| med(row, &|m| Some(m.per_second));
    let ms = |row, f: fn(&Measured) -> Option<Duration>| {
        med(row, &|m| f(m).map(|d| d.as_secs_f64() * 1e3))
    };
    let (select, write) = (rate(3), rate(4));
    // (row, against, goal ratio, goal p99 in ms)
    let goals = [
        (0, select, 0.5, Some(5.0)),
        (1, select, 0.1, Some(10.0)),
        (2, write, 0.5, None),
    ];
    let mut out = format!(
        "Medians of {} runs; load average {load:.2} at the end.\n\n\
         | Path | Measured | Ratio to PostgreSQL | Goal | Met |\n|---|---|---|---|---|\n",
        runs.len()
    );
    for (row, against, goal, p99_goal) in goals {
        let Some(r) = rate(row) else { continue };
        let p99 = ms(row, |m| m.p99).unwrap_or(f64::NAN);
        let base = if row == 2 { "pgbench -N" } else { "pgbench -S" };
        let ratio = against.map(|a| r / a);
        let met = ratio.map(|x| x >= goal).unwrap_or(false) && p99_goal.is_none_or(|g| p99 < g);
        out += &format!(
            "| {} | {r:.0} req/s, p50 {:.2} ms, p99 {p99:.2} ms | {} | ≥ {goal}× `{base}`{} | {} |\n",
            NAMES[row],
            ms(row, |m| m.p50).unwrap_or(f64::NAN),
            ratio.map_or("-".to_owned(), |x| format!("{x:.2}× `{base}`")),
            p99_goal.map_or(String::new(), |g| format!(", p99 < {g} ms")),
            if met { "yes" } else { "no" }
        );
    }
    for (row, m) in [(3, select), (4, write)] {
        if let Some(r) = m {
            let avg = ms(row, |m| m.average).unwrap_or(f64::NAN);
            out += &format!(
                "| `{}` | {r:.0} tps, average {avg:.2} ms | 1× | | |\n",
                NAMES[row]
            );
        }
    }
    out += "\nPostgreSQL round trips per request (counted on the wire: each `Sync` and simple \
            `Query` a client sends; requests one at a time):\n\n\
            | Path | Round trips | of which pings | Statements |\n|---|---|---|---|\n";
    for (name, c) in NAMES.iter().zip(counted) {
        let n = requests.max(1) as f64;
        out += &format!(
            "| {name} | {:.2} | {:.2} | {:.2} |\n",
            c.round_trips() as f64 / n,
            c.pings as f64 / n,
            c.statements() as f64 / n
        );
    }
    out
}
