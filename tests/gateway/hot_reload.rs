//! What the gateway hot-applies reaches it without a restart (`docs/hot-reload.md`): with a
//! `/readyz` probe every 100 ms through the simulator's Fly-like proxy and a paired device
//! connected, an owned field changed out of band is put back over the protocol (`config.patch`)
//! with no failed probe, no disconnect and the same gateway process; a field that needs a
//! restart still restarts the machine; and a proxy-token rotation is delivered into the
//! gateway's secret store with none of these either. The figures are printed as `hot_reload:`
//! lines (`--nocapture`), the restart ones being what every repair and rotation cost before.

use openclaws_gateway::client::GatewayClient;
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_gateway::proxy_token::ProxyTokenKey;
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::{browser, connect_browser, gateway_token, pending_request};
use openclaws_testkit::stack::{Stack, StackOptions, LLM_PROXY_KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const READY_DEADLINE: Duration = Duration::from_secs(240);
const PAIRING_DEADLINE: Duration = Duration::from_secs(90);
const PROBE_EVERY: Duration = Duration::from_millis(100);

fn options() -> StackOptions {
    StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    }
}

/// What the probe and the device saw while a change was applied.
#[derive(Debug, Default)]
struct Seen {
    probes: u32,
    failed_probes: u32,
    /// Longest stretch from the first failed probe of a run to the next good one.
    longest_outage: Duration,
    device_calls: u32,
    device_failures: u32,
}

impl Seen {
    fn print(&self, what: &str) {
        eprintln!(
            "hot_reload: {what}: probes={} failed_probes={} longest_readyz_outage_ms={} \
             device_calls={} device_failures={}",
            self.probes,
            self.failed_probes,
            self.longest_outage.as_millis(),
            self.device_calls,
            self.device_failures
        );
    }
}

/// How often a test waiting for a repair asks for a look.
pub(crate) const NUDGE_EVERY: Duration = Duration::from_secs(3);

/// Asks for a reconcile of `name` when the last was asked at least [`NUDGE_EVERY`] ago.
pub(crate) async fn nudge(stack: &Stack, name: &str, last: &std::sync::Mutex<Instant>) {
    let due = {
        let mut last = last.lock().unwrap();
        let due = last.elapsed() >= NUDGE_EVERY;
        if due {
            *last = Instant::now();
        }
        due
    };
    if due {
        stack.reconcile_now(name).await;
    }
}

/// A `/readyz` probe every 100 ms through the proxy and a `health` call every 100 ms on the
/// device's connection, until stopped.
struct Watch {
    stop: Arc<AtomicBool>,
    probe: JoinHandle<(u32, u32, Duration)>,
    device: JoinHandle<(u32, u32)>,
}

impl Watch {
    fn start(stack: &Stack, host: &str, device: Arc<GatewayClient>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!(
            "{}/readyz",
            stack.proxy_url.as_ref().expect("a gateway stack")
        );
        // A slow answer is not downtime: on a loaded 2-core machine a starved gateway can take
        // seconds to answer, while a restart fails at once (the proxy's 502, a refused
        // connection). The deadline only keeps a hung probe from hiding the rest.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let (host, halt) = (host.to_owned(), stop.clone());
        let probe = tokio::spawn(async move {
            let (mut probes, mut failed, mut longest) = (0, 0, Duration::ZERO);
            let mut outage_since: Option<Instant> = None;
            while !halt.load(Ordering::Relaxed) {
                let at = Instant::now();
                let ok = match http.get(&url).header("Host", &host).send().await {
                    Ok(resp) if resp.status() == StatusCode::OK => {
                        resp.json::<Value>().await.is_ok_and(|b| b["ready"] == true)
                    }
                    _ => false,
                };
                probes += 1;
                if ok {
                    if let Some(since) = outage_since.take() {
                        longest = longest.max(since.elapsed());
                    }
                } else {
                    failed += 1;
                    outage_since.get_or_insert(at);
                }
                tokio::time::sleep(PROBE_EVERY.saturating_sub(at.elapsed())).await;
            }
            if let Some(since) = outage_since {
                longest = longest.max(since.elapsed());
            }
            (probes, failed, longest)
        });
        let halt = stop.clone();
        let device = tokio::spawn(async move {
            let (mut calls, mut failures) = (0, 0);
            while !halt.load(Ordering::Relaxed) {
                calls += 1;
                if device.call("health", json!({})).await.is_err() {
                    failures += 1;
                }
                tokio::time::sleep(PROBE_EVERY).await;
            }
            (calls, failures)
        });
        Self {
            stop,
            probe,
            device,
        }
    }

    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let (probes, failed_probes, longest_outage) = self.probe.await.unwrap();
        let (device_calls, device_failures) = self.device.await.unwrap();
        Seen {
            probes,
            failed_probes,
            longest_outage,
            device_calls,
            device_failures,
        }
    }
}

