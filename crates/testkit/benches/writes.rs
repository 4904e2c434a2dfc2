//! `make bench-writes`: what a write storm of status writes leaves behind in the `instances`
//! table, before and after the observation snapshot was kept when unchanged (`docs/idle.md`).
//!
//! The controller's status write (`store::status::record`, one transaction) is made `--writes`
//! times over `--instances` rows by 4 writers, each write with a new status and a snapshot of
//! the observed world as large as a real one (~20 KB: a machine config with its boot files),
//! whose look time changes on every write and whose content changes on one write in 100 (a
//! machine state change). "Before" passes no digest, so every write stores the snapshot again,
//! as every status write did; "after" passes the digest the reconcile computes (of the world
//! without its times). Each side runs on its own fresh database; autovacuum runs as configured.
//! Printed per side: heap, TOAST and total size of `instances`, dead tuples, HOT updates, and
//! the write time.
//!
//! `cargo bench -p openclaws-testkit --bench writes -- --help` lists the knobs. Under `cargo
//! test` (no `--bench` argument) it runs a small smoke version, so the bench cannot rot.

/// The controller binary's allocator (`src/main.rs`), so this bench measures what runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::{ensure, Context};
use base64::Engine;
use clap::Parser;
use openclaws_model::secrets::SecretCipher;
use openclaws_model::{InstanceStatus, Phase};
use openclaws_store::{self as store, status, InstanceRecord};
use openclaws_testkit::db::{create_database, drop_database, seed_instances};
use rand::RngCore;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: usize = 4;

/// Knobs of the bench.
#[derive(Debug, Clone, Parser)]
#[command(about = "openclaws-controller status write storm bench")]
struct Args {
    /// Instances the writes spread over.
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// Status writes per side.
    #[arg(long, default_value_t = 100_000)]
    writes: usize,
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
            writes: 200,
            ..parsed
        }
    };
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let base =
        std::env::var("DATABASE_URL").context("DATABASE_URL must name a PostgreSQL server")?;
    println!(
        "write storm bench: {} status writes over {} instances by {WRITERS} writers, \
         a ~{} KB snapshot each",
        args.writes,
        args.instances,
        world(0, 0).to_string().len() / 1024
    );
    println!(
        "\n| Side | Heap | TOAST | Total | Dead tuples | HOT updates | Mean write | Writes/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (label, digest) in [
        ("before (snapshot rewritten on every write)", false),
        ("after (snapshot kept while unchanged)", true),
    ] {
        let (url, name) = create_database(&base, "oc_bench_writes").await?;
        let pool = store::connect(&url, 10).await?;
        store::MIGRATOR.run(&pool).await?;
        let records = seed_instances(&pool, "storm", args.instances).await?;
        let started = Instant::now();
        let mean = storm(&pool, &records, args.writes, digest).await?;
        let elapsed = started.elapsed();
        let sizes = sizes(&pool, args.writes).await?;
        println!(
            "| {label} | {} | {} | {} | {} | {} of {} | {:.2} ms | {:.0} |",
            mb(sizes.heap),
            mb(sizes.toast),
            mb(sizes.total),
            sizes.dead,
            sizes.hot,
            sizes.updates,
            mean.as_secs_f64() * 1000.0,
            args.writes as f64 / elapsed.as_secs_f64()
        );
        pool.close().await;
        drop_database(&base, &name).await;
    }
    Ok(())
}

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// Random bytes as base64: boot files do not compress much either.
fn file_body(bytes: usize, seed: u64) -> String {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut raw = vec![0u8; bytes];
    rng.fill_bytes(&mut raw);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// An observed world shaped like the reconcile's, `version` naming its content (the machine's
/// state changes with it) and `look` its look time.
fn world(version: usize, look: usize) -> Value {
    let state = if version % 2 == 0 {
        "started"
    } else {
        "stopped"
    };
    json!({
        "observed_at": format!("2026-12-02T00:00:00.{look:06}Z"),
        "app": {"Ours": {"name": "oc-storm", "status": "deployed"}},
        "machines": [{
            "id": "c7b9f349599184", "state": state,
            "config": {"files": [
                {"guest_path": "/etc/openclaws/boot.mjs", "raw_value": file_body(10_000, 1)},
                {"guest_path": "/etc/openclaws/bundle.json", "raw_value": file_body(4_000, 2)}
            ], "image": "ghcr.io/openclaw/openclaw:main"}
        }],
        "gateway": {"health": "Healthy", "at": format!("2026-12-02T00:00:00.{look:06}Z")}
    })
}

/// Makes `writes` status writes over `records` with 4 writers; the mean write time.
async fn storm(
    pool: &PgPool,
    records: &[InstanceRecord],
    writes: usize,
    digest: bool,
) -> anyhow::Result<Duration> {
    let cipher = Arc::new(SecretCipher::from_key([7; 32]));
    let db: store::Db = pool.clone().into();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (db, cipher, records) = (db.clone(), cipher.clone(), records.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut total = Duration::ZERO;
            for n in (w..writes).step_by(WRITERS) {
                let record = &records[n % records.len()];
                // Each instance's world changes on one of its writes in 100.
                let version = n / records.len() / 100;
                let snapshot = status::Snapshot {
                    world: world(version, n),
                    at: chrono::Utc::now(),
                    digest: digest.then(|| format!("v{version}")),
                };
                let write = status::Recording {
                    snapshot: Some(&snapshot),
                    ..status::Recording::default()
                };
                let t0 = Instant::now();
                status::record(&db, &cipher, record, &status_number(n), &write).await?;
                total += t0.elapsed();
            }
            anyhow::Ok(total)
        }));
    }
    let mut total = Duration::ZERO;
    for t in tasks {
        total += t.await??;
    }
    Ok(total / writes.max(1) as u32)
}

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

/// What the table looks like after the storm.
struct Sizes {
    heap: i64,
    toast: i64,
    total: i64,
    dead: i64,
    hot: i64,
    updates: i64,
}

/// The sizes and counters once the statistics count all `writes` updates (each backend
/// reports its counters within a second or so of going idle).
async fn sizes(pool: &PgPool, writes: usize) -> anyhow::Result<Sizes> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sizes = read_sizes(pool).await?;
        if sizes.updates >= writes as i64 {
            return Ok(sizes);
        }
        ensure!(
            Instant::now() < deadline,
            "the statistics counted {} of {writes} updates",
            sizes.updates
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn read_sizes(pool: &PgPool) -> anyhow::Result<Sizes> {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    let (heap, toast, total): (i64, i64, i64) = sqlx::query_as(
        "SELECT pg_relation_size(c.oid), COALESCE(pg_total_relation_size(c.reltoastrelid), 0), \
                pg_total_relation_size(c.oid) \
         FROM pg_class c WHERE c.relname = 'instances' AND c.relkind = 'r'",
    )
    .fetch_one(pool)
    .await?;
    let (dead, hot, updates): (i64, i64, i64) = sqlx::query_as(
        "SELECT n_dead_tup, n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables \
         WHERE relname = 'instances'",
    )
    .fetch_one(pool)
    .await?;
    Ok(Sizes {
        heap,
        toast,
        total,
        dead,
        hot,
        updates,
    })
}
