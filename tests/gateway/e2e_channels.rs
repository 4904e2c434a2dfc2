//! A Telegram channel and its DM pairing end to end through the product path, on one real
//! gateway (`docs/channels.md`, `docs/pairing.md` "DM pairing"). Everything goes through the API
//! and the controller: the controller points the gateway's Telegram channel at the test kit's
//! fake Bot API (`OPENCLAWS_TELEGRAM_API_ROOT`) and its model at the fake Anthropic API (the LLM
//! proxy URL), and
//! - `spec.channels.telegram` gives `ChannelsReady=True` (`Connected`), the token in the
//!   gateway's secret store and a store SecretRef in `openclaw.json`, with no nudge;
//! - a stranger's DM gets a pairing code at the fake Telegram, the request shows in
//!   `status.pairing.channelPending` with no Fly call; the API approves it (200), and the
//!   stranger's next message reaches the agent, whose model request carries the name the
//!   customer chose in `IDENTITY.md` and "OpenClaws", and whose reply arrives at the fake
//!   Telegram; a second stranger is dismissed and never reaches the agent; a third is approved
//!   with the support console's Approve button in headless Chromium and reaches the agent;
//! - a token the Bot API refuses gives `InvalidToken`; a rotated token is applied in the running
//!   gateway (same process, no `UpdateMachine` or `RestartMachine`);
//! - removing the channel removes its config and its store entries, and the API then answers
//!   `ChannelNotConfigured` from the spec.
//!
//! The instance's reconciles are counted by outcome: while nothing changes in its spec (the DM
//! part), it is not reconciled beyond a bound. Prints `e2e_channels:` lines with the times
//! measured (`--nocapture`).

use openclaws_testkit::anthropic::{Auth, FakeAnthropic, MessagesRequest, DEFAULT_COMPLETION};
use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack};
use openclaws_testkit::telegram::{token, FakeTelegram, SentMessage};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NAME: &str = "chan";
const APP: &str = "oc-chan";
const READY_DEADLINE: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(120);
const STRANGER: i64 = 424_242;
const SECOND_STRANGER: i64 = 434_343;
const THIRD_STRANGER: i64 = 454_545;
/// OpenClaw's pairing code alphabet (`PAIRING_CODE_ALPHABET`: no 0, O, 1, I).
const CODE_ALPHABET: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Most reconciles of the instance while only DMs happen (its spec unchanged but for the
/// decisions the API records, each one write). With resync at an hour, a look is brought only by
/// those writes; a status write by the pairing subscription must bring none.
const DM_RECONCILES_AT_MOST: f64 = 6.0;

/// The pid of a machine's boot process and its volume directory, from the simulator.
async fn process(stack: &Stack, machine_id: &str) -> Option<(u32, PathBuf)> {
    let url = format!("{}/_sim/machines/{machine_id}/process", stack.sim_url);
    let body: Value = stack.http.get(url).send().await.ok()?.json().await.ok()?;
    Some((
        body["pid"].as_u64()? as u32,
        PathBuf::from(body["volume_dir"].as_str()?),
    ))
}

fn read_config(volume: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(volume.join("openclaw.json")).unwrap()).unwrap()
}

/// A gateway method called by the gateway's CLI inside the machine (loopback, the machine's
/// token), through Fly exec: its JSON output, if it answered.
async fn gateway_call(stack: &Stack, machine_id: &str, method: &str) -> Option<Value> {
    let script = format!(
        r#"exec node "$OPENCLAWS_GATEWAY_ENTRY" gateway call {method} --url "ws://127.0.0.1:${{OPENCLAWS_GATEWAY_PORT:-3000}}" --token "$OPENCLAW_GATEWAY_TOKEN" --json"#
    );
    let (code, body) = stack
        .fly(
            Method::POST,
            &format!("/v1/apps/{APP}/machines/{machine_id}/exec"),
            Some(json!({"command": ["sh", "-c", script], "timeout": 50})),
        )
        .await;
    if code != StatusCode::OK || body["exit_code"].as_i64().unwrap_or(1) != 0 {
        return None;
    }
    serde_json::from_str(body["stdout"].as_str()?.trim()).ok()
}

/// The names in the gateway's secret store.
async fn store_names(stack: &Stack, machine_id: &str) -> Vec<String> {
    let out = gateway_call(stack, machine_id, "secrets.store.list")
        .await
        .expect("the store lists");
    let entries = out["entries"].as_array().cloned().unwrap_or_default();
    let names = entries.iter().filter_map(|e| e["name"].as_str());
    names.map(str::to_owned).collect()
}

