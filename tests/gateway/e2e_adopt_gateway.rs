//! Adoption with the real OpenClaw gateway (`docs/adoption.md`): an app the old web app built runs
//! `node dist/index.js gateway …` on its `openclaw_data` volume; a browser paired with it and a
//! file under `/data` are still there after the controller takes the app over, and the gateway
//! token is the one the web app kept.

use openclaws_gateway::client::ClientError;
use openclaws_gateway::identity::DeviceIdentity;
use openclaws_testkit::db::eventually;
use openclaws_testkit::devices::{browser, connect_browser, gateway_token, pending_request};
use openclaws_testkit::legacy::{self, LegacyApp, LegacyOptions};
use openclaws_testkit::stack::{Stack, StackOptions, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const READY_DEADLINE: Duration = Duration::from_secs(240);
const PAIRING_DEADLINE: Duration = Duration::from_secs(120);
/// The web app's token for this gateway.
const TOKEN: &str = "legacy-gateway-token-4d2b8e61a0";

/// Runs a shell script in the machine through Fly's exec API: (exit code, stdout).
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

/// Approves a pairing request the way an operator of the web app's fleet did: the gateway's
/// own CLI in the machine.
async fn approve_in_machine(stack: &Stack, app: &str, machine_id: &str, request_id: &str) {
    let script = format!(
        "exec node \"${{OPENCLAWS_GATEWAY_ENTRY:-/app/dist/index.js}}\" devices approve {request_id} --json"
    );
    let (code, out) = exec(stack, app, machine_id, &script).await;
    assert_eq!(code, 0, "devices approve failed: {out}");
}

/// Gives the web app's gateway a config on its volume that trusts the simulator's proxy (on Fly
/// the gateways sat behind fly-proxy; the web app's config is not known to us) and lets a
/// browser on the hostname in, then restarts it (as `fly machine restart` would) to load it.
async fn trust_the_proxy(stack: &Stack, app: &str, machine_id: &str, host: &str) {
    let config = json!({
        "gateway": {
            "trustedProxies": ["127.0.0.1/32"],
            "controlUi": {"allowedOrigins": [format!("https://{host}")]}
        },
        "discovery": {"mdns": {"mode": "off"}},
        "update": {"checkOnStart": false}
    });
    let script = format!("cat > \"$OPENCLAW_STATE_DIR/openclaw.json\" <<'EOF'\n{config}\nEOF");
    let (code, out) = exec(stack, app, machine_id, &script).await;
    assert_eq!(code, 0, "{out}");
    let path = format!("/v1/apps/{app}/machines/{machine_id}/restart");
    let (code, body) = stack.fly(Method::POST, &path, None).await;
    assert!(code.is_success(), "{code} {body}");
}

/// The web app's gateway in use: a browser pairs (approved in the machine, as the web app's
/// operators did) and a file is written under `/data`.
async fn pair_and_write_a_file(stack: &Stack, old: &LegacyApp, device: &DeviceIdentity) {
    let host = old.hostname.as_str();
    let request = pending_request(&browser(stack, host, TOKEN), device, PAIRING_DEADLINE).await;
    approve_in_machine(stack, &old.app, &old.machine_id, &request.request_id).await;
    let client = eventually(PAIRING_DEADLINE, "the browser to connect", || async {
        connect_browser(&browser(stack, host, TOKEN), device)
            .await
            .ok()
    })
    .await;
    client.close().await;
    let write = r#"echo kept > "$OPENCLAW_STATE_DIR/marker.txt""#;
    let (code, _) = exec(stack, &old.app, &old.machine_id, write).await;
    assert_eq!(code, 0, "writing a file under /data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_gateway_keeps_its_files_its_token_and_its_paired_devices() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let stack = Stack::start(StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    })
    .await;
    let old = legacy::build(&stack, "olden", TOKEN, &LegacyOptions::default()).await;
    let host = old.hostname.as_str();
    trust_the_proxy(&stack, &old.app, &old.machine_id, host).await;

    let device = DeviceIdentity::generate();
    pair_and_write_a_file(&stack, &old, &device).await;

    // Adoption, with manual pairing so no device can be approved again behind the test's back.
    let body = json!({"app": old.app, "gatewayToken": TOKEN, "spec": {
        "customerId": "c-olden", "region": "iad", "pairing": {"policy": "manual"}}});
    let resp = stack
        .http
        .post(format!("{}/v1/instances/olden/adopt", stack.api_url))
        .bearer_auth(WRITER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let ready = stack.wait_ready("olden", READY_DEADLINE).await;
    assert_eq!(ready["status"]["fly"]["machineId"], old.machine_id.as_str());
    assert_eq!(ready["status"]["fly"]["volumeId"], old.volume_id.as_str());

    let read = r#"cat "$OPENCLAW_STATE_DIR/marker.txt""#;
    let (_, marker) = exec(&stack, &old.app, &old.machine_id, read).await;
    assert_eq!(marker.trim(), "kept", "the file under /data survived");
    assert_eq!(gateway_token(&stack, "olden").await, TOKEN);
    let connected = eventually(
        PAIRING_DEADLINE,
        "the paired browser to connect",
        || async {
            match connect_browser(&browser(&stack, host, TOKEN), &device).await {
                Ok(client) => Some(client),
                Err(ClientError::PairingRequired(p)) => {
                    panic!("the paired browser must not need a new approval: {p:?}")
                }
                Err(_) => None,
            }
        },
    )
    .await;
    connected.close().await;
    let events: Vec<Value> = stack.events("olden").await;
    assert!(
        !events.iter().any(|e| e["reason"] == "ApprovePairing"),
        "nothing was approved by the controller: {events:?}"
    );
}
