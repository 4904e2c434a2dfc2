//! Channel credentials (`spec.channels.*.botToken`, `token`, `appToken`) are write-only like
//! provider keys: a canary never comes back out of any endpoint, event, the `instances` table or
//! the log, while `secrets` decrypts back to it; removing a channel deletes its credentials.

use openclaws_store::secrets as secret_store;
use openclaws_testkit::api::{spawn_api, TestApi};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api_secrets::capture_logs;

fn spec(channels: Value) -> Value {
    json!({"spec": {"customerId": "cust-channels", "region": "iad", "channels": channels}})
}

async fn plaintext(api: &TestApi, name: &str) -> Option<String> {
    let uid: Uuid = sqlx::query_scalar("SELECT uid FROM instances WHERE name = 'chatty'")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    secret_store::get_plaintext(&api.pool, &api.cipher, uid, name)
        .await
        .unwrap()
}

#[tokio::test]
async fn channel_credentials_never_leak() {
    let log = capture_logs();
    let api = spawn_api().await;
    let telegram = format!("123456789:CANARY{}", Uuid::new_v4().simple());
    let rotated = format!("123456789:CANARY{}", Uuid::new_v4().simple());
    let bot = format!("xoxb-CANARY-{}", Uuid::new_v4());
    let app = format!("xapp-CANARY-{}", Uuid::new_v4());
    let all = [&telegram, &rotated, &bot, &app];
    let mut bodies: Vec<String> = Vec::new();

    let created = api
        .put(
            "chatty",
            &spec(json!({
                "telegram": {"botToken": telegram, "dmPolicy": "allowlist", "allowFrom": ["42"]},
                "slack": {"botToken": bot, "appToken": app},
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    bodies.push(created.text.clone());
    let shown = created.json["spec"]["channels"]["telegram"].clone();
    assert_eq!(shown["botToken"]["set"], true);
    assert!(shown["botToken"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["allowFrom"], json!(["42"]));
    assert_eq!(
        created.json["spec"]["channels"]["slack"]["dmPolicy"],
        "pairing"
    );
    assert_eq!(
        plaintext(&api, "TELEGRAM_BOT_TOKEN").await.as_deref(),
        Some(telegram.as_str())
    );
    assert_eq!(
        plaintext(&api, "SLACK_APP_TOKEN").await.as_deref(),
        Some(app.as_str())
    );

    // The read shape sent back keeps the value; a patch of another field keeps it too.
    let kept = api
        .patch(
            "chatty",
            &json!({"spec": {"channels": {"telegram": {"dmPolicy": "pairing", "allowFrom": null}}}}),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text);
    bodies.push(kept.text.clone());
    assert_eq!(
        kept.json["spec"]["channels"]["telegram"]["botToken"]["fingerprint"],
        shown["botToken"]["fingerprint"]
    );
    let same = api.get("/v1/instances/chatty").await;
    let mut body = json!({"spec": same.json["spec"].clone()});
    let put_back = api.put("chatty", &body).await;
    assert_eq!(put_back.status, StatusCode::OK, "{}", put_back.text);
    assert_eq!(
        put_back.json["metadata"]["generation"],
        kept.json["metadata"]["generation"]
    );

    // Rotation: a new value, a new fingerprint, the new plaintext stored.
    body["spec"]["channels"]["telegram"]["botToken"] = json!(rotated);
    let rotation = api.put("chatty", &body).await;
    assert_eq!(rotation.status, StatusCode::OK, "{}", rotation.text);
    bodies.push(rotation.text.clone());
    assert_ne!(
        rotation.json["spec"]["channels"]["telegram"]["botToken"]["fingerprint"],
        shown["botToken"]["fingerprint"]
    );
    assert_eq!(
        plaintext(&api, "TELEGRAM_BOT_TOKEN").await.as_deref(),
        Some(rotated.as_str())
    );

    // Rejected writes carrying a credential never echo it.
    for rejected in [
        spec(json!({"telegram": {"botToken": format!("{telegram} x")}})),
        spec(json!({"telegram": {"botToken": telegram, "bogus": telegram}})),
        spec(json!({"telegram": {"botToken": telegram, "dmPolicy": "allowlist"}})),
        spec(json!({"slack": {"botToken": bot}})),
    ] {
        let reply = api.put("chatty", &rejected).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert!(reply.json["error"]["fields"].is_array(), "{}", reply.text);
        bodies.push(reply.text);
    }

    // Removing a channel deletes its credentials.
    let removed = api
        .patch("chatty", &json!({"spec": {"channels": {"slack": null}}}))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    bodies.push(removed.text.clone());
    assert!(removed.json["spec"]["channels"].get("slack").is_none());
    assert_eq!(plaintext(&api, "SLACK_BOT_TOKEN").await, None);
    assert_eq!(plaintext(&api, "SLACK_APP_TOKEN").await, None);
    assert!(plaintext(&api, "TELEGRAM_BOT_TOKEN").await.is_some());

    for path in [
        "/v1/instances/chatty",
        "/v1/instances",
        "/v1/instances/chatty/events",
        "/metrics",
        "/v1/instances?watch=true&timeoutSeconds=1&resourceVersion=0",
    ] {
        let reply = api.get(path).await;
        bodies.push(reply.text);
    }
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(i)::text FROM instances i UNION ALL \
         SELECT row_to_json(e)::text FROM events e UNION ALL \
         SELECT row_to_json(c)::text FROM instance_changes c",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap();
    let log_text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(log_text.contains("chatty"), "the log capture saw nothing");
    for secret in all {
        for text in bodies.iter().chain(&rows) {
            assert!(!text.contains(secret.as_str()), "credential leaked: {text}");
        }
        assert!(
            !log_text.contains(secret.as_str()),
            "credential leaked in the log"
        );
    }
}