/// Waits, without asking for a reconcile, until `ChannelsReady` has `reason`; returns the
/// instance and how long it took. On timeout, says what the gateway itself reports.
async fn channels_ready(stack: &Stack, reason: &str) -> (Value, Duration) {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < STEP {
        let (_, body) = stack.get(NAME).await;
        let seen = body["status"]["channels"].to_string();
        if seen != last {
            eprintln!("e2e_channels: status.channels {seen}");
            last = seen;
        }
        if condition(&body, "ChannelsReady")["reason"] == reason {
            return (body, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, body) = stack.get(NAME).await;
    let machine_id = body["status"]["fly"]["machineId"].as_str().unwrap_or("");
    let said = gateway_call(stack, machine_id, "channels.status").await;
    panic!(
        "no ChannelsReady {reason} within {STEP:?}: {}; the gateway says {}",
        condition(&body, "ChannelsReady"),
        said.unwrap_or_default()
            .to_string()
            .chars()
            .take(800)
            .collect::<String>()
    );
}

async fn decide(stack: &Stack, path: &str, body: Value) -> (StatusCode, Value) {
    stack.post(NAME, path, &body).await
}

/// The 8-character code in OpenClaw's pairing reply (`Pairing code:` then the code).
fn pairing_code(message: &SentMessage) -> Option<String> {
    let after = message.text.split("Pairing code:").nth(1)?;
    after
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == 8 && w.chars().all(|c| CODE_ALPHABET.contains(c)))
        .map(str::to_owned)
}

/// Whether the conversation the agent sent the model holds `text`.
fn said(request: &MessagesRequest, text: &str) -> bool {
    serde_json::to_string(&request.messages)
        .unwrap()
        .contains(text)
}

/// `openclaws_reconciles_total` by its labels (one instance on this stack).
async fn reconciles(stack: &Stack) -> BTreeMap<String, f64> {
    let text = stack.metrics_text().await;
    let series = text
        .lines()
        .filter_map(|l| l.strip_prefix("openclaws_reconciles_total"));
    series
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Reconciles between two readings of [`reconciles`], by labels, and their total.
fn reconciled(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> (f64, String) {
    let delta: Vec<(String, f64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect();
    (delta.iter().map(|(_, d)| d).sum(), format!("{delta:?}"))
}

/// The sender id of a DM request or outcome, as a number.
fn sender(entry: &Value) -> Option<i64> {
    entry["senderId"].as_str()?.parse().ok()
}

fn channel_pending(body: &Value, from: i64) -> Option<Value> {
    let pending = body["status"]["pairing"]["channelPending"].as_array()?;
    pending.iter().find(|p| sender(p) == Some(from)).cloned()
}

fn events_named(events: &[Value], reason: &str) -> usize {
    events.iter().filter(|e| e["reason"] == reason).count()
}

/// The stack: a controller that points Telegram at `fake` and the model at `model`.
async fn stack(model: &FakeAnthropic, fake: &FakeTelegram) -> Stack {
    let mut stack = super::model_stack().await;
    stack.settings.gateway.llm_proxy_url = Some(model.url.clone());
    stack.settings.gateway.telegram_api_root = Some(fake.api_root.clone());
    stack.start_controller().await;
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_channel_pairs_a_stranger_through_the_api_rotates_and_goes_away() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let good = token("good-secret-a");
    let wrong = token("not-a-token-the-bot-api-knows");
    let rotated = token("good-secret-b");
    let model = FakeAnthropic::start(Auth::AnyKey).await;
    let fake = FakeTelegram::start([good.clone()]).await;
    let stack = stack(&model, &fake).await;

    let machine = connect(&stack, &fake, &good).await;
    pair_and_answer(&stack, &fake, &model).await;
    wrong_then_rotated(&stack, &fake, &machine, &wrong, &rotated).await;
    remove(&stack, &machine).await;
    let text = serde_json::to_string(&stack.events(NAME).await).unwrap();
    for secret in ["good-secret-a", "good-secret-b", "not-a-token-the-bot-api"] {
        assert!(!text.contains(secret), "a token in the events");
    }
    assert_eq!(stack.delete(NAME).await, StatusCode::ACCEPTED);
}

/// The running machine: its id, its gateway's pid and its volume.
struct Machine {
    id: String,
    pid: u32,
    volume: PathBuf,
}

/// Creates the instance with Telegram and waits for `Connected`; checks the delivery.
async fn connect(stack: &Stack, fake: &FakeTelegram, good: &str) -> Machine {
    let started = Instant::now();
    let spec = json!({"customerId": "c-chan", "region": "iad",
        "identity": {"displayName": "Clawdia"},
        "channels": {"telegram": {"botToken": good, "dmPolicy": "pairing"}}});
    let (code, body) = stack.put(NAME, spec).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    stack.wait_ready(NAME, READY_DEADLINE).await;
    let ready_at = started.elapsed();
    let (body, _) = channels_ready(stack, "Connected").await;
    println!(
        "e2e_channels: create -> Ready {ready_at:?}, -> ChannelsReady=True {:?}",
        started.elapsed()
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
    let id = body["status"]["fly"]["machineId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pid, volume) = process(stack, &id).await.expect("running");
    let config = read_config(&volume);
    assert_eq!(
        config["channels"]["telegram"]["botToken"],
        json!({"source": "store", "provider": "default", "id": "OPENCLAWS_TELEGRAM_BOT_TOKEN"})
    );
    assert_eq!(config["channels"]["telegram"]["apiRoot"], fake.api_root);
    assert_eq!(config["channels"]["telegram"]["dmPolicy"], "pairing");
    assert!(!config.to_string().contains("good-secret-a"));
    let names = store_names(stack, &id).await;
    for name in [
        "OPENCLAWS_TELEGRAM_BOT_TOKEN",
        "OPENCLAWS_TELEGRAM_BOT_TOKEN_FP",
    ] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }
    Machine { id, pid, volume }
}

/// A stranger's DM shown, approved through the API and answered by the agent as the
/// customer's OpenClaws agent; a second stranger dismissed. Bounds the reconciles meanwhile.
async fn pair_and_answer(stack: &Stack, fake: &FakeTelegram, model: &FakeAnthropic) {
    stack
        .wait_for(NAME, "telegram using DM pairing", STEP, |b| {
            b["status"]["pairing"]["channelAccounts"] == json!(["telegram:default"])
        })
        .await;
    eventually(STEP, "a pairing subscription", || async {
        let open = stack.metric("openclaws_pairing_subscriptions", "").await;
        (open == 1.0).then_some(())
    })
    .await;
    let reconciles_before = reconciles(stack).await;
    let dm_started = Instant::now();
    let request_id = first_dm(stack, fake).await;
    refusals(stack).await;
    approve_and_answer(stack, fake, model, &request_id).await;
    dismiss(stack, fake, model).await;
    approve_in_the_console(stack, fake, model).await;
    let (count, by) = reconciled(&reconciles_before, &reconciles(stack).await);
    println!(
        "e2e_channels: {count} reconciles in the DM part ({:?}): {by}",
        dm_started.elapsed()
    );
    assert!(
        count <= DM_RECONCILES_AT_MOST,
        "{count} reconciles while only DMs happened: {by}"
    );
}

/// The first DM: the code at the fake Telegram, the request in status, no Fly call for it.
async fn first_dm(stack: &Stack, fake: &FakeTelegram) -> String {
    let fly_before = stack.fly_calls().await;
    let sent = Instant::now();
    fake.send_text(STRANGER, "Stranger Danger", "hi, who are you?");
    let reply = fake
        .wait_for_message(STRANGER, |m| pairing_code(m).is_some(), STEP)
        .await
        .unwrap();
    let code_sent = sent.elapsed();
    let pairing = pairing_code(&reply).unwrap();
    assert!(reply.text.contains(&STRANGER.to_string()), "{}", reply.text);
    let shown = stack
        .wait_for(NAME, "the DM request in status", STEP, |b| {
            channel_pending(b, STRANGER).is_some()
        })
        .await;
    println!(
        "e2e_channels: first DM -> code at Telegram {code_sent:?}, -> request in status {:?}",
        sent.elapsed()
    );
    let request = channel_pending(&shown, STRANGER).unwrap();
    assert_eq!(request["channel"], "telegram", "{request}");
    assert_eq!(request["accountId"], "default", "{request}");
    assert_eq!(request["senderName"], "Stranger Danger", "{request}");
    assert!(request["expiresAt"].is_string(), "{request}");
    assert!(
        !serde_json::to_string(&shown).unwrap().contains(&pairing),
        "OpenClaw does not reveal the code over its protocol"
    );
    let fly_after = stack.fly_calls().await;
    // No reconcile is needed to show it; on a loaded machine a look of the instance may still
    // fall in this window: one GET of each kind, never more, never a write.
    let changed: Vec<_> = fly_after
        .iter()
        .filter(|(k, v)| fly_before.get(*k) != Some(*v))
        .filter(|(k, v)| {
            **v > fly_before.get(*k).copied().unwrap_or(0) + 1 || !k.starts_with("GET ")
        })
        .collect();
    assert!(
        changed.is_empty(),
        "showing a DM request called Fly beyond one look: {changed:?}"
    );
    request["requestId"].as_str().unwrap().to_owned()
}

/// The API's specific refusals on the way.
async fn refusals(stack: &Stack) {
    let discord = "channels/discord/pairing/approvals";
    let (code, answer) = decide(stack, discord, json!({"requestId": "abc"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["error"]["reason"], "ChannelNotConfigured",
        "{answer}"
    );
    let approvals = "channels/telegram/pairing/approvals";
    let (code, answer) = decide(stack, approvals, json!({"requestId": "NoSuchRequest"})).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["reason"], "RequestNotFound", "{answer}");
    let (code, answer) = decide(stack, approvals, json!({"code": "ABCD2345"})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let bad_channel = "channels/Tele gram/pairing/approvals";
    let (code, answer) = decide(stack, bad_channel, json!({"requestId": "x"})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
}

/// The dashboard approves; the stranger's next message reaches the agent, which answers as the
/// customer's OpenClaws agent.
async fn approve_and_answer(
    stack: &Stack,
    fake: &FakeTelegram,
    model: &FakeAnthropic,
    request_id: &str,
) {
    let approvals = "channels/telegram/pairing/approvals";
    let approved_at = Instant::now();
    let body = json!({"requestId": request_id, "notify": true});
    let (code, answer) = decide(stack, approvals, body).await;
    let approve_call = approved_at.elapsed();
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"]["result"], "Approved", "{answer}");
    assert_eq!(
        answer["outcome"]["senderId"],
        STRANGER.to_string(),
        "{answer}"
    );
    let asked = Instant::now();
    fake.send_text(STRANGER, "Stranger Danger", "hello again");
    let asked_model = model
        .wait_for_request(|r| said(r, "hello again"), STEP)
        .await
        .expect("the agent asked the model");
    let answered = fake
        .wait_for_message(STRANGER, |m| m.text.contains(DEFAULT_COMPLETION), STEP)
        .await
        .unwrap();
    println!(
        "e2e_channels: approval call {approve_call:?}; approval call -> next message answered at Telegram {:?} (message -> reply {:?})",
        approved_at.elapsed(),
        answered.at.duration_since(asked)
    );
    for name in ["Clawdia", "OpenClaws"] {
        assert!(asked_model.system.contains(name), "{}", asked_model.system);
    }
    stack
        .wait_for(NAME, "the request gone from status", STEP, |b| {
            channel_pending(b, STRANGER).is_none()
        })
        .await;
}

/// Another stranger is dismissed: gone from status, never answered by the agent.
async fn dismiss(stack: &Stack, fake: &FakeTelegram, model: &FakeAnthropic) {
    fake.send_text(SECOND_STRANGER, "Second", "let me in");
    let shown = stack
        .wait_for(NAME, "the second request", STEP, |b| {
            channel_pending(b, SECOND_STRANGER).is_some()
        })
        .await;
    let second = channel_pending(&shown, SECOND_STRANGER).unwrap();
    let dismissals = "channels/telegram/pairing/dismissals";
    let body = json!({"requestId": second["requestId"]});
    let (code, answer) = decide(stack, dismissals, body.clone()).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"]["result"], "Dismissed", "{answer}");
    let (code, answer) = decide(stack, dismissals, body).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["reason"], "RequestNotFound", "{answer}");
    assert!(
        model.requests().iter().all(|r| !said(r, "let me in")),
        "a stranger's message reached the agent"
    );
}

/// A third stranger approved with the support console's Approve button, in headless Chromium:
/// the same decision path as the API, and the stranger then reaches the agent.
async fn approve_in_the_console(stack: &Stack, fake: &FakeTelegram, model: &FakeAnthropic) {
    use crate::support_console::{click, exists, reload_until, sign_in, Driver};
    fake.send_text(THIRD_STRANGER, "Third", "may I?");
    let shown = stack
        .wait_for(NAME, "the third request", STEP, |b| {
            channel_pending(b, THIRD_STRANGER).is_some()
        })
        .await;
    let request = channel_pending(&shown, THIRD_STRANGER).unwrap();
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let page = format!("{}/support/instances/{NAME}", stack.api_url);
    browser.goto(&page).await.unwrap();
    sign_in(&browser, openclaws_testkit::stack::WRITER).await;
    let row = format!(
        "#dm-pending tr[data-request='{}']",
        request["requestId"].as_str().unwrap()
    );
    reload_until(&browser, &row, "the DM request on the instance page").await;
    click(&browser, &format!("{row} button.approvals")).await;
    assert!(exists(&browser, "#flash").await);
    let approved = |b: &Value| {
        let recent = b["status"]["pairing"]["recent"].as_array().cloned();
        recent
            .into_iter()
            .flatten()
            .any(|r| r["result"] == "Approved" && sender(&r) == Some(THIRD_STRANGER))
    };
    let decided = stack
        .wait_for(NAME, "the console's approval carried out", STEP, approved)
        .await;
    assert!(
        channel_pending(&decided, THIRD_STRANGER).is_none(),
        "{decided}"
    );
    browser.close().await.unwrap();
    fake.send_text(THIRD_STRANGER, "Third", "thanks, console");
    model
        .wait_for_request(|r| said(r, "thanks, console"), STEP)
        .await
        .expect("the console-approved stranger reaches the agent");
}

/// A token the Bot API refuses, then a rotated one applied in the running gateway.
async fn wrong_then_rotated(
    stack: &Stack,
    fake: &FakeTelegram,
    machine: &Machine,
    wrong: &str,
    rotated: &str,
) {
    let patch = |t: &str| json!({"spec": {"channels": {"telegram": {"botToken": t}}}});
    let (code, body) = stack.patch(NAME, patch(wrong)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (body, took) = channels_ready(stack, "InvalidToken").await;
    println!("e2e_channels: wrong token -> InvalidToken {took:?}");
    assert_eq!(condition(&body, "ChannelsReady")["status"], "False");
    assert_eq!(body["status"]["channels"][0]["state"], "Failing");
    let message = body["status"]["channels"][0]["message"].as_str().unwrap();
    assert!(!message.contains("not-a-token"), "{message}");
    assert_eq!(
        body["status"]["phase"], "Ready",
        "a channel does not hold Ready back"
    );

    fake.set_tokens([rotated.to_owned()]);
    let (code, body) = stack.patch(NAME, patch(rotated)).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (body, took) = channels_ready(stack, "Connected").await;
    println!("e2e_channels: rotated token -> Connected {took:?}");
    assert_eq!(condition(&body, "ChannelsReady")["status"], "True");
    let pid = process(stack, &machine.id).await.map(|p| p.0);
    assert_eq!(pid, Some(machine.pid), "the same gateway process");
    let events = stack.events(NAME).await;
    for restart in ["UpdateMachine", "RestartMachine"] {
        assert_eq!(events_named(&events, restart), 0, "{events:?}");
    }
    assert!(
        events_named(&events, "DeliverChannelSecret") >= 3,
        "{events:?}"
    );
}

/// Removing the channel removes its config and its store entries; the API then judges DM
/// decisions from the spec.
async fn remove(stack: &Stack, machine: &Machine) {
    let (code, body) = stack
        .patch(NAME, json!({"spec": {"channels": {"telegram": null}}}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    eventually(STEP, "the channel removed", || async {
        let gone = read_config(&machine.volume)["channels"]
            .get("telegram")
            .is_none()
            && events_named(&stack.events(NAME).await, "RemoveChannel") > 0;
        gone.then_some(())
    })
    .await;
    let names = store_names(stack, &machine.id).await;
    assert!(
        !names.iter().any(|n| n.starts_with("OPENCLAWS_TELEGRAM")),
        "{names:?}"
    );
    let (_, body) = stack.get(NAME).await;
    assert!(body["status"].get("channels").is_none(), "{body}");
    let pid = process(stack, &machine.id).await.map(|p| p.0);
    assert_eq!(pid, Some(machine.pid));
    let approvals = "channels/telegram/pairing/approvals";
    let (code, answer) = decide(stack, approvals, json!({"requestId": "abc"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["error"]["reason"], "ChannelNotConfigured",
        "{answer}"
    );
}
