//! `make bench-watch`: what watches cost and how fast they are, against a real PostgreSQL.
//!
//! 1. **Status write cost, before and after** `resourceVersion` moved to a sequence: the
//!    controller's status write (`store::status::record`, one transaction) timed on a database
//!    migrated up to just before the watch migration and on one with it (the trigger that takes
//!    a ticket and a version and appends to the change log), each writer alternating between
//!    the two so both see the same load: sequential writes, then writers in parallel; per write
//!    p50, p99 and mean.
//! 2. **Watch latency**: one watcher on the API (NDJSON over HTTP), status changes written one
//!    after another the way the controller writes them (which send no notification: the
//!    server's hub finds them by polling), each after a random pause of up to 100 ms; for each,
//!    the time from the start of the write (and from its commit) to the event at the client;
//!    p50, p99 and max.
//!
//! `cargo bench -p openclaws-testkit --bench watch -- --help` lists the knobs. Under `cargo test`
//! (no `--bench` argument) it runs a small smoke version, so the bench cannot rot.

/// The controller binary's allocator (`src/main.rs`), so this bench measures what runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::{ensure, Context};
use clap::Parser;
use openclaws_api::watch::{WatchHub, WatchSettings};
use openclaws_api::{router, ApiState, ApiTokens};
use openclaws_model::secrets::SecretCipher;
use openclaws_model::{InstanceStatus, Phase};
use openclaws_store::{self as store, status, InstanceRecord};
use openclaws_telemetry::Metrics;
use openclaws_testkit::api::test_inputs;
use openclaws_testkit::db::{create_database, drop_database, seed_instances};
use openclaws_testkit::watch::WatchStream;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The migration that moved `resourceVersion` to a sequence.
const WATCH_MIGRATION: i64 = 20261201000001;
/// Later migrations the status write needs (columns it writes), applied to the "before"
/// database too, so both sides make the same write.
const STATUS_WRITE_MIGRATIONS: [i64; 1] = [20261209000001];
const TOKEN: &str = "bench-writer-token";

/// Knobs of the bench.
#[derive(Debug, Clone, Parser)]
#[command(about = "openclaws-controller watch bench")]
struct Args {
    /// Instances the writes spread over.
    #[arg(long, default_value_t = 200)]
    instances: usize,
    /// Status writes per measurement of write cost.
    #[arg(long, default_value_t = 2000)]
    writes: usize,
    /// Writers in parallel in the second write measurement.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Status changes whose watch latency is measured.
    #[arg(long, default_value_t = 1000)]
    changes: usize,
    /// Changes made through the API (which wake the watch by notification) measured.
    #[arg(long, default_value_t = 200)]
    api_changes: usize,
    /// Passed by `cargo bench`; without it the smoke version runs.
    #[arg(long, hide = true)]
    bench: bool,
    /// Test-name filters passed by `cargo test`/`cargo bench` (ignored).
    #[arg(hide = true)]
    filters: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let parsed = Args::parse();
    let args = if parsed.bench {
        parsed
    } else {
        Args {
            instances: 4,
            writes: 40,
            parallel: 2,
            changes: 20,
            api_changes: 5,
            ..parsed
        }
    };
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let base =
        std::env::var("DATABASE_URL").context("DATABASE_URL must name a PostgreSQL server")?;
    println!(
        "watch bench: {} instances, {} status writes per run ({} in parallel for the second), \
         {} watched changes",
        args.instances, args.writes, args.parallel, args.changes
    );
    let before = Db::create(&base, false).await?;
    let after = Db::create(&base, true).await?;
    let pair = [
        (before.instances(args.instances).await?, &before),
        (after.instances(args.instances).await?, &after),
    ];
    let sequential = write_cost(&pair, args.writes, 1).await?;
    let parallel = write_cost(&pair, args.writes, args.parallel).await?;
    println!(
        "\n| Status write (interleaved) | p50 | p99 | mean | p50 ×{p} | p99 ×{p} | mean ×{p} |",
        p = args.parallel
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, label) in [
        "before (no sequence, no log)",
        "after (sequence, trigger, change log)",
    ]
    .into_iter()
    .enumerate()
    {
        let (s, p) = (sequential[i], parallel[i]);
        println!(
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            s.p50, s.p99, s.mean, p.p50, p.p99, p.mean
        );
    }
    before.drop(&base).await;
    after.drop(&base).await;
    let db = Db::create(&base, true).await?;
    let records = db.instances(args.instances).await?;
    let latency = watch_latency(&db, &records, args.changes, args.api_changes).await?;
    println!(
        "\n| Watch latency ({} status changes, {} API changes) | p50 | p99 | max |\n|---|---|---|---|",
        args.changes, args.api_changes
    );
    for (label, figures) in [
        ("write start → event at the client", &latency.0),
        ("commit → event at the client", &latency.1),
        ("API write (PATCH) sent → event at the client", &latency.2),
    ] {
        println!(
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms |",
            figures.p50, figures.p99, figures.max
        );
    }
    db.drop(&base).await;
    Ok(())
}

