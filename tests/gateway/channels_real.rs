//! Managed channels on the real gateway (`docs/channels.md`), one gateway for the whole story:
//! the controller points the gateway's Telegram channel at the fake Bot API of the test kit
//! (`OPENCLAWS_TELEGRAM_API_ROOT`), and
//! - a good bot token gives `ChannelsReady=True`, reason `Connected`, the token in the gateway's
//!   secret store and a store SecretRef in `openclaw.json` (never the token itself);
//! - a token the Bot API refuses gives `InvalidToken`;
//! - a rotated token (the old one revoked at the Bot API) is applied without a machine restart:
//!   the same gateway process, no `UpdateMachine` or `RestartMachine`, connected again;
//! - removing the channel removes its config and its store entries, and nothing else.
//!
//! Prints `channels:` lines with the times measured (`--nocapture`).

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack, StackOptions};
use openclaws_testkit::telegram::{token, FakeTelegram};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::hot_reload::{nudge, NUDGE_EVERY};

const READY_DEADLINE: Duration = Duration::from_secs(240);
const CHANNEL_DEADLINE: Duration = Duration::from_secs(180);

/// The pid of a machine's boot process and its volume directory, from the simulator.
async fn process(stack: &Stack, machine_id: &str) -> Option<(u32, PathBuf)> {
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

fn read_config(volume: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(volume.join("openclaw.json")).unwrap()).unwrap()
}

