//! DM pairing on a real gateway (`docs/pairing.md`, "DM pairing"): a stranger writes to the
//! instance's Telegram bot (a fake Bot API the gateway polls through `channels.telegram.apiRoot`),
//! gets a pairing code, the request shows in `status.pairing.channelPending` within a second or
//! two with no Fly call, the API approves it, and the stranger's next message reaches the agent,
//! whose model request (a fake Anthropic API) carries the OpenClaws identity, and whose reply
//! arrives at the fake Telegram. Dismissals and the API's specific refusals on the way.

use openclaws_testkit::anthropic::{Auth, FakeAnthropic, MessagesRequest, DEFAULT_COMPLETION};
use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions, WRITER};
use openclaws_testkit::telegram::{self, FakeTelegram, SentMessage};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const READY_DEADLINE: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(90);
const STRANGER: i64 = 424_242;
const SECOND_STRANGER: i64 = 434_343;
/// OpenClaw's pairing code alphabet (`PAIRING_CODE_ALPHABET`: no 0, O, 1, I).
const CODE_ALPHABET: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

async fn decide(stack: &Stack, name: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = stack
        .http
        .post(format!("{}/v1/instances/{name}/{path}", stack.api_url))
        .bearer_auth(WRITER)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

/// The 8-character code in OpenClaw's pairing reply (`Pairing code:` then the code on its own
/// line).
fn pairing_code(message: &SentMessage) -> Option<String> {
    let after = message.text.split("Pairing code:").nth(1)?;
    after
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == 8 && w.chars().all(|c| CODE_ALPHABET.contains(c)))
        .map(str::to_owned)
}

/// Whether the conversation the agent sent the model holds `text` (the user's message comes
/// with OpenClaw's context blocks).
fn said(request: &MessagesRequest, text: &str) -> bool {
    serde_json::to_string(&request.messages)
        .unwrap()
        .contains(text)
}

/// Total calls per Fly endpoint so far.
async fn fly_calls(stack: &Stack) -> BTreeMap<String, u64> {
    let (_, stats) = stack.fly(Method::GET, "/_sim/stats", None).await;
    let calls = stats["calls"].as_object().unwrap();
    calls
        .iter()
        .map(|(k, v)| (k.clone(), v["total"].as_u64().unwrap()))
        .collect()
}

fn channel_pending(body: &Value, sender: i64) -> Option<Value> {
    let pending = body["status"]["pairing"]["channelPending"].as_array()?;
    pending
        .iter()
        .find(|p| p["senderId"].as_str().and_then(|s| s.parse().ok()) == Some(sender))
        .cloned()
}

