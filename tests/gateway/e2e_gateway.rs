//! The controller against the real OpenClaw gateway: the simulator runs each started machine as
//! a real `openclaw gateway` (process mode) behind its Fly-like proxy, and the controller reaches
//! gateways only through that proxy, as it reaches `https://{slug}.openclaws.biz` on Fly.
//!
//! A gateway takes 10–20 s and about 1 GB to boot, so each test drives one instance through
//! many checks in order; the two tests run side by side.

use crate::hot_reload::{nudge, resolved_anthropic_key, NUDGE_EVERY};
use openclaws_gateway::client::ClientError;
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_gateway::protocol::{SCOPE_READ, SCOPE_WRITE};
use openclaws_gateway::proxy_token::ProxyTokenKey;
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::{browser, connect_browser, gateway_token, pending_request};
use openclaws_testkit::process::{alive, children};
use openclaws_testkit::stack::{
    condition, Stack, StackOptions, LLM_PROXY_KEY, LLM_PROXY_URL, READER, WRITER,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const READY_DEADLINE: Duration = Duration::from_secs(240);
/// Bound on each pairing step; generous for a loaded machine.
const PAIRING_DEADLINE: Duration = Duration::from_secs(90);

fn options() -> StackOptions {
    StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    }
}

/// What the simulator knows about a machine's running process.
struct Process {
    pid: u32,
    volume_dir: PathBuf,
    machine_dir: PathBuf,
}

async fn process(stack: &Stack, machine_id: &str) -> Option<Process> {
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
    Some(Process {
        pid: body["pid"].as_u64()? as u32,
        volume_dir: PathBuf::from(body["volume_dir"].as_str()?),
        machine_dir: PathBuf::from(body["machine_dir"].as_str()?),
    })
}

