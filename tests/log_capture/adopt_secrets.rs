//! An adopted gateway token (`docs/adoption.md`) is write-only: through the adoption, the
//! reconcile that takes the app over and the import's listing, a canary value never reaches the
//! log, an answer, an event or the instance's row, while the app secret and the `secrets` table
//! hold exactly it.

use openclaws_store::secrets as secret_store;
use openclaws_testkit::legacy::{self, LegacyOptions};
use openclaws_testkit::stack::{Stack, StackOptions, WRITER};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use super::api_secrets::capture_logs;

const CANARY: &str = "canary-adopted-token-c41e0b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_token_never_reaches_the_log_events_or_the_row() {
    let log = capture_logs();
    let stack = Stack::start(StackOptions::default()).await;
    let old = legacy::build(&stack, "canary", CANARY, &LegacyOptions::default()).await;
    let answer = stack
        .http
        .post(format!("{}/v1/instances/canary/adopt", stack.api_url))
        .bearer_auth(WRITER)
        .json(&json!({"app": old.app, "gatewayToken": CANARY,
            "spec": {"customerId": "c", "region": "iad"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert!(!answer.text().await.unwrap().contains(CANARY));
    stack.wait_ready("canary", Duration::from_secs(60)).await;

    let uid: Uuid = sqlx::query_scalar("SELECT uid FROM instances WHERE name = 'canary'")
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    let stored = secret_store::get_plaintext(
        &stack.db.pool,
        &stack.settings.secret_key.0,
        uid,
        "OPENCLAW_GATEWAY_TOKEN",
    )
    .await
    .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(CANARY),
        "stored encrypted, decrypts to it"
    );
    assert_eq!(
        legacy::secret_value(&stack, &old.app, "OPENCLAW_GATEWAY_TOKEN")
            .await
            .as_deref(),
        Some(CANARY)
    );
    let row: String =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM instances i WHERE uid = $1")
            .bind(uid)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert!(!row.contains(CANARY), "the instance row holds the token");
    let events: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(e)::text FROM events e WHERE instance_uid = $1")
            .bind(uid)
            .fetch_all(&stack.db.pool)
            .await
            .unwrap();
    assert!(events.len() > 1);
    assert!(
        events.iter().all(|e| !e.contains(CANARY)),
        "an event holds the token"
    );
    let (_, body) = stack.get("canary").await;
    assert!(!body.to_string().contains(CANARY));
    let sealed: Vec<u8> = sqlx::query_scalar(
        "SELECT ciphertext FROM secrets WHERE instance_uid = $1 AND name = 'OPENCLAW_GATEWAY_TOKEN'",
    )
    .bind(uid)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(CANARY));

    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        logged.contains("canary"),
        "the reconcile logged about the instance"
    );
    assert!(!logged.contains(CANARY), "the token reached the log");
}
