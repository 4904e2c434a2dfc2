//! `make run`: the whole system on one machine with embedded defaults. A throwaway PostgreSQL
//! (unless `DATABASE_URL` names one), the Fly simulator (`fly-sim`) and the controller
//! (`openclaws-controller serve`, the production binary, configured only by its environment)
//! run as separate processes; their logs go to files. What is printed is what a person needs:
//! the addresses and tokens to use, and the demo instance's progress to `Ready`.
//!
//! By default the simulator's machines run the real pinned OpenClaw gateway (process mode,
//! installed on first use by `scripts/install-openclaw.sh`) behind its Fly-like proxy, the
//! controller checks each gateway, and instances are served at `http://{name}.localhost:PORT`
//! (browsers resolve `*.localhost` to loopback and treat it as a secure context, so the Control
//! UI works there). `--inert` keeps the quick stack whose machines run nothing.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

use crate::postgres::ThrowawayPostgres;
use crate::workspace_binary;

/// Writer token of the dev stack (never use outside development).
pub const DEV_WRITE_TOKEN: &str = "dev-writer-token";
/// Reader token of the dev stack.
pub const DEV_READ_TOKEN: &str = "dev-reader-token";
/// The Fly (and DNS) token the dev simulator accepts.
const DEV_FLY_TOKEN: &str = "dev-fly-token";
/// The dev stack's secret key (base64 of 32 bytes); development data only.
const DEV_SECRET_KEY: &str = "ZGV2LW9ubHktc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWI=";

/// Settings of `openclaws-dev run`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Address of the API.
    #[arg(long, env = "OPENCLAWS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the Fly simulator.
    #[arg(long, env = "FLY_SIM_LISTEN", default_value = "127.0.0.1:4280")]
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
    /// Where the processes' logs go (default: `target/dev` of the workspace).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Exit once the demo instance is Ready instead of serving until Ctrl-C (for smoke tests).
    #[arg(long)]
    pub exit_when_ready: bool,
    /// Machines run nothing (no gateway, no gateway checks): a quick stack for API work.
    #[arg(long, env = "OPENCLAWS_DEV_INERT")]
    pub inert: bool,
    /// Address of the simulator's Fly-like proxy, where browsers reach the gateways (not with
    /// `--inert`).
    #[arg(long, env = "FLY_SIM_PROXY_LISTEN", default_value = "127.0.0.1:4281")]
    pub proxy_listen: SocketAddr,
}

impl DevArgs {
    /// The base domain of instance hostnames: `localhost` when a browser reaches the gateways
    /// through the local proxy, the production-like one on the inert stack.
    fn base_domain(&self) -> &'static str {
        if self.inert {
            "openclaws.biz"
        } else {
            "localhost"
        }
    }

    /// How long the demo may take to reach Ready: a real gateway boots in 10-30 s here, more
    /// on a first start.
    fn demo_deadline(&self) -> Duration {
        Duration::from_secs(if self.inert { 120 } else { 300 })
    }
}

/// The processes of a running dev stack; dropping it stops them.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.start_kill();
        }
    }
}

/// Runs the development stack until Ctrl-C (or until the demo is Ready, with `exit_when_ready`).
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let log_dir = args.log_dir.clone().unwrap_or_else(default_log_dir);
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("creating the log directory {}", log_dir.display()))?;
    let (_pg, database_url) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            println!("starting a throwaway PostgreSQL …");
            let pg = ThrowawayPostgres::start()
                .await
                .context("starting a throwaway PostgreSQL")?;
            let url = pg.url().to_owned();
            (Some(pg), url)
        }
    };
    let controller = workspace_binary("openclaws-controller")?;
    let openclaw = match args.inert {
        true => None,
        false => Some(install_openclaw().await?),
    };
    migrate(&controller, &database_url, &log_dir).await?;
    let sim_url = format!("http://{}", args.sim_listen);
    let api = format!("http://{}", args.listen);
    let mut processes = Processes(Vec::new());
    processes
        .0
        .push(start_sim(&args, openclaw.as_deref(), &log_dir)?);
    let sim_log = log_dir.join("fly-sim.log");
    let sim_state = format!("{sim_url}/_sim/state");
    wait_for_http(
        &sim_state,
        "the Fly simulator",
        &mut processes.0[0],
        &sim_log,
    )
    .await?;
    processes.0.push(start_controller(
        &controller,
        &args,
        &database_url,
        &log_dir,
    )?);
    let controller_log = log_dir.join("controller.log");
    let readyz = format!("{api}/readyz");
    wait_for_http(
        &readyz,
        "the controller",
        &mut processes.0[1],
        &controller_log,
    )
    .await?;

    println!("\nopenclaws-controller dev stack");
    println!("  API            {api}   (writer token: {DEV_WRITE_TOKEN}, reader token: {DEV_READ_TOKEN})");
    println!("  support        {api}/support   (sign in with either token)");
    println!("  metrics        {api}/metrics");
    println!(
        "  Fly simulator  {sim_url}   (token: {DEV_FLY_TOKEN}; state: curl {sim_url}/_sim/state)"
    );
    if !args.inert {
        println!(
            "  gateways       http://{{name}}.localhost:{}   (the simulator's Fly-like proxy; real OpenClaw gateways)",
            args.proxy_listen.port()
        );
    }
    println!("  logs           {}", log_dir.display());

    let outcome = if args.demo.is_empty() {
        Ok(())
    } else {
        demo(&args, &api, &controller).await
    };
    if let Err(e) = &outcome {
        eprintln!("demo failed: {e:#}");
    }
    if outcome.is_ok() && !args.exit_when_ready {
        println!("\nserving until Ctrl-C …");
        let _ = tokio::signal::ctrl_c().await;
    }
    drop(processes);
    outcome
}

