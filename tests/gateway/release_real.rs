//! Releases on real gateways (simulator process mode: an image tagged with an OpenClaw version
//! runs that installed version): three instances on 2026.9.5 are rolled to 2026.9.6 canary
//! first; each keeps its files and its paired device (which reconnects without a new
//! approval); `/readyz` is probed every 200 ms through the Fly-like proxy to measure the downtime
//! each instance saw. Then a release to a broken image (its gateway exits at boot) halts after
//! the canary and rolls it back, and the other two never leave Ready.

use openclaws_gateway::identity::DeviceIdentity;
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::{browser, connect_browser, gateway_token, pending_request};
use openclaws_testkit::openclaw::{
    gateway_slot, install_openclaw_version, PREVIOUS_OPENCLAW_VERSION,
};
use openclaws_testkit::releases::{members, post, wait_phase};
use openclaws_testkit::stack::{Stack, StackOptions, READER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const READY_DEADLINE: Duration = Duration::from_secs(300);
const RELEASE_DEADLINE: Duration = Duration::from_secs(600);
const PAIRING_DEADLINE: Duration = Duration::from_secs(90);
const OLD: &str = "ghcr.io/openclaw/openclaw:2026.9.5";
const NEW: &str = "ghcr.io/openclaw/openclaw:2026.9.6";
const BROKEN: &str = "ghcr.io/openclaw/openclaw:2026.9.7-broken";
const NAMES: [&str; 3] = ["rr-a", "rr-b", "rr-c"];

fn options() -> StackOptions {
    StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    }
}

fn host(name: &str) -> String {
    format!("{name}.openclaws.test")
}

/// The machine's running process as the simulator shows it: its local port and volume.
async fn process(stack: &Stack, machine_id: &str) -> Option<(u16, PathBuf)> {
    let url = format!("{}/_sim/machines/{machine_id}/process", stack.sim_url);
    let body: Value = stack.http.get(url).send().await.ok()?.json().await.ok()?;
    let port = body["port"].as_u64()? as u16;
    Some((port, PathBuf::from(body["volume_dir"].as_str()?)))
}

/// The OpenClaw version the instance's running gateway reports on `/startupz`.
async fn running_version(stack: &Stack, name: &str, want: &str) {
    eventually(READY_DEADLINE, &format!("{name} to run {want}"), || async {
        let (_, body) = stack.get(name).await;
        let machine = body["status"]["fly"]["machineId"].as_str()?.to_owned();
        let (port, _) = process(stack, &machine).await?;
        let url = format!("http://127.0.0.1:{port}/startupz");
        let body: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        (body["version"] == want).then_some(())
    })
    .await
}

/// `/readyz` through the proxy every 200 ms while it runs: the longest run of failures and
/// the number of failed probes.
struct Probe {
    stop: Arc<AtomicBool>,
    outages: Arc<Mutex<(Duration, u32)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    fn start(stack: &Stack, name: &str) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let outages = Arc::new(Mutex::new((Duration::ZERO, 0)));
        let url = format!("{}/readyz", stack.proxy_url.clone().unwrap());
        let host = host(name);
        let (stop2, outages2) = (stop.clone(), outages.clone());
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap();
            let mut down_since: Option<Instant> = None;
            while !stop2.load(Ordering::Relaxed) {
                let ok = client
                    .get(&url)
                    .header("Host", &host)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                {
                    let mut o = outages2.lock().unwrap();
                    match (ok, down_since) {
                        (false, None) => down_since = Some(Instant::now()),
                        (true, Some(at)) => {
                            o.0 = o.0.max(at.elapsed());
                            down_since = None;
                        }
                        _ => {}
                    }
                    if !ok {
                        o.1 += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if let Some(at) = down_since {
                let mut o = outages2.lock().unwrap();
                o.0 = o.0.max(at.elapsed());
            }
        });
        Probe {
            stop,
            outages,
            task,
        }
    }

    async fn finish(self) -> (Duration, u32) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        *self.outages.lock().unwrap()
    }
}

/// Creates the three instances pinned to 2026.9.5, pairs a browser on each and writes a file on
/// each volume; the devices and files.
async fn old_fleet(stack: &Stack) -> Vec<(DeviceIdentity, PathBuf)> {
    for name in NAMES {
        let spec = json!({"customerId": format!("c-{name}"), "region": "iad", "image": OLD});
        let (code, body) = stack.put(name, spec).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let mut fleet = Vec::new();
    for name in NAMES {
        let body = stack.wait_ready(name, READY_DEADLINE).await;
        running_version(stack, name, PREVIOUS_OPENCLAW_VERSION).await;
        let token = gateway_token(stack, name).await;
        let device = DeviceIdentity::generate();
        let options = browser(stack, &host(name), &token);
        pending_request(&options, &device, PAIRING_DEADLINE).await;
        let client = eventually(PAIRING_DEADLINE, "the browser approved", || async {
            connect_browser(&options, &device).await.ok()
        })
        .await;
        client.close().await;
        let machine = body["status"]["fly"]["machineId"].as_str().unwrap();
        let (_, volume) = process(stack, machine).await.expect("a running process");
        let file = volume.join("workspace/notes-kept.md");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("{name} keeps this")).unwrap();
        fleet.push((device, file));
    }
    fleet
}