/// The pid of a machine's boot process and its volume directory, from the simulator.
pub(crate) async fn process(stack: &Stack, machine_id: &str) -> Option<(u32, PathBuf)> {
    let body: Value = stack
        .http
        .get(format!(
            "{}/_sim/machines/{machine_id}/process",
            stack.sim_url
        ))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some((
        body["pid"].as_u64()? as u32,
        PathBuf::from(body["volume_dir"].as_str()?),
    ))
}

fn has_event(events: &[Value], reason: &str) -> bool {
    events.iter().any(|e| e["reason"] == reason)
}

/// Changes the live `openclaw.json` the way a customer's hand edit would.
fn edit_config(path: &std::path::Path, edit: impl FnOnce(&mut Value)) {
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(path, serde_json::to_string_pretty(&config).unwrap() + "\n").unwrap();
}

fn read_config(path: &std::path::Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// A browser paired under policy `auto`, connected.
async fn paired_device(stack: &Stack, name: &str, host: &str) -> Arc<GatewayClient> {
    let token = gateway_token(stack, name).await;
    let device = DeviceIdentity::generate();
    pending_request(&browser(stack, host, &token), &device, PAIRING_DEADLINE).await;
    let client = eventually(PAIRING_DEADLINE, "the browser is approved", || async {
        connect_browser(&browser(stack, host, &token), &device)
            .await
            .ok()
    })
    .await;
    Arc::new(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_config_is_repaired_without_a_restart_unless_a_field_needs_one() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let stack = Stack::start(options()).await;
    let (code, body) = stack
        .put(
            "hot",
            json!({"customerId": "c-hot", "region": "iad", "identity": {"displayName": "Hot"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let body = stack.wait_ready("hot", READY_DEADLINE).await;
    let machine_id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let host = "hot.openclaws.test";
    let (pid, volume_dir) = process(&stack, &machine_id).await.expect("running");
    let config_path = volume_dir.join("openclaw.json");
    let device = paired_device(&stack, "hot", host).await;

    // (b) Owned fields the gateway hot-applies, changed by hand: put back over the protocol.
    let watch = Watch::start(&stack, host, device.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    edit_config(&config_path, |c| {
        c["agents"]["entries"]["main"]["name"] = json!("Mallory");
        c["skills"]["entries"]["composio"] = json!({"enabled": true});
    });
    // The gateway applies a hand edit a moment after the file changes; a look before that
    // sees no drift. In production the next deep look finds it; here a look is asked for every
    // few seconds until the repair shows.
    let nudged = std::sync::Mutex::new(Instant::now() - NUDGE_EVERY);
    eventually(
        Duration::from_secs(180),
        "the owned fields put back",
        || async {
            nudge(&stack, "hot", &nudged).await;
            let c = read_config(&config_path)?;
            (has_event(&stack.events("hot").await, "PatchGatewayConfig")
                && c["agents"]["entries"]["main"]["name"] == "Hot"
                && c["skills"]["entries"]["composio"]["enabled"] == false)
                .then_some(())
        },
    )
    .await;
    let repaired_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = watch.finish().await;
    seen.print("owned-field repair (config.patch)");
    eprintln!(
        "hot_reload: owned-field repair (config.patch): repaired_in_ms={}",
        repaired_in.as_millis()
    );
    assert_eq!(seen.failed_probes, 0, "{seen:?}");
    assert_eq!(seen.device_failures, 0, "{seen:?}");
    assert!(seen.probes > 10 && seen.device_calls > 10, "{seen:?}");
    assert_eq!(process(&stack, &machine_id).await.map(|p| p.0), Some(pid));
    let events = stack.events("hot").await;
    assert!(!has_event(&events, "RestartMachine"), "{events:?}");
    let patched = events
        .iter()
        .find(|e| e["reason"] == "PatchGatewayConfig")
        .unwrap();
    let message = patched["message"].as_str().unwrap();
    assert!(
        message.contains("agents.entries.main.name")
            && message.contains("skills.entries.composio")
            && message.contains("no restart"),
        "{message}"
    );
    stack.wait_ready("hot", READY_DEADLINE).await;

    // (c) A field that needs a gateway restart (`gateway.bind`) still restarts the machine,
    // whose boot step puts it back: what every repair cost before.
    let watch = Watch::start(&stack, host, device.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    edit_config(&config_path, |c| c["gateway"]["bind"] = json!("loopback"));
    let nudged = std::sync::Mutex::new(Instant::now() - NUDGE_EVERY);
    eventually(
        Duration::from_secs(180),
        "the machine restarted",
        || async {
            nudge(&stack, "hot", &nudged).await;
            let c = read_config(&config_path)?;
            (has_event(&stack.events("hot").await, "RestartMachine")
                && c["gateway"]["bind"] == "lan")
                .then_some(())
        },
    )
    .await;
    stack.wait_ready("hot", READY_DEADLINE).await;
    let repaired_in = started.elapsed();
    let seen = watch.finish().await;
    seen.print("restart-requiring field (machine restart)");
    eprintln!(
        "hot_reload: restart-requiring field (machine restart): repaired_in_ms={}",
        repaired_in.as_millis()
    );
    assert!(
        seen.device_failures > 0,
        "the restart dropped the device: {seen:?}"
    );
    assert_ne!(process(&stack, &machine_id).await.map(|p| p.0), Some(pid));
    assert_eq!(stack.delete("hot").await, StatusCode::ACCEPTED);
}

/// Proxy-token rotation: the new token goes into the gateway's secret store over the protocol
/// and is resolved from there at once; no probe fails, the device stays connected and the
/// gateway process is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_token_rotation_needs_no_restart() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let mut stack = Stack::start_without_controller(StackOptions {
        llm_proxy: true,
        ..options()
    })
    .await;
    // Replaced two thirds into a 90 s lifetime: 60 s after it was minted.
    stack.settings.gateway.llm_proxy_token_seconds = 90;
    stack.start_controller().await;
    let (code, body) = stack
        .put("rot", json!({"customerId": "c-rot", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let body = stack.wait_ready("rot", READY_DEADLINE).await;
    let machine_id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let host = "rot.openclaws.test";
    let device = paired_device(&stack, "rot", host).await;
    let (pid, _) = process(&stack, &machine_id).await.expect("running");
    assert_eq!(
        process_env(pid, "ANTHROPIC_API_KEY"),
        None,
        "not an env var"
    );
    let key = ProxyTokenKey::new(
        LLM_PROXY_KEY.as_bytes(),
        "openclaws-llm-proxy",
        chrono::Duration::seconds(90),
    )
    .unwrap();
    let first = eventually(PAIRING_DEADLINE, "the first proxy token", || async {
        resolved_anthropic_key(&stack, "oc-rot", &machine_id).await
    })
    .await;
    let first_claims = key.verify(&first, chrono::Utc::now()).expect("it verifies");
    let watch = Watch::start(&stack, host, device);
    let started = Instant::now();
    let rotated = eventually(
        Duration::from_secs(240),
        "a rotated proxy token",
        || async {
            resolved_anthropic_key(&stack, "oc-rot", &machine_id)
                .await
                .filter(|t| *t != first)
        },
    )
    .await;
    let rotated_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = watch.finish().await;
    seen.print("proxy-token rotation (secrets.store.set)");
    eprintln!(
        "hot_reload: proxy-token rotation (secrets.store.set): observed_after_ms={}",
        rotated_in.as_millis()
    );
    let claims = key
        .verify(&rotated, chrono::Utc::now())
        .expect("the gateway resolves a valid new token");
    assert!(claims.iat > first_claims.iat, "{claims:?} {first_claims:?}");
    assert_eq!(seen.failed_probes, 0, "{seen:?}");
    assert_eq!(seen.device_failures, 0, "{seen:?}");
    assert_eq!(process(&stack, &machine_id).await.map(|p| p.0), Some(pid));
    let events = stack.events("rot").await;
    for restart in ["UpdateMachine", "RestartMachine"] {
        assert!(!has_event(&events, restart), "{events:?}");
    }
    assert!(has_event(&events, "DeliverProxyToken"), "{events:?}");
    assert_eq!(stack.delete("rot").await, StatusCode::ACCEPTED);
}

/// The Anthropic key the gateway resolves (`secrets.resolve`), asked by the gateway's own CLI
/// inside the machine over loopback with the machine's token, through Fly exec.
pub(crate) async fn resolved_anthropic_key(
    stack: &Stack,
    app: &str,
    machine_id: &str,
) -> Option<String> {
    let script = r#"exec node "$OPENCLAWS_GATEWAY_ENTRY" gateway call secrets.resolve --url "ws://127.0.0.1:${OPENCLAWS_GATEWAY_PORT:-3000}" --token "$OPENCLAW_GATEWAY_TOKEN" --params '{"commandName":"openclaws-test","targetIds":["models.providers.*.apiKey"]}' --json"#;
    let (code, body) = stack
        .fly(
            reqwest::Method::POST,
            &format!("/v1/apps/{app}/machines/{machine_id}/exec"),
            Some(json!({"command": ["sh", "-c", script], "timeout": 50})),
        )
        .await;
    if code != StatusCode::OK || body["exit_code"].as_i64().unwrap_or(0) != 0 {
        return None;
    }
    let out: Value = serde_json::from_str(body["stdout"].as_str()?.trim()).ok()?;
    out["assignments"]
        .as_array()?
        .iter()
        .find(|a| a["path"] == "models.providers.anthropic.apiKey")?["value"]
        .as_str()
        .map(str::to_owned)
}

/// One variable of a live process's environment.
fn process_env(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
}
