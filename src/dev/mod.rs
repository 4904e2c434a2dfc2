//! `dev`: the whole system on one machine with embedded defaults — a throwaway PostgreSQL, the
//! Fly simulator, the API and the workers — plus a demo instance whose progress is printed.

pub mod postgres;

use anyhow::Context;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::config::{DatabaseSettings, FlySettings, SecretKey, ServeSettings};
use crate::secrets::SecretCipher;
use crate::{serve, sim, store};

/// Writer token printed for `dev` (never use outside development).
pub const DEV_WRITE_TOKEN: &str = "dev-writer-token";
/// Reader token printed for `dev`.
pub const DEV_READ_TOKEN: &str = "dev-reader-token";
const DEV_FLY_TOKEN: &str = "dev-fly-token";

/// Settings of `dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Address of the API.
    #[arg(long, env = "OPENCLAWS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the Fly simulator (port 0 picks a free one).
    #[arg(long, env = "FLY_SIM_LISTEN", default_value = "127.0.0.1:0")]
    pub sim_listen: SocketAddr,
    /// Multiplies the simulator's latencies (1 = Fly-like).
    #[arg(long, env = "FLY_SIM_LATENCY_SCALE", default_value_t = 1.0)]
    pub latency_scale: f64,
    /// Name of the demo instance created at start (empty: none).
    #[arg(long, default_value = "demo")]
    pub demo: String,
    /// Seconds between visits of a converged instance.
    #[arg(long, env = "OPENCLAWS_RESYNC_SECONDS", default_value_t = 30)]
    pub resync_seconds: u64,
    /// Exit once the demo instance is Ready instead of serving until Ctrl-C (for smoke tests).
    #[arg(long)]
    pub exit_when_ready: bool,
}

/// Runs the development stack until Ctrl-C.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let (_pg, database_url) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            println!("starting a throwaway PostgreSQL …");
            let pg = postgres::ThrowawayPostgres::start()
                .await
                .context("starting a throwaway PostgreSQL")?;
            let url = pg.url().to_owned();
            (Some(pg), url)
        }
    };
    let pool = store::connect(&database_url, 5).await?;
    store::migrate(&pool).await?;
    pool.close().await;

    let shutdown = CancellationToken::new();
    let mut sim_config = sim::SimConfig::new(DEV_FLY_TOKEN, "personal");
    sim_config.latency = sim::LatencyModel::spec_defaults().scaled(args.latency_scale);
    let sim_listener = tokio::net::TcpListener::bind(args.sim_listen)
        .await
        .with_context(|| format!("binding the simulator to {}", args.sim_listen))?;
    let sim_addr = sim_listener.local_addr()?;
    let simulator = sim::Simulator::new(sim_config);
    tokio::spawn(sim::serve(sim_listener, simulator, shutdown.clone()));

    let settings = ServeSettings {
        database: DatabaseSettings {
            database_url,
            database_listen_url: None,
            db_max_connections: 20,
        },
        listen: args.listen,
        api_write_token: DEV_WRITE_TOKEN.to_owned(),
        api_read_token: DEV_READ_TOKEN.to_owned(),
        secret_key: SecretKey(SecretCipher::from_base64(
            &SecretCipher::generate_key_base64(),
        )?),
        fly: FlySettings {
            fly_api_base: format!("http://{sim_addr}"),
            fly_api_token: DEV_FLY_TOKEN.to_owned(),
            fly_org: "personal".to_owned(),
            fly_app_prefix: "oc-".to_owned(),
        },
        dns: crate::config::DnsSettings {
            dns_api_base: format!("http://{sim_addr}"),
            dns_api_token: Some(DEV_FLY_TOKEN.to_owned()),
            dns_zone: None,
        },
        gateway: crate::config::GatewaySettings::without_checks(),
        base_domain: "openclaws.biz".to_owned(),
        workers: 16,
        resync_seconds: args.resync_seconds,
        watch_seconds: 5.0,
        composio_api_key: None,
        lease_seconds: 30,
        poll_seconds: 2.0,
        shutdown_grace_seconds: 10,
        machine_stuck_seconds: 300,
    };
    let running = serve::start(&settings, shutdown.clone()).await?;
    let api = format!("http://{}", running.addr);
    println!("\nopenclaws-controller dev stack");
    println!("  API            {api}   (writer token: {DEV_WRITE_TOKEN}, reader token: {DEV_READ_TOKEN})");
    println!("  Fly simulator  http://{sim_addr}   (token: {DEV_FLY_TOKEN}; state: curl http://{sim_addr}/_sim/state)");
    println!("  metrics        {api}/metrics");
    println!("  support        {api}/support   (sign in with either token)");

    let outcome = if args.demo.is_empty() {
        Ok(())
    } else {
        demo(&api, &args.demo).await
    };
    if let Err(e) = &outcome {
        eprintln!("demo failed: {e:#}");
    }
    if outcome.is_ok() && !args.exit_when_ready {
        println!("\nserving until Ctrl-C …");
        serve::shutdown_signal().await;
    }
    running.stop().await?;
    outcome
}

/// Creates the demo instance and prints its progress until it is Ready.
async fn demo(api: &str, name: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("{api}/v1/instances/{name}");
    let body = serde_json::json!({"spec": {"customerId": "cust-demo", "region": "iad",
        "identity": {"displayName": "Demo"}}});
    let resp = http
        .put(&url)
        .bearer_auth(DEV_WRITE_TOKEN)
        .json(&body)
        .send()
        .await?;
    let code = resp.status();
    anyhow::ensure!(
        code.is_success(),
        "creating the demo instance: {code} {}",
        resp.text().await?
    );
    println!("\ncreated instance {name}; watch it with:");
    println!("  curl -s -H 'Authorization: Bearer {DEV_READ_TOKEN}' {url} | jq .status");
    println!("  curl -s -H 'Authorization: Bearer {DEV_READ_TOKEN}' {url}/events | jq");
    println!("  openclaws-controller describe {name} --api-url {api} --token {DEV_READ_TOKEN}");
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let status: serde_json::Value = http
            .get(&url)
            .bearer_auth(DEV_READ_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let phase = status["status"]["phase"].as_str().unwrap_or("?").to_owned();
        let ready = status["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| {
                format!(
                    "{} ({})",
                    c["reason"].as_str().unwrap_or(""),
                    c["message"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        let line = format!("{phase}: {ready}");
        if line != last {
            println!("  [{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        if phase == "Ready" {
            println!(
                "\ndemo instance {name} is Ready after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the demo instance was not Ready within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
