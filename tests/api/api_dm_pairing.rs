//! The DM pairing decision endpoints over a fresh database, no controller
//! (`docs/pairing.md`, "DM pairing"): validation with structured 422s, the specific refusals the
//! recorded status allows, the auto policy, and a decision recorded (202) while no gateway has
//! been seen, kept under its own field manager.

use openclaws_testkit::api::{spawn_api, TestApi, READER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn path(name: &str, channel: &str, what: &str) -> String {
    format!("/v1/instances/{name}/channels/{channel}/pairing/{what}")
}

async fn decide(
    api: &TestApi,
    name: &str,
    channel: &str,
    what: &str,
    body: Value,
) -> (StatusCode, Value) {
    let reply = api
        .write(Method::POST, &path(name, channel, what), &body)
        .await;
    (reply.status, reply.json)
}

fn field_paths(body: &Value) -> Vec<&str> {
    let fields = body["error"]["fields"].as_array();
    fields
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .collect()
}

#[tokio::test]
async fn bad_input_gets_a_structured_422_and_a_missing_instance_a_404() {
    let api = spawn_api().await;
    let created = api
        .put(
            "dmapi",
            &json!({"spec": {"customerId": "c", "region": "iad"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let cases = [
        (
            "Telegram",
            "approvals",
            json!({"requestId": "r1"}),
            "channel",
        ),
        (
            "tele_gram",
            "approvals",
            json!({"requestId": "r1"}),
            "channel",
        ),
        ("telegram", "approvals", json!({}), "requestId"),
        (
            "telegram",
            "approvals",
            json!({"requestId": "has space"}),
            "requestId",
        ),
        (
            "telegram",
            "approvals",
            json!({"requestId": "r1", "notify": "yes"}),
            "notify",
        ),
        (
            "telegram",
            "dismissals",
            json!({"requestId": "r1", "notify": true}),
            "notify",
        ),
        ("telegram", "approvals", json!({"code": "ABCD2345"}), "code"),
        (
            "telegram",
            "approvals",
            json!({"requestId": "r1", "other": 1}),
            "other",
        ),
    ];
    for (channel, what, body, field) in cases {
        let (code, answer) = decide(&api, "dmapi", channel, what, body.clone()).await;
        assert_eq!(
            code,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{channel} {body}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "invalid", "{answer}");
        assert_eq!(field_paths(&answer), [field], "{channel} {body}: {answer}");
    }
    let (code, answer) = decide(
        &api,
        "nosuch",
        "telegram",
        "approvals",
        json!({"requestId": "r1"}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    let reply = api
        .send(
            Method::POST,
            &path("dmapi", "telegram", "approvals"),
            Some(READER),
            Some(("application/json", b"{\"requestId\":\"r1\"}".to_vec())),
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
    let direct = json!({"spec": {"pairing": {"channelDecisions": [
        {"id": "d1", "channel": "Bad", "requestId": "r 1", "decision": "approve"}
    ]}}});
    let patched = api.patch("dmapi", &direct).await;
    assert_eq!(
        patched.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        patched.text
    );
    assert_eq!(
        field_paths(&patched.json),
        [
            "spec.pairing.channelDecisions[0].channel",
            "spec.pairing.channelDecisions[0].requestId"
        ],
        "{}",
        patched.text
    );
}

#[tokio::test]
async fn refusals_follow_the_spec_and_a_decision_waits_while_no_gateway_was_seen() {
    let api = spawn_api().await;
    let telegram = json!({"telegram": {"botToken": "123456:telegram-bot-token"}});
    let spec = json!({"spec": {"customerId": "c", "region": "iad", "runState": "stopped",
        "channels": telegram}});
    assert_eq!(api.put("dmstop", &spec).await.status, StatusCode::CREATED);
    let (code, answer) = decide(
        &api,
        "dmstop",
        "telegram",
        "approvals",
        json!({"requestId": "r1"}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["reason"], "MachineStopped", "{answer}");

    let auto = json!({"spec": {"customerId": "c", "region": "iad", "channels": telegram,
        "pairing": {"channels": "auto"}}});
    assert_eq!(api.put("dmauto", &auto).await.status, StatusCode::CREATED);
    let (code, answer) = decide(
        &api,
        "dmauto",
        "telegram",
        "approvals",
        json!({"requestId": "r1"}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["reason"], "PolicyAuto", "{answer}");

    let plain = json!({"spec": {"customerId": "c", "region": "iad", "channels": {
        "telegram": {"botToken": "123456:telegram-bot-token"},
        "slack": {"botToken": "xoxb-slack-bot", "appToken": "xapp-slack-app"}}}});
    let created = api.put("dmwait", &plain).await;
    assert_eq!(
        created.json["spec"]["pairing"]["channels"], "manual",
        "{}",
        created.text
    );
    let body = json!({"requestId": "AbC-123_x", "notify": true});
    let (code, answer) = decide(&api, "dmwait", "telegram", "approvals", body).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{answer}");
    let decision = &answer["decision"];
    assert_eq!(decision["channel"], "telegram", "{answer}");
    assert_eq!(decision["requestId"], "AbC-123_x", "{answer}");
    assert_eq!(decision["decision"], "approve", "{answer}");
    assert_eq!(decision["notify"], true, "{answer}");
    let (code, answer) = decide(
        &api,
        "dmwait",
        "slack",
        "dismissals",
        json!({"requestId": "r2"}),
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{answer}");
    let decisions = answer["instance"]["spec"]["pairing"]["channelDecisions"]
        .as_array()
        .unwrap();
    assert_eq!(decisions.len(), 2, "{answer}");
    let managers = answer["instance"]["metadata"]["managedFields"]
        .as_array()
        .unwrap();
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == "channel-pairing-decisions"),
        "{answer}"
    );
}

/// Writes the status a controller records for a running gateway whose pairing subscription
/// saw `accounts` using DM pairing and `pending` DM requests (as `channel:requestId`).
async fn gateway_seen(api: &TestApi, name: &str, accounts: &[&str], pending: &[&str]) {
    let now = chrono::Utc::now();
    let pending: Vec<Value> = pending
        .iter()
        .map(|p| {
            let (channel, id) = p.split_once(':').unwrap();
            json!({"requestId": id, "channel": channel, "accountId": "default", "senderId": "42",
                   "requestedAt": now, "ageSeconds": 1, "expiresAt": now + chrono::Duration::hours(1)})
        })
        .collect();
    let status = json!({"phase": "Ready", "observedGeneration": 1, "pairing": {
        "pendingCount": 0, "controllerPaired": true, "observedAt": now,
        "channelAccounts": accounts, "channelPending": pending}});
    let written = sqlx::query("UPDATE instances SET status = $1, phase = 'Ready' WHERE name = $2")
        .bind(status)
        .bind(name)
        .execute(&api.pool)
        .await
        .unwrap();
    assert_eq!(written.rows_affected(), 1);
}

#[tokio::test]
async fn channel_not_configured_is_judged_from_the_spec_and_not_ready_from_the_gateway() {
    let api = spawn_api().await;
    let base = json!({"customerId": "c", "region": "iad"});
    let with = |channels: Value| {
        let mut spec = base.clone();
        spec["channels"] = channels;
        json!({"spec": spec})
    };
    let token = "123456:telegram-bot-token";
    let cases = [
        ("dmnone", json!({})),
        (
            "dmallow",
            json!({"telegram": {"botToken": token, "dmPolicy": "allowlist", "allowFrom": ["42"]}}),
        ),
        (
            "dmoff",
            json!({"telegram": {"botToken": token, "enabled": false}}),
        ),
        (
            "dmdisabled",
            json!({"telegram": {"botToken": token, "dmPolicy": "disabled"}}),
        ),
    ];
    for (name, channels) in cases {
        let created = api.put(name, &with(channels)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        // The gateway still reports the channel using DM pairing (its report lags the spec).
        gateway_seen(&api, name, &["telegram:default"], &["telegram:r1"]).await;
        for what in ["approvals", "dismissals"] {
            let (code, answer) =
                decide(&api, name, "telegram", what, json!({"requestId": "r1"})).await;
            assert_eq!(code, StatusCode::CONFLICT, "{name} {what}: {answer}");
            assert_eq!(
                answer["error"]["reason"], "ChannelNotConfigured",
                "{name}: {answer}"
            );
            assert!(answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("spec.channels.telegram"));
        }
    }

    let wanted = with(json!({"telegram": {"botToken": token}}));
    assert_eq!(api.put("dmnew", &wanted).await.status, StatusCode::CREATED);
    // Configured in the spec, not on the gateway yet: a distinct, retryable answer.
    gateway_seen(&api, "dmnew", &[], &[]).await;
    let (code, answer) = decide(
        &api,
        "dmnew",
        "telegram",
        "approvals",
        json!({"requestId": "r1"}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["reason"], "ChannelNotReady", "{answer}");
    // On the gateway, but not that request.
    gateway_seen(&api, "dmnew", &["telegram:default"], &["telegram:r2"]).await;
    let (code, answer) = decide(
        &api,
        "dmnew",
        "telegram",
        "dismissals",
        json!({"requestId": "r1"}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["reason"], "RequestNotFound", "{answer}");
    // A channel the spec cannot name (set up in the Control UI) is judged by the gateway.
    let (code, answer) = decide(
        &api,
        "dmnew",
        "matrix",
        "approvals",
        json!({"requestId": "r1"}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{answer}");
    assert_eq!(
        answer["error"]["reason"], "ChannelNotConfigured",
        "{answer}"
    );
    gateway_seen(&api, "dmnew", &["matrix:default"], &["matrix:m1"]).await;
    let (code, answer) = decide(
        &api,
        "dmnew",
        "matrix",
        "dismissals",
        json!({"requestId": "m2"}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["reason"], "RequestNotFound", "{answer}");
    let specs = api.get("/v1/instances/dmnew").await.json;
    assert!(
        specs["spec"]["pairing"].get("channelDecisions").is_none()
            || specs["spec"]["pairing"]["channelDecisions"] == json!([]),
        "a refusal records nothing: {specs}"
    );
}