/// Configures Telegram on the running gateway the way a customer's hand edit of
/// `openclaw.json` (or the Control UI) would; the gateway applies `channels.*` without a
/// restart.
async fn configure_telegram(stack: &Stack, body: &Value, fake: &FakeTelegram, token: &str) {
    let machine_id = body["status"]["fly"]["machineId"].as_str().unwrap();
    let (_, volume_dir) = super::hot_reload::process(stack, machine_id)
        .await
        .expect("the machine runs");
    let path = volume_dir.join("openclaw.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["channels"]["telegram"] = json!({
        "enabled": true,
        "botToken": token,
        "apiRoot": fake.api_root,
        "dmPolicy": "pairing",
    });
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap() + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_dm_is_shown_approved_through_the_api_and_answered_by_the_agent() {
    let _slot = openclaws_testkit::openclaw::gateway_slot();
    let model = FakeAnthropic::start(Auth::AnyKey).await;
    let bot_token = telegram::token("dm-pairing-bot");
    let fake = FakeTelegram::start([bot_token.clone()]).await;
    let mut stack = Stack::start_without_controller(StackOptions {
        gateways: true,
        llm_proxy: true,
        latency_scale: 0.2,
        resync_seconds: 3600,
        ..StackOptions::default()
    })
    .await;
    stack.settings.gateway.llm_proxy_url = Some(model.url.clone());
    stack.start_controller().await;
    let spec =
        json!({"customerId": "c-dm", "region": "iad", "identity": {"displayName": "Clawdia"}});
    let (code, body) = stack.put("dmpair", spec).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let body = stack.wait_ready("dmpair", READY_DEADLINE).await;

    // Before Telegram is configured: no channel account uses DM pairing.
    let approvals = "channels/telegram/pairing/approvals";
    let (code, answer) = decide(&stack, "dmpair", approvals, json!({"requestId": "abc"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["error"]["reason"], "ChannelNotConfigured",
        "{answer}"
    );

    configure_telegram(&stack, &body, &fake, &bot_token).await;
    eventually(STEP, "the bot polling", || async {
        (fake.calls("getUpdates") > 1).then_some(())
    })
    .await;
    // A look records which channel accounts use DM pairing; from then on a subscription
    // follows the gateway (here a look is asked for; with spec.channels the write asks).
    stack.reconcile_now("dmpair").await;
    stack
        .wait_for("dmpair", "telegram using DM pairing", STEP, |b| {
            b["status"]["pairing"]["channelAccounts"] == json!(["telegram:default"])
        })
        .await;
    eventually(STEP, "a pairing subscription", || async {
        (stack.metric("openclaws_pairing_subscriptions", "").await == 1.0).then_some(())
    })
    .await;

    // 1. A stranger's first DM: the code at the fake Telegram, the request in status.
    let fly_before = fly_calls(&stack).await;
    let first_dm = Instant::now();
    fake.send_text(STRANGER, "Stranger Danger", "hi, who are you?");
    let reply = fake
        .wait_for_message(STRANGER, |m| pairing_code(m).is_some(), STEP)
        .await
        .unwrap();
    let code_sent = first_dm.elapsed();
    let pairing = pairing_code(&reply).unwrap();
    assert!(reply.text.contains(&STRANGER.to_string()), "{}", reply.text);
    let shown = stack
        .wait_for("dmpair", "the DM request in status", STEP, |b| {
            channel_pending(b, STRANGER).is_some()
        })
        .await;
    let code_in_status = first_dm.elapsed();
    let request = channel_pending(&shown, STRANGER).unwrap();
    eprintln!(
        "e2e_dm_pairing: first DM -> code sent {code_sent:?}, -> request in status {code_in_status:?} (code {pairing})"
    );
    assert_eq!(request["channel"], "telegram", "{request}");
    assert_eq!(request["accountId"], "default", "{request}");
    assert_eq!(request["senderName"], "Stranger Danger", "{request}");
    assert!(request["expiresAt"].is_string(), "{request}");
    let fly_after = fly_calls(&stack).await;
    // No reconcile is needed to show it; but on a loaded machine (other suites' gateways) the
    // instance's own periodic look may fall in this window: one GET of each kind, never more.
    let changed: Vec<_> = fly_after
        .iter()
        .filter(|(k, v)| {
            **v > fly_before.get(*k).copied().unwrap_or(0) + 1 || !k.starts_with("GET ")
        })
        .filter(|(k, v)| fly_before.get(*k) != Some(*v))
        .collect();
    assert!(
        changed.is_empty(),
        "showing a DM request called Fly beyond one look: {changed:?} (before {fly_before:?})"
    );
    assert!(
        !serde_json::to_string(&shown).unwrap().contains(&pairing),
        "OpenClaw does not reveal the code over its protocol"
    );
    let request_id = request["requestId"].as_str().unwrap().to_owned();

    // 2. Specific answers.
    let discord = "channels/discord/pairing/approvals";
    let (code, answer) = decide(&stack, "dmpair", discord, json!({"requestId": request_id})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["error"]["reason"], "ChannelNotConfigured",
        "{answer}"
    );
    let (code, answer) = decide(
        &stack,
        "dmpair",
        approvals,
        json!({"requestId": "NoSuchRequest"}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["reason"], "RequestNotFound", "{answer}");
    let (code, answer) = decide(&stack, "dmpair", approvals, json!({"code": pairing})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (code, answer) = decide(
        &stack,
        "dmpair",
        "channels/Tele gram/pairing/approvals",
        json!({"requestId": "x"}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    // 3. The dashboard approves; the stranger's next message reaches the agent, which answers
    // as the customer's OpenClaws agent.
    let approved_at = Instant::now();
    let body = json!({"requestId": request_id, "notify": true});
    let (code, answer) = decide(&stack, "dmpair", approvals, body).await;
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
    let to_reply = approved_at.elapsed();
    eprintln!(
        "e2e_dm_pairing: approval call {approve_call:?}; approval -> reply at Telegram {to_reply:?} (message -> reply {:?})",
        answered.at.duration_since(asked)
    );
    assert!(
        asked_model.system.contains("Clawdia"),
        "{}",
        asked_model.system
    );
    assert!(
        asked_model.system.contains("OpenClaws"),
        "{}",
        asked_model.system
    );
    stack
        .wait_for("dmpair", "the request gone from status", STEP, |b| {
            channel_pending(b, STRANGER).is_none()
        })
        .await;

    // 4. Another stranger is dismissed: gone from status, never answered by the agent.
    fake.send_text(SECOND_STRANGER, "Second", "let me in");
    let shown = stack
        .wait_for("dmpair", "the second request", STEP, |b| {
            channel_pending(b, SECOND_STRANGER).is_some()
        })
        .await;
    let second = channel_pending(&shown, SECOND_STRANGER).unwrap();
    let dismissals = "channels/telegram/pairing/dismissals";
    let body = json!({"requestId": second["requestId"]});
    let (code, answer) = decide(&stack, "dmpair", dismissals, body.clone()).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"]["result"], "Dismissed", "{answer}");
    let (code, answer) = decide(&stack, "dmpair", dismissals, body).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["reason"], "RequestNotFound", "{answer}");
    let model_calls = model.requests().len();
    assert!(
        model.requests()[..model_calls]
            .iter()
            .all(|r| !said(r, "let me in")),
        "a stranger's message reached the agent"
    );

    assert_eq!(stack.delete("dmpair").await, StatusCode::ACCEPTED);
}