/// `target/dev` of the workspace this binary was built in.
fn default_log_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("dev")))
        .unwrap_or_else(|| PathBuf::from("target/dev"))
}

/// A log file for one process, appended to.
fn log_file(dir: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Applies the migrations the way production does: `openclaws-controller migrate`.
async fn migrate(controller: &Path, database_url: &str, log_dir: &Path) -> anyhow::Result<()> {
    let log = log_file(log_dir, "controller.log")?;
    let status = Command::new(controller)
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("OPENCLAWS_LOG_FORMAT", "pretty")
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await
        .context("running openclaws-controller migrate")?;
    anyhow::ensure!(
        status.success(),
        "openclaws-controller migrate failed (see {})",
        log_dir.join("controller.log").display()
    );
    Ok(())
}

/// Installs the pinned OpenClaw when it is missing (quiet and offline when it is there) and
/// returns its `openclaw` wrapper.
async fn install_openclaw() -> anyhow::Result<PathBuf> {
    let script = crate::workspace_root().join("scripts/install-openclaw.sh");
    println!("checking the pinned OpenClaw (installed on first use) …");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed ({}); see its messages above, or run with --inert for a stack without gateways",
        script.display(),
        output.status
    );
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

fn start_sim(args: &DevArgs, openclaw: Option<&Path>, log_dir: &Path) -> anyhow::Result<Child> {
    let log = log_file(log_dir, "fly-sim.log")?;
    let mut command = Command::new(workspace_binary("fly-sim")?);
    if let Some(openclaw) = openclaw {
        // The simulator's state lives in its memory: machines of an earlier run are gone.
        let root = log_dir.join("machines");
        let _ = std::fs::remove_dir_all(&root);
        command
            .env("FLY_SIM_MACHINES", "process")
            .env("FLY_SIM_PROXY_LISTEN", args.proxy_listen.to_string())
            .env("FLY_SIM_PROCESS_ROOT", root)
            .env("OPENCLAWS_OPENCLAW_BIN", openclaw);
    }
    command
        .env("FLY_SIM_LISTEN", args.sim_listen.to_string())
        .env("FLY_SIM_TOKEN", DEV_FLY_TOKEN)
        .env("FLY_SIM_ORG", "personal")
        .env("FLY_SIM_LATENCY_SCALE", args.latency_scale.to_string())
        .env("FLY_SIM_DNS_ZONE", args.base_domain())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting fly-sim")
}

fn start_controller(
    controller: &Path,
    args: &DevArgs,
    database_url: &str,
    log_dir: &Path,
) -> anyhow::Result<Child> {
    let log = log_file(log_dir, "controller.log")?;
    let sim_url = format!("http://{}", args.sim_listen);
    let mut command = Command::new(controller);
    if args.inert {
        command.env("OPENCLAWS_GATEWAY_CHECKS", "false");
    } else {
        let proxy = format!("http://{}", args.proxy_listen);
        let public = format!("http://{{hostname}}:{}", args.proxy_listen.port());
        command
            .env("OPENCLAWS_GATEWAY_CHECKS", "true")
            .env("OPENCLAWS_GATEWAY_URL", proxy)
            .env("OPENCLAWS_GATEWAY_TRUSTED_PROXIES", "127.0.0.1/32")
            .env("OPENCLAWS_PUBLIC_URL", public);
    }
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("OPENCLAWS_LISTEN", args.listen.to_string())
        .env("OPENCLAWS_API_WRITE_TOKEN", DEV_WRITE_TOKEN)
        .env("OPENCLAWS_API_READ_TOKEN", DEV_READ_TOKEN)
        .env("OPENCLAWS_SECRET_KEY", DEV_SECRET_KEY)
        .env("FLY_API_BASE", &sim_url)
        .env("FLY_API_TOKEN", DEV_FLY_TOKEN)
        .env("FLY_ORG", "personal")
        .env("OPENCLAWS_DNS_API_BASE", &sim_url)
        .env("OPENCLAWS_DNS_API_TOKEN", DEV_FLY_TOKEN)
        .env("OPENCLAWS_BASE_DOMAIN", args.base_domain())
        .env("OPENCLAWS_WORKERS", "16")
        .env("OPENCLAWS_RESYNC_SECONDS", args.resync_seconds.to_string())
        .env("OPENCLAWS_WATCH_SECONDS", "5")
        .env("OPENCLAWS_POLL_SECONDS", "2")
        .env("OPENCLAWS_LOG_FORMAT", "pretty")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting openclaws-controller serve")
}

/// Polls `url` until it answers 2xx, for up to 30 s; fails at once, with the end of its log,
/// when the process exits first (a port in use, a bad setting).
async fn wait_for_http(url: &str, what: &str, child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(resp) = http.get(url).bearer_auth(DEV_FLY_TOKEN).send().await {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "{what} exited ({status}) before answering at {url}; the end of {}:\n{}",
                log.display(),
                log_tail(log)
            );
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what} did not answer at {url} within 30 s; its log is {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines of a log file, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// Creates the demo instance and prints each change of its phase until it is Ready. On the
/// real stack the demo pairs by hand (policy `manual`), so a browser's request waits for an
/// approval from the support console.
async fn demo(args: &DevArgs, api: &str, controller: &Path) -> anyhow::Result<()> {
    let name = args.demo.as_str();
    let http = reqwest::Client::new();
    let url = format!("{api}/v1/instances/{name}");
    let mut body = serde_json::json!({"spec": {"customerId": "cust-demo", "region": "iad",
        "identity": {"displayName": "Demo"}}});
    if !args.inert {
        body["spec"]["pairing"] = serde_json::json!({"policy": "manual"});
    }
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
    println!(
        "  {} describe {name} --api-url {api} --token {DEV_READ_TOKEN}",
        controller.display()
    );
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let resource: serde_json::Value = http
            .get(&url)
            .bearer_auth(DEV_READ_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let line = progress_line(&resource);
        if line != last {
            println!("  [{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            last = line;
        }
        if resource["status"]["phase"] == "Ready" {
            println!(
                "\ndemo instance {name} is Ready after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            if !args.inert {
                print_browser_steps(args, api, name);
            }
            return Ok(());
        }
        let deadline = args.demo_deadline();
        anyhow::ensure!(
            started.elapsed() < deadline,
            "the demo instance was not Ready within {} s",
            deadline.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How to reach the demo's real gateway from a browser on this machine and pair it.
fn print_browser_steps(args: &DevArgs, api: &str, name: &str) {
    let port = args.proxy_listen.port();
    println!("\nopen the demo's gateway (the OpenClaw Control UI) in a browser on this machine:");
    println!("  http://{name}.localhost:{port}/");
    println!("it asks for the gateway token; print it with:");
    println!(
        "  curl -s -H 'Authorization: Bearer {DEV_WRITE_TOKEN}' {api}/v1/instances/{name}/gateway-token | jq -r .token"
    );
    println!(
        "then approve the browser: sign in at {api}/support with {DEV_WRITE_TOKEN}, open {name},"
    );
    println!("and press Approve on its pending request (or POST {api}/v1/instances/{name}/pairing/approvals).");
}

/// `Phase: Reason (message)` of the `Ready` condition: what a person watching wants to see.
fn progress_line(resource: &serde_json::Value) -> String {
    let phase = resource["status"]["phase"].as_str().unwrap_or("Pending");
    let ready = resource["status"]["conditions"]
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
    format!("{phase}: {ready}")
}