/// The names in the gateway's secret store, asked by the gateway's CLI inside the machine over
/// loopback with the machine's token, through Fly exec.
async fn store_names(stack: &Stack, app: &str, machine_id: &str) -> Option<Vec<String>> {
    let script = r#"exec node "$OPENCLAWS_GATEWAY_ENTRY" gateway call secrets.store.list --url "ws://127.0.0.1:${OPENCLAWS_GATEWAY_PORT:-3000}" --token "$OPENCLAW_GATEWAY_TOKEN" --json"#;
    let (code, body) = stack
        .fly(
            reqwest::Method::POST,
            &format!("/v1/apps/{app}/machines/{machine_id}/exec"),
            Some(json!({"command": ["sh", "-c", script], "timeout": 50})),
        )
        .await;
    if code != StatusCode::OK || body["exit_code"].as_i64().unwrap_or(1) != 0 {
        return None;
    }
    let out: Value = serde_json::from_str(body["stdout"].as_str()?.trim()).ok()?;
    Some(
        out["entries"]
            .as_array()?
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// Waits, asking for a look every few seconds, until `ChannelsReady` has `reason`; returns the
/// instance and how long it took. On timeout, prints what the gateway itself says.
async fn channels_ready(stack: &Stack, reason: &str) -> (Value, Duration) {
    let started = Instant::now();
    let nudged = Mutex::new(Instant::now() - NUDGE_EVERY);
    let mut last = String::new();
    while started.elapsed() < CHANNEL_DEADLINE {
        nudge(stack, "chan", &nudged).await;
        let (_, body) = stack.get("chan").await;
        let seen = format!(
            "{} lastError {}",
            body["status"]["channels"], body["status"]["lastError"]
        );
        if seen != last {
            eprintln!("channels: status.channels {seen}");
            last = seen;
        }
        if condition(&body, "ChannelsReady")["reason"] == reason {
            return (body, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, body) = stack.get("chan").await;
    let machine_id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap_or_default();
    let said = gateway_call(stack, machine_id, "channels.status").await;
    let events: Vec<String> = stack
        .events("chan")
        .await
        .iter()
        .rev()
        .take(12)
        .filter(|e| e["reason"] != "ReconcileRequested")
        .map(|e| format!("{} {}", e["reason"], e["message"]))
        .collect();
    panic!(
        "no ChannelsReady {reason} within {CHANNEL_DEADLINE:?}; conditions {}; events {events:#?}; \
         the gateway says {}",
        body["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} {} {}", c["type"], c["reason"], c["message"]))
            .collect::<Vec<_>>()
            .join(" | "),
        said.chars().take(600).collect::<String>()
    );
}

/// A gateway method called by the gateway's CLI inside the machine (loopback, the machine's
/// token), through Fly exec: its output, or what went wrong.
async fn gateway_call(stack: &Stack, machine_id: &str, method: &str) -> String {
    let script = format!(
        r#"exec node "$OPENCLAWS_GATEWAY_ENTRY" gateway call {method} --url "ws://127.0.0.1:${{OPENCLAWS_GATEWAY_PORT:-3000}}" --token "$OPENCLAW_GATEWAY_TOKEN" --json"#
    );
    let (_, body) = stack
        .fly(
            reqwest::Method::POST,
            &format!("/v1/apps/oc-chan/machines/{machine_id}/exec"),
            Some(json!({"command": ["sh", "-c", script], "timeout": 50})),
        )
        .await;
    body.to_string()
}

fn events_named(events: &[Value], reason: &str) -> usize {
    events.iter().filter(|e| e["reason"] == reason).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_channel_connects_refuses_a_bad_token_rotates_without_a_restart_and_goes_away() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let good = token("good-secret-a");
    let wrong = token("not-a-token-the-bot-api-knows");
    let rotated = token("good-secret-b");
    let fake = FakeTelegram::start([good.clone()]).await;
    let mut stack = Stack::start_without_controller(StackOptions {
        gateways: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    })
    .await;
    stack.settings.gateway.telegram_api_root = Some(fake.api_root.clone());
    stack.start_controller().await;

    // (a) A good token: connected, delivered through the store, referred to by a SecretRef.
    let started = Instant::now();
    let (code, body) = stack
        .put(
            "chan",
            json!({"customerId": "c-chan", "region": "iad",
                   "channels": {"telegram": {"botToken": good, "dmPolicy": "pairing"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready("chan", READY_DEADLINE).await;
    let (body, _) = channels_ready(&stack, "Connected").await;
    eprintln!(
        "channels: create to ChannelsReady=True: {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(
        condition(&body, "ChannelsReady")["status"],
        "True",
        "{body}"
    );
    let status = &body["status"]["channels"][0];
    assert_eq!(status["channel"], "telegram");
    assert_eq!(status["state"], "Connected", "{body}");
    assert!(status["lastCheckedAt"].is_string());
    assert!(fake.calls("getMe") + fake.calls("getUpdates") > 0);
    let machine_id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pid, volume) = process(&stack, &machine_id).await.expect("running");
    let config = read_config(&volume);
    assert_eq!(
        config["channels"]["telegram"]["botToken"],
        json!({"source": "store", "provider": "default", "id": "OPENCLAWS_TELEGRAM_BOT_TOKEN"})
    );
    assert_eq!(config["channels"]["telegram"]["apiRoot"], fake.api_root);
    assert!(!config.to_string().contains("good-secret-a"));
    let names = store_names(&stack, "oc-chan", &machine_id)
        .await
        .expect("the store lists");
    assert!(
        names.contains(&"OPENCLAWS_TELEGRAM_BOT_TOKEN".to_owned())
            && names.contains(&"OPENCLAWS_TELEGRAM_BOT_TOKEN_FP".to_owned()),
        "{names:?}"
    );

    // (b) A token the Bot API refuses.
    let (code, body) = stack
        .patch(
            "chan",
            json!({"spec": {"channels": {"telegram": {"botToken": wrong}}}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (body, took) = channels_ready(&stack, "InvalidToken").await;
    eprintln!(
        "channels: wrong token to InvalidToken: {} ms",
        took.as_millis()
    );
    assert_eq!(condition(&body, "ChannelsReady")["status"], "False");
    assert_eq!(body["status"]["channels"][0]["state"], "Failing");
    let message = body["status"]["channels"][0]["message"].as_str().unwrap();
    assert!(!message.contains("not-a-token"), "{message}");
    assert_eq!(
        body["status"]["phase"], "Ready",
        "a channel does not hold Ready back"
    );

    // (c) Rotation: the Bot API now knows only the new token; applied in the running gateway.
    fake.set_tokens([rotated.clone()]);
    let (code, body) = stack
        .patch(
            "chan",
            json!({"spec": {"channels": {"telegram": {"botToken": rotated}}}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (body, took) = channels_ready(&stack, "Connected").await;
    eprintln!(
        "channels: rotated token to Connected: {} ms",
        took.as_millis()
    );
    assert_eq!(condition(&body, "ChannelsReady")["status"], "True");
    assert_eq!(
        process(&stack, &machine_id).await.map(|p| p.0),
        Some(pid),
        "the same gateway process"
    );
    let events = stack.events("chan").await;
    for restart in ["UpdateMachine", "RestartMachine"] {
        assert_eq!(events_named(&events, restart), 0, "{events:?}");
    }
    assert!(
        events_named(&events, "DeliverChannelSecret") >= 3,
        "{events:?}"
    );

    // (d) Removing the channel removes its config and its store entries.
    let (code, body) = stack
        .patch("chan", json!({"spec": {"channels": {"telegram": null}}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let nudged = Mutex::new(Instant::now() - NUDGE_EVERY);
    eventually(CHANNEL_DEADLINE, "the channel removed", || async {
        nudge(&stack, "chan", &nudged).await;
        let config = read_config(&volume);
        let gone = config["channels"].get("telegram").is_none()
            && events_named(&stack.events("chan").await, "RemoveChannel") > 0;
        gone.then_some(())
    })
    .await;
    let names = store_names(&stack, "oc-chan", &machine_id)
        .await
        .expect("the store lists");
    assert!(
        !names.iter().any(|n| n.starts_with("OPENCLAWS_TELEGRAM")),
        "{names:?}"
    );
    let (_, body) = stack.get("chan").await;
    assert!(body["status"].get("channels").is_none(), "{body}");
    assert_eq!(process(&stack, &machine_id).await.map(|p| p.0), Some(pid));
    let text = serde_json::to_string(&stack.events("chan").await).unwrap();
    for secret in ["good-secret-a", "good-secret-b", "not-a-token-the-bot-api"] {
        assert!(!text.contains(secret), "a token in the events");
    }
    assert_eq!(stack.delete("chan").await, StatusCode::ACCEPTED);
}