/// A device paired before connects again with the same token, without a new approval.
async fn still_paired(stack: &Stack, name: &str, device: &DeviceIdentity) {
    let token = gateway_token(stack, name).await;
    let options = browser(stack, &host(name), &token);
    let client = eventually(
        PAIRING_DEADLINE,
        &format!("{name}'s browser back"),
        || async {
            match connect_browser(&options, device).await {
                Ok(client) => Some(client),
                Err(openclaws_gateway::client::ClientError::PairingRequired(p)) => {
                    panic!("{name}'s device must not need a new approval: {p:?}")
                }
                Err(_) => None,
            }
        },
    )
    .await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_upgrades_real_gateways_canary_first_and_a_broken_one_is_rolled_back() {
    install_openclaw_version(PREVIOUS_OPENCLAW_VERSION);
    let _slots = (gateway_slot(), gateway_slot());
    let stack = Stack::start(options()).await;
    let fleet = old_fleet(&stack).await;

    // 2026.9.5 → 2026.9.6, named explicitly (they pin their image), one at a time.
    let probes: Vec<Probe> = NAMES.iter().map(|n| Probe::start(&stack, n)).collect();
    let started = Instant::now();
    let (code, body) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "to-2026.9.6"}, "spec": {"image": NEW, "instances": NAMES,
               "strategy": {"canary": 1, "waves": [100], "maxUnavailable": 1,
                            "healthDeadlineSeconds": 300}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (done, most_down) = wait_phase(&stack, "to-2026.9.6", "Completed", RELEASE_DEADLINE).await;
    let took = started.elapsed();
    assert!(most_down <= 1, "{most_down} down at once: {done}");
    eprintln!(
        "release_real: 3 instances 2026.9.5 → 2026.9.6 in {:.1} s",
        took.as_secs_f64()
    );
    for (probe, name) in probes.into_iter().zip(NAMES) {
        let (longest, failed) = probe.finish().await;
        eprintln!(
            "release_real: {name} downtime: longest /readyz outage {:.1} s, {failed} failed probes (every 200 ms)",
            longest.as_secs_f64()
        );
    }
    for ((device, file), name) in fleet.iter().zip(NAMES) {
        running_version(&stack, name, openclaws_gateway::VERIFIED_OPENCLAW_VERSION).await;
        let body = stack.wait_ready(name, READY_DEADLINE).await;
        assert_eq!(body["status"]["fly"]["image"], NEW, "{body}");
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            format!("{name} keeps this"),
            "{name}'s data survived"
        );
        still_paired(&stack, name, device).await;
    }

    // A broken image: the canary's gateway exits at boot; the release halts and rolls it back.
    let resp = stack
        .http
        .put(format!("{}/_sim/images", stack.sim_url))
        .json(&json!({"image": BROKEN, "boot_exit_code": 1}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let probes: Vec<Probe> = NAMES[1..].iter().map(|n| Probe::start(&stack, n)).collect();
    let (code, body) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "broken"}, "spec": {"image": BROKEN, "instances": NAMES,
               "strategy": {"canary": 1, "waves": [100], "maxUnavailable": 1,
                            "healthDeadlineSeconds": 120, "onHalt": "Rollback"}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (halted, _) = wait_phase(&stack, "broken", "RolledBack", RELEASE_DEADLINE).await;
    let listed = members(&stack, "broken").await;
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|m| {
            (
                m["instanceName"].as_str().unwrap(),
                m["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("rr-a", "RolledBack"),
            ("rr-b", "Pending"),
            ("rr-c", "Pending")
        ],
        "{halted}"
    );
    for (probe, name) in probes.into_iter().zip(&NAMES[1..]) {
        let (_, failed) = probe.finish().await;
        assert_eq!(
            failed, 0,
            "{name} never left Ready during the broken release"
        );
        let (_, body) = stack.get(name).await;
        assert_eq!(body["spec"]["image"], NEW, "{name} was never touched");
    }
    let canary = stack.wait_ready("rr-a", READY_DEADLINE).await;
    assert_eq!(canary["spec"]["image"], NEW);
    running_version(&stack, "rr-a", openclaws_gateway::VERIFIED_OPENCLAW_VERSION).await;
    still_paired(&stack, "rr-a", &fleet[0].0).await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_openclaws-controller"))
        .args(["release", "status", "broken", "--api-url", &stack.api_url])
        .env("OPENCLAWS_API_TOKEN", READER)
        .output()
        .await
        .unwrap();
    let page = String::from_utf8_lossy(&output.stdout);
    eprintln!("release_real: `release status broken`:\n{page}");
    assert!(
        page.contains("RolledBack") && page.contains("halted"),
        "{page}"
    );
}