/// A throwaway database, migrated with or without the watch migration.
struct Db {
    pool: PgPool,
    url: String,
    name: String,
    cipher: Arc<SecretCipher>,
}

impl Db {
    async fn create(base: &str, with_watch: bool) -> anyhow::Result<Db> {
        let (url, name) = create_database(base, "oc_bench_watch").await?;
        let pool = store::connect(&url, 20).await?;
        let migrations: Vec<_> = store::MIGRATOR
            .iter()
            .filter(|m| {
                with_watch
                    || m.version < WATCH_MIGRATION
                    || STATUS_WRITE_MIGRATIONS.contains(&m.version)
            })
            .cloned()
            .collect();
        let migrator = sqlx::migrate::Migrator {
            migrations: migrations.into(),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        };
        migrator.run(&pool).await?;
        Ok(Db {
            pool,
            url,
            name,
            cipher: Arc::new(SecretCipher::from_key([7; 32])),
        })
    }

    async fn instances(&self, count: usize) -> anyhow::Result<Vec<InstanceRecord>> {
        seed_instances(&self.pool, "bench", count).await
    }

    async fn drop(self, base: &str) {
        self.pool.close().await;
        drop_database(base, &self.name).await;
    }
}

/// A status that differs from the previous write of the same instance.
fn status_number(n: usize) -> InstanceStatus {
    InstanceStatus {
        phase: if n % 2 == 0 {
            Phase::Provisioning
        } else {
            Phase::Ready
        },
        observed_generation: n as i64,
        ..InstanceStatus::default()
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    p50: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn figures(mut samples: Vec<Duration>) -> Figures {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    Figures {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        mean: total.as_secs_f64() * 1000.0 / samples.len() as f64,
    }
}

/// `writes` status writes on each database of `pair`, spread over its instances by `parallel`
/// writers, each alternating between the two so both see the same load on the machine.
async fn write_cost(
    pair: &[(Vec<InstanceRecord>, &Db); 2],
    writes: usize,
    parallel: usize,
) -> anyhow::Result<[Figures; 2]> {
    let tasks: Vec<_> = (0..parallel)
        .map(|w| {
            let sides: Vec<_> = pair
                .iter()
                .map(|(records, db)| {
                    let mine: Vec<InstanceRecord> =
                        records.iter().skip(w).step_by(parallel).cloned().collect();
                    (db.pool.clone(), db.cipher.clone(), mine)
                })
                .collect();
            let count = writes / parallel;
            tokio::spawn(async move {
                let mut samples = [Vec::with_capacity(count), Vec::with_capacity(count)];
                for n in 0..count {
                    for (side, (pool, cipher, mine)) in sides.iter().enumerate() {
                        let record = &mine[n % mine.len()];
                        let observed = status_number(n / mine.len() + w * 7919);
                        let t0 = Instant::now();
                        let none = status::Recording::default();
                        status::record(&pool.clone().into(), cipher, record, &observed, &none)
                            .await?;
                        samples[side].push(t0.elapsed());
                    }
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut all = [Vec::new(), Vec::new()];
    for task in tasks {
        let [a, b] = task.await??;
        all[0].extend(a);
        all[1].extend(b);
    }
    let [a, b] = all;
    Ok([figures(a), figures(b)])
}

/// Serves the API over `db` and times `changes` status writes to their events at a watcher
/// (from the write's start, from its commit), then `api_changes` label changes sent through the
/// API (from the request).
async fn watch_latency(
    db: &Db,
    records: &[InstanceRecord],
    changes: usize,
    api_changes: usize,
) -> anyhow::Result<(Figures, Figures, Figures)> {
    let stop = CancellationToken::new();
    let settings = WatchSettings {
        listen_url: Some(db.url.clone()),
        ..WatchSettings::default()
    };
    let state = ApiState {
        pool: db.pool.clone().into(),
        cipher: db.cipher.clone(),
        tokens: ApiTokens {
            writer: TOKEN.to_owned(),
            reader: TOKEN.to_owned(),
        }
        .into(),
        base_domain: "openclaws.test".into(),
        metrics: Arc::new(Metrics::default()),
        pairing_window: Duration::from_secs(600),
        inputs: test_inputs().into(),
        watch: WatchHub::start(db.pool.clone().into(), settings, stop.clone()),
        rendered: Default::default(),
        desired: openclaws_store::desired::DesiredWriter::start(
            db.pool.clone().into(),
            openclaws_api::DB_WAIT,
        ),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(openclaws_api::serve(
        listener,
        router(state),
        stop.clone().cancelled_owned(),
    ));
    let http = reqwest::Client::new();
    let version = store::changes::list_version(&db.pool).await?;
    let url = format!(
        "{base}/v1/instances?watch=true&resourceVersion={version}&allowWatchBookmarks=false"
    );
    let mut stream = WatchStream::open(&http, &url, TOKEN, false)
        .await
        .map_err(|(status, body)| anyhow::anyhow!("watch refused: {status} {body}"))?;
    let (mut from_start, mut from_commit) = (Vec::new(), Vec::new());
    for n in 0..changes {
        // Changes come at times unrelated to the hub's polls, as they do in a fleet.
        let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..100);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let record = &records[n % records.len()];
        let t0 = tokio::time::Instant::now();
        let observed = status_number(n / records.len() + 1_000_000);
        status::record(
            &db.pool.clone().into(),
            &db.cipher,
            record,
            &observed,
            &status::Recording::default(),
        )
        .await?;
        let committed = tokio::time::Instant::now();
        let event = stream
            .next_change(Duration::from_secs(10))
            .await
            .context("the stream ended")?;
        ensure!(
            event.type_ == "MODIFIED" && event.name() == Some(record.name.as_str()),
            "unexpected event {event:?}"
        );
        from_start.push(event.at - t0);
        from_commit.push(event.at.saturating_duration_since(committed));
    }
    let mut from_request = Vec::new();
    for n in 0..api_changes {
        let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..100);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let record = &records[n % records.len()];
        let t0 = tokio::time::Instant::now();
        let response = http
            .patch(format!("{base}/v1/instances/{}", record.name))
            .bearer_auth(TOKEN)
            .header("content-type", "application/merge-patch+json")
            .body(format!("{{\"metadata\":{{\"labels\":{{\"n\":\"{n}\"}}}}}}"))
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "PATCH {}",
            response.status()
        );
        let event = stream
            .next_change(Duration::from_secs(10))
            .await
            .context("the stream ended")?;
        ensure!(
            event.name() == Some(record.name.as_str()),
            "unexpected event {event:?}"
        );
        from_request.push(event.at - t0);
    }
    stop.cancel();
    Ok((
        figures(from_start),
        figures(from_commit),
        figures(from_request),
    ))
}
