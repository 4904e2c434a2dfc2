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
    let spec = json!({"spec": {"customerId": "c", "region": "iad", "runState": "stopped"}});
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

    let auto =
        json!({"spec": {"customerId": "c", "region": "iad", "pairing": {"channels": "auto"}}});
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

    let plain = json!({"spec": {"customerId": "c", "region": "iad"}});
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
