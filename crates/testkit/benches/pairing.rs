//! `make bench-pairing`: pairing by subscription (`docs/pairing.md`) on real OpenClaw gateways
//! (the simulator's process mode), with the controller in-process.
//!
//! 1. **Auto policy**: `--gateways` instances reach `Ready`; the dashboard reads each token
//!    (opening the pairing window); `--devices` real device clients (browsers) each connect,
//!    get a pending request, and retry every 50 ms until they get in. Latency is from the
//!    device's first connect to its successful connect after approval: p50, p90, p99, max.
//!    The Fly calls made meanwhile (the simulator's counters) are the calls pairing caused
//!    (goal: none; p99 goal: at most 2 s).
//! 2. **Manual policy**: one instance switched to `manual`; `--manual` devices each request,
//!    and the time until the request shows in `status.pairing.pending` (read through the API
//!    every 50 ms) is measured: p50, p99, max.
//!
//! Without the pinned OpenClaw installed (`make openclaw`) it prints why and skips. Under
//! `cargo test` (no `--bench` argument) it only parses its arguments: booting gateways is for
//! `make bench-pairing`.

/// The controller binary's allocator (`src/main.rs`), so this bench measures what runs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::ensure;
use clap::Parser;
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::{browser, connect_browser, gateway_token, pending_request};
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const READY: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(120);
const RETRY: Duration = Duration::from_millis(50);

/// Knobs of the bench.
#[derive(Debug, Clone, Parser)]
#[command(about = "openclaws-controller pairing bench")]
struct Args {
    /// Real gateways (instances) the devices pair with.
    #[arg(long, default_value_t = 3)]
    gateways: usize,
    /// Devices paired under the auto policy, spread over the gateways.
    #[arg(long, default_value_t = 50)]
    devices: usize,
    /// Devices pairing at the same time.
    #[arg(long, default_value_t = 5)]
    concurrency: usize,
    /// Requests measured under the manual policy.
    #[arg(long, default_value_t = 10)]
    manual: usize,
    /// Passed by `cargo bench`; without it nothing runs.
    #[arg(long, hide = true)]
    bench: bool,
    /// Test-name filters passed by `cargo test`/`cargo bench` (ignored).
    #[arg(hide = true)]
    filters: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.bench {
        println!("pairing bench: run it with `make bench-pairing` (it boots real gateways)");
        return Ok(());
    }
    if openclaws_testkit::openclaw::installed_openclaw().is_none() {
        println!(
            "pairing bench skipped: the pinned OpenClaw is not installed (run `make openclaw`)"
        );
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let stack = Stack::start(StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    })
    .await;
    let names: Vec<String> = (0..args.gateways).map(|i| format!("pair-{i}")).collect();
    for name in &names {
        let (code, body) = stack
            .put(name, json!({"customerId": "c-bench", "region": "iad"}))
            .await;
        ensure!(code.is_success(), "{body}");
    }
    let started = Instant::now();
    for name in &names {
        stack.wait_ready(name, READY).await;
    }
    println!(
        "{} gateways Ready in {:.1} s",
        names.len(),
        started.elapsed().as_secs_f64()
    );
    let auto = auto_policy(&stack, &names, &args).await?;
    let manual = manual_policy(&stack, &names[0], args.manual).await?;
    println!("{}", report(&args, &auto, &manual));
    for name in &names {
        stack.delete(name).await;
    }
    Ok(())
}

/// What the auto section measured.
struct Auto {
    latencies: Vec<Duration>,
    fly_calls: BTreeMap<String, u64>,
}