/// One variable of a live process's environment.
fn process_env(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// Runs a shell command in the machine through Fly's exec API.
async fn exec(stack: &Stack, app: &str, machine_id: &str, script: &str) -> (i64, String) {
    let (code, body) = stack
        .fly(
            Method::POST,
            &format!("/v1/apps/{app}/machines/{machine_id}/exec"),
            Some(json!({"command": ["sh", "-c", script], "timeout": 50})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    (
        body["exit_code"].as_i64().unwrap_or(0),
        body["stdout"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn post_approval(stack: &Stack, name: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let resp = stack
        .http
        .post(format!(
            "{}/v1/instances/{name}/pairing/approvals",
            stack.api_url
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

fn has_event(events: &[Value], reason: &str) -> bool {
    events.iter().any(|e| e["reason"] == reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_pairing_owned_config_and_the_gateway_lifecycle() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let stack = Stack::start(options()).await;
    let started = Instant::now();
    let (code, body) = stack
        .put(
            "ada",
            json!({"customerId": "c-ada", "region": "iad", "composio": {"enabled": true},
                   "identity": {"displayName": "Ada"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    // 1. Ready means the gateway answers through the public path and the controller's own
    // device is paired (by one exec, then over the protocol).
    let mut body = stack.wait_ready("ada", READY_DEADLINE).await;
    eprintln!(
        "e2e_gateway: create → Ready on the real gateway in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Ready does not wait for the live config: on a loaded machine the look's `config.get` can
    // miss its deadline (ConfigSeeded says `BundleDelivered` then); the next look reads it.
    if condition(&body, "ConfigSeeded")["reason"] != "Seeded" {
        stack.reconcile_now("ada").await;
        body = stack
            .wait_for("ada", "the live config read", READY_DEADLINE, |b| {
                condition(b, "ConfigSeeded")["reason"] == "Seeded"
            })
            .await;
    }
    for (type_, reason) in [
        ("GatewayHealthy", "Ready"),
        ("ConfigSeeded", "Seeded"),
        ("PairingReady", "NothingPending"),
    ] {
        let c = condition(&body, type_);
        assert_eq!(c["status"], "True", "{c}");
        assert_eq!(c["reason"], reason, "{c}");
    }
    assert_eq!(
        body["status"]["pairing"]["controllerPaired"], true,
        "{body}"
    );
    assert!(has_event(&stack.events("ada").await, "PairController"));
    let machine_id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = "oc-ada";
    let proc = process(&stack, &machine_id)
        .await
        .expect("a running process");
    let config_path = proc.volume_dir.join("openclaw.json");
    let seeded = std::fs::read_to_string(&config_path).unwrap();

    // 2. The seeded config is valid for openclaw itself, IDENTITY.md introduces the agent, and
    // the Composio skill is eligible with its bridge on the gateway's PATH.
    let (code, out) = exec(
        &stack,
        app,
        &machine_id,
        "node \"$OPENCLAWS_GATEWAY_ENTRY\" config validate --json",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    let identity = std::fs::read_to_string(proc.volume_dir.join("workspace/IDENTITY.md")).unwrap();
    assert!(
        identity.contains("**Name:** Ada") && identity.contains("OpenClaws"),
        "{identity}"
    );
    let (code, out) = exec(
        &stack,
        app,
        &machine_id,
        "node \"$OPENCLAWS_GATEWAY_ENTRY\" skills list --json",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let listing: Value = serde_json::from_str(out.trim()).unwrap();
    let composio = listing["skills"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "composio")
        .unwrap_or_else(|| panic!("composio not listed: {listing}"))
        .clone();
    assert_eq!(composio["eligible"], true, "{composio}");

    // 3. Policy auto: a new browser gets a pending request, the controller approves it, and
    // the browser then connects with the scopes it asked for.
    let token = gateway_token(&stack, "ada").await;
    let device = DeviceIdentity::generate();
    let host = "ada.openclaws.test";
    // A connect that failed on a loaded machine may have left a request the subscription
    // approved before the next try: then that try is already let in.
    let first = eventually(PAIRING_DEADLINE, "a pairing request", || async {
        match connect_browser(&browser(&stack, host, &token), &device).await {
            Err(ClientError::PairingRequired(p)) => Some(Err(p.request_id)),
            Ok(client) => Some(Ok(client)),
            Err(_) => None,
        }
    })
    .await;
    let (request_id, client) = match first {
        Ok(client) => (None, client),
        Err(id) => {
            let client = eventually(
                PAIRING_DEADLINE,
                "the controller approves the browser",
                || async {
                    connect_browser(&browser(&stack, host, &token), &device)
                        .await
                        .ok()
                },
            )
            .await;
            (Some(id), client)
        }
    };
    let mut scopes = client.granted_scopes().to_vec();
    scopes.sort();
    assert_eq!(scopes, vec![SCOPE_READ, SCOPE_WRITE]);
    client.close().await;
    let body = stack
        .wait_for("ada", "the approval in status", PAIRING_DEADLINE, |b| {
            b["status"]["pairing"]["recent"]
                .as_array()
                .is_some_and(|r| {
                    r.iter().any(|x| {
                        x["result"] == "Approved"
                            && request_id
                                .as_ref()
                                .is_none_or(|id| x["requestId"] == id.as_str())
                    })
                })
        })
        .await;
    assert_eq!(
        body["status"]["pairing"]["lastApprovedDevice"], "test browser",
        "{body}"
    );
    for series in [
        r#"openclaws_pairing_approvals_total{policy="controller",result="approved"}"#,
        r#"openclaws_pairing_approvals_total{policy="auto",result="approved"}"#,
    ] {
        assert!(stack.metric(series, "").await >= 1.0, "{series}");
    }

    // 4. The gateway has not rewritten the seeded file.
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), seeded);

    // 5. The customer adds a key; someone changes an owned field out of band. The controller
    // notices (through the gateway's own config.get) and, the field being one the gateway
    // hot-applies, puts it back over the protocol (config.patch) without a restart, while the
    // customer's key stays.
    let mut edited: Value = serde_json::from_str(&seeded).unwrap();
    edited["models"]["catalogRefresh"] = json!({"enabled": false});
    edited["agents"]["entries"]["main"]["name"] = json!("Mallory");
    std::fs::write(
        &config_path,
        serde_json::to_string_pretty(&edited).unwrap() + "\n",
    )
    .unwrap();
    // The gateway applies the edit a moment after the file changes; a look before that sees no
    // drift (production finds it at the next deep look): ask for a look every few seconds.
    let nudged = std::sync::Mutex::new(Instant::now() - NUDGE_EVERY);
    eventually(
        Duration::from_secs(120),
        "the drifted owned field restored",
        || async {
            nudge(&stack, "ada", &nudged).await;
            let events = stack.events("ada").await;
            let text = std::fs::read_to_string(&config_path).ok()?;
            let now: Value = serde_json::from_str(&text).ok()?;
            (has_event(&events, "PatchGatewayConfig")
                && now["agents"]["entries"]["main"]["name"] == "Ada")
                .then_some(())
        },
    )
    .await;
    assert!(!has_event(&stack.events("ada").await, "RestartMachine"));
    assert_eq!(
        process(&stack, &machine_id).await.map(|p| p.pid),
        Some(proc.pid),
        "the same gateway process"
    );
    let body = stack.wait_ready("ada", READY_DEADLINE).await;
    assert_eq!(condition(&body, "ConfigSeeded")["status"], "True", "{body}");
    let now: Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(now["models"]["catalogRefresh"]["enabled"], false, "{now}");

    // 6. A spec change rolls the machine with a new bundle; the customer's key survives that too.
    let (code, body) = stack
        .patch(
            "ada",
            json!({"spec": {"identity": {"displayName": "Ada Lovelace"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let body = stack.wait_ready("ada", READY_DEADLINE).await;
    assert_eq!(body["metadata"]["generation"], 2);
    let now: Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    assert_eq!(
        now["agents"]["entries"]["main"]["name"], "Ada Lovelace",
        "{now}"
    );
    assert_eq!(now["models"]["catalogRefresh"]["enabled"], false, "{now}");
    let identity = std::fs::read_to_string(proc.volume_dir.join("workspace/IDENTITY.md")).unwrap();
    assert!(identity.contains("Ada Lovelace"), "{identity}");

    // 7. The gateway process killed: Fly's restart policy brings the machine back, and the
    // instance is Ready again with a fresh gateway.
    let before = process(&stack, &machine_id).await.expect("running");
    let gateway_pids = children(before.pid);
    assert!(
        !gateway_pids.is_empty(),
        "the boot step has no gateway child"
    );
    for pid in &gateway_pids {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    eventually(Duration::from_secs(60), "a new gateway process", || async {
        process(&stack, &machine_id)
            .await
            .filter(|p| p.pid != before.pid)
            .map(drop)
    })
    .await;
    stack.reconcile_now("ada").await;
    stack
        .wait_for("ada", "healthy again", READY_DEADLINE, |b| {
            b["status"]["phase"] == "Ready" && condition(b, "GatewayHealthy")["status"] == "True"
        })
        .await;

    // 8. Delete leaves no process and no data directory.
    let last = process(&stack, &machine_id).await.expect("running");
    assert_eq!(stack.delete("ada").await, StatusCode::ACCEPTED);
    eventually(Duration::from_secs(120), "the instance gone", || async {
        (stack.get("ada").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    eventually(
        PAIRING_DEADLINE,
        "processes and directories gone",
        || async {
            (!alive(last.pid) && !last.volume_dir.exists() && !last.machine_dir.exists())
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_pairing_the_proxy_token_and_a_stopped_machine() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let mut stack = Stack::start_without_controller(StackOptions {
        llm_proxy: true,
        ..options()
    })
    .await;
    // Short-lived proxy tokens, so the test sees one rotated (at two thirds: 60 s).
    stack.settings.gateway.llm_proxy_token_seconds = 90;
    stack.start_controller().await;
    let (code, body) = stack
        .put(
            "bea",
            json!({"customerId": "c-bea", "region": "iad", "pairing": {"policy": "manual"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let body = stack.wait_ready("bea", READY_DEADLINE).await;
    let uid = body["metadata"]["uid"].as_str().unwrap().to_owned();
    let machine_id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(condition(&body, "PairingReady")["reason"], "NothingPending");

    // 1. No Anthropic key of the customer's: the gateway talks to the LLM proxy with a proxy
    // token that the proxy's side verifies.
    let key = ProxyTokenKey::new(
        LLM_PROXY_KEY.as_bytes(),
        "openclaws-llm-proxy",
        chrono::Duration::seconds(90),
    )
    .unwrap();
    let proc = process(&stack, &machine_id).await.expect("running");
    assert_eq!(
        process_env(proc.pid, "ANTHROPIC_API_KEY"),
        None,
        "the proxy token lives in the gateway's secret store, not the machine's environment"
    );
    let first = eventually(PAIRING_DEADLINE, "the proxy token delivered", || async {
        resolved_anthropic_key(&stack, "oc-bea", &machine_id).await
    })
    .await;
    let first_claims = key
        .verify(&first, chrono::Utc::now())
        .expect("the token verifies");
    assert_eq!(first_claims.sub, uid);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(proc.volume_dir.join("openclaw.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        config["models"]["providers"]["anthropic"]["baseUrl"], LLM_PROXY_URL,
        "{config}"
    );
    assert_eq!(
        config["models"]["providers"]["anthropic"]["apiKey"],
        json!({"source": "store", "provider": "default", "id": "OPENCLAWS_LLM_PROXY_TOKEN"}),
        "{config}"
    );

    // 2. Policy manual: a browser's request is shown, with its device, and not approved...
    let host = "bea.openclaws.test";
    let token = gateway_token(&stack, "bea").await;
    let device = DeviceIdentity::generate();
    let request = pending_request(&browser(&stack, host, &token), &device, PAIRING_DEADLINE).await;
    let rid = request.request_id.clone();
    let shown = stack
        .wait_for(
            "bea",
            "the pending request in status",
            PAIRING_DEADLINE,
            |b| {
                b["status"]["pairing"]["pending"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x["requestId"] == rid.as_str()))
            },
        )
        .await;
    let pending = &shown["status"]["pairing"]["pending"][0];
    assert_eq!(pending["deviceName"], "test browser", "{pending}");
    assert_eq!(pending["platform"], "web", "{pending}");
    assert_eq!(pending["client"], "openclaw-control-ui", "{pending}");
    assert!(pending["ageSeconds"].as_i64().is_some(), "{pending}");
    assert_eq!(
        condition(&shown, "PairingReady")["reason"],
        "AwaitingApproval"
    );
    // ...even after a reconcile has looked again (the subscription shows it; a reconcile's own
    // look must agree).
    let seen_at = shown["status"]["pairing"]["observedAt"].clone();
    stack.reconcile_now("bea").await;
    stack
        .wait_for("bea", "another look", PAIRING_DEADLINE, |b| {
            b["status"]["pairing"]["observedAt"] != seen_at
        })
        .await;
    let again = pending_request(&browser(&stack, host, &token), &device, PAIRING_DEADLINE).await;
    assert_eq!(again.request_id, rid, "a reconnect keeps its request");

    // 3. The API approves at once (200 with the outcome); bad ones are refused without a trace.
    for bad in [
        json!({}),
        json!({"requestId": rid, "latest": true}),
        json!({"requestId": ""}),
    ] {
        let (code, body) = post_approval(&stack, "bea", WRITER, bad).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (code, _) = post_approval(&stack, "bea", READER, json!({"requestId": rid})).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // 200 with the outcome at once; 202 (recorded, carried out later; the outcome is checked
    // below either way) when a proxy-token rotation (90 s tokens here) restarts the gateway in
    // between, or when the gateway's answer takes longer than the API's 5 s wait (seen in CI
    // with several gateways booting on 2 cores).
    stack.wait_ready("bea", READY_DEADLINE).await;
    let (code, recorded) = post_approval(&stack, "bea", WRITER, json!({"requestId": rid})).await;
    if code == StatusCode::ACCEPTED {
        let (_, now) = stack.get("bea").await;
        println!(
            "approval answered 202 (phase {}): the outcome took longer than the API's wait",
            now["status"]["phase"]
        );
        assert!(recorded["outcome"].is_null(), "{recorded}");
    } else {
        assert_eq!(code, StatusCode::OK, "{recorded}");
        assert_eq!(recorded["outcome"]["result"], "Approved", "{recorded}");
    }
    let approval_id = recorded["approval"]["id"].as_str().unwrap().to_owned();
    let client = eventually(
        PAIRING_DEADLINE,
        "the approved browser connects",
        || async {
            connect_browser(&browser(&stack, host, &token), &device)
                .await
                .ok()
        },
    )
    .await;
    let mut scopes = client.granted_scopes().to_vec();
    scopes.sort();
    assert_eq!(scopes, vec![SCOPE_READ, SCOPE_WRITE]);
    client.close().await;
    stack
        .wait_for("bea", "the approval's outcome", PAIRING_DEADLINE, |b| {
            b["status"]["pairing"]["recent"]
                .as_array()
                .is_some_and(|r| {
                    r.iter().any(|x| {
                        x["approvalId"] == approval_id.as_str() && x["result"] == "Approved"
                    })
                })
        })
        .await;

    // 4. An approval for a request that is not pending is refused at once, and recorded
    // nowhere.
    stack.wait_ready("bea", READY_DEADLINE).await;
    let (code, refused) = post_approval(
        &stack,
        "bea",
        WRITER,
        json!({"requestId": "no-such-request"}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{refused}");
    assert_eq!(refused["error"]["reason"], "RequestNotFound", "{refused}");
    let (_, body) = stack.get("bea").await;
    assert!(
        !body["spec"]["pairing"]["approvals"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["requestId"] == "no-such-request")),
        "{body}"
    );
    for series in [r#"openclaws_pairing_approvals_total{policy="manual",result="approved"}"#] {
        assert!(stack.metric(series, "").await >= 1.0, "{series}");
    }

    // 5. The proxy token is replaced before it expires (two thirds into its 90 s), and the
    // gateway resolves the new one, without a restart.
    let rotated = eventually(
        Duration::from_secs(180),
        "a rotated proxy token",
        || async {
            resolved_anthropic_key(&stack, "oc-bea", &machine_id)
                .await
                .filter(|t| *t != first)
        },
    )
    .await;
    assert_eq!(
        process(&stack, &machine_id).await.map(|p| p.pid),
        Some(proc.pid),
        "the same gateway process"
    );
    let claims = key
        .verify(&rotated, chrono::Utc::now())
        .expect("the new token verifies");
    assert!(
        claims.iat < first_claims.exp,
        "rotated at {} after the old token expired at {}",
        claims.iat,
        first_claims.exp
    );
    stack.wait_ready("bea", READY_DEADLINE).await;

    // 6. Stopped on purpose: pairing says why it cannot work.
    let (code, body) = stack
        .patch("bea", json!({"spec": {"runState": "stopped"}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let body = stack
        .wait_for("bea", "Stopped", READY_DEADLINE, |b| {
            b["status"]["phase"] == "Stopped"
        })
        .await;
    assert_eq!(
        condition(&body, "PairingReady")["reason"],
        "MachineStopped",
        "{body}"
    );
    assert_eq!(
        condition(&body, "GatewayHealthy")["reason"],
        "MachineStopped",
        "{body}"
    );
    assert_eq!(stack.delete("bea").await, StatusCode::ACCEPTED);
}