async fn auto_policy(stack: &Stack, names: &[String], args: &Args) -> anyhow::Result<Auto> {
    let mut tokens = Vec::new();
    for name in names {
        tokens.push((name.clone(), gateway_token(stack, name).await));
    }
    eventually(STEP, "a subscription per gateway", || async {
        let held = stack.metric("openclaws_pairing_subscriptions", "").await;
        (held >= names.len() as f64).then_some(())
    })
    .await;
    let before = fly_calls(stack).await;
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..args.devices {
        let (name, token) = tokens[i % tokens.len()].clone();
        let options = browser(stack, &format!("{name}.openclaws.test"), &token);
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _turn = gate.acquire_owned().await.expect("open");
            let device = DeviceIdentity::generate();
            // From the first connect (which leaves the request) until a connect gets in; under
            // load a connect may fail after the gateway recorded its request, and the approval
            // may come before the next try.
            let asked = Instant::now();
            loop {
                if let Ok(client) = connect_browser(&options, &device).await {
                    client.close().await;
                    return asked.elapsed();
                }
                assert!(asked.elapsed() < STEP, "a device was not approved in time");
                tokio::time::sleep(RETRY).await;
            }
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await?);
    }
    let after = fly_calls(stack).await;
    let fly_calls = after
        .into_iter()
        .filter_map(|(k, v)| {
            let n = v - before.get(&k).copied().unwrap_or(0);
            (n > 0).then_some((k, n))
        })
        .collect();
    Ok(Auto {
        latencies,
        fly_calls,
    })
}

async fn manual_policy(
    stack: &Stack,
    name: &str,
    requests: usize,
) -> anyhow::Result<Vec<Duration>> {
    let (code, body) = stack
        .patch(name, json!({"spec": {"pairing": {"policy": "manual"}}}))
        .await;
    ensure!(code.is_success(), "{body}");
    stack
        .wait_for(name, "the manual policy observed", STEP, |b| {
            b["status"]["observedGeneration"] == b["metadata"]["generation"]
        })
        .await;
    let token = gateway_token(stack, name).await;
    let options = browser(stack, &format!("{name}.openclaws.test"), &token);
    let mut latencies = Vec::new();
    for _ in 0..requests {
        let device = DeviceIdentity::generate();
        let asked = Instant::now();
        let request = pending_request(&options, &device, STEP).await;
        loop {
            let (_, body) = stack.get(name).await;
            if pending(&body, &request.request_id) {
                break;
            }
            ensure!(asked.elapsed() < STEP, "a request never showed");
            tokio::time::sleep(RETRY).await;
        }
        latencies.push(asked.elapsed());
    }
    Ok(latencies)
}

fn pending(body: &Value, request_id: &str) -> bool {
    body["status"]["pairing"]["pending"]
        .as_array()
        .is_some_and(|p| p.iter().any(|x| x["requestId"] == request_id))
}

/// Total calls per Fly endpoint so far.
async fn fly_calls(stack: &Stack) -> BTreeMap<String, u64> {
    let (_, stats) = stack.fly(Method::GET, "/_sim/stats", None).await;
    stats["calls"]
        .as_object()
        .map(|calls| {
            calls
                .iter()
                .map(|(k, v)| (k.clone(), v["total"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64()
}

fn report(args: &Args, auto: &Auto, manual: &[Duration]) -> String {
    let mut a = auto.latencies.clone();
    a.sort();
    let mut m = manual.to_vec();
    m.sort();
    let calls: u64 = auto.fly_calls.values().sum();
    let mut out = format!(
        "\n## Pairing bench\n\n{} real gateways, {} devices under policy auto ({} at a time), {} \
         requests under policy manual.\n\n| Figure | Value | Goal |\n|---|---|---|\n",
        args.gateways, args.devices, args.concurrency, args.manual
    );
    for (label, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0)] {
        out += &format!(
            "| Auto approval, request → connected, {label} (s) | {:.3} | |\n",
            percentile(&a, p)
        );
    }
    out += &format!(
        "| Auto approval, max (s) | {:.3} | p99 ≤ 2 |\n",
        a.last().map_or(0.0, Duration::as_secs_f64)
    );
    out += &format!("| Fly calls during auto pairing | {calls} | 0 |\n");
    for (label, p) in [("p50", 50.0), ("p99", 99.0)] {
        out += &format!(
            "| Manual, request → in status.pairing.pending, {label} (s) | {:.3} | |\n",
            percentile(&m, p)
        );
    }
    out += &format!(
        "| Manual, max (s) | {:.3} | |\n",
        m.last().map_or(0.0, Duration::as_secs_f64)
    );
    for (endpoint, n) in &auto.fly_calls {
        out += &format!("\nFly call during pairing: {endpoint} × {n}");
    }
    out
}
