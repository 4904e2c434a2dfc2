//! Provider keys are write-only: a canary value must never come back out of any endpoint, event,
//! the `instances` table or the log, while `secrets` decrypts back to it.

use openclaws_model::secrets::Sealed;
use openclaws_store::secrets as secret_store;
use openclaws_testkit::api::{spawn_api, TestApi, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use uuid::Uuid;

/// Everything logged by this test binary.
static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .init();
        buffer
    })
    .clone()
}

fn spec(keys: Value) -> Value {
    json!({"spec": {"customerId": "cust-secret", "region": "iad", "providerKeys": keys}})
}

async fn uid_of(api: &TestApi, name: &str) -> Uuid {
    sqlx::query_scalar("SELECT uid FROM instances WHERE name = $1")
        .bind(name)
        .fetch_one(&api.pool)
        .await
        .unwrap()
}

async fn plaintext(api: &TestApi, uid: Uuid, name: &str) -> Option<String> {
    secret_store::get_plaintext(&api.pool, &api.cipher, uid, name)
        .await
        .unwrap()
}

#[tokio::test]
async fn provider_keys_never_leak() {
    let log = capture_logs();
    let api = spawn_api().await;
    let canary = format!("sk-ant-CANARY-{}", Uuid::new_v4());
    let canary_b = format!("sk-ant-CANARY-{}", Uuid::new_v4());
    let oauth = format!("sk-ant-oat-CANARY-{}", Uuid::new_v4());
    let openai = format!("sk-CANARY-{}", Uuid::new_v4());
    let all = [&canary, &canary_b, &oauth, &openai];
    let mut bodies: Vec<String> = Vec::new();
    let mut record = |label: &str, text: &str| bodies.push(format!("{label}: {text}"));

    // Create with a key.
    let created = api
        .put("secretive", &spec(json!({"anthropicApiKey": canary})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    record("create", &created.text);
    let shown = &created.json["spec"]["providerKeys"]["anthropicApiKey"];
    assert_eq!(shown["set"], true);
    let fingerprint = shown["fingerprint"].as_str().unwrap().to_owned();
    assert!(fingerprint.starts_with("hmac-sha256:"));
    assert!(shown["updatedAt"].is_string());
    let uid = uid_of(&api, "secretive").await;
    assert_eq!(
        plaintext(&api, uid, "ANTHROPIC_API_KEY").await.as_deref(),
        Some(canary.as_str())
    );

    // The ciphertext opens with the documented context.
    let (nonce, ciphertext): (Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT nonce, ciphertext FROM secrets WHERE instance_uid = $1 AND name = 'ANTHROPIC_API_KEY'",
    )
    .bind(uid)
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&ciphertext).contains(&canary));
    let opened = api
        .cipher
        .open(
            &format!("{uid}/ANTHROPIC_API_KEY"),
            &Sealed { nonce, ciphertext },
        )
        .unwrap();
    assert_eq!(opened, canary.as_bytes());

    // Sending the same value again changes nothing; the read shape keeps it.
    let same = api
        .put("secretive", &spec(json!({"anthropicApiKey": canary})))
        .await;
    record("same", &same.text);
    assert_eq!(same.json["metadata"]["generation"], 1);
    let keep = api
        .put(
            "secretive",
            &spec(json!({"anthropicApiKey": shown.clone()})),
        )
        .await;
    record("keep", &keep.text);
    assert_eq!(keep.status, StatusCode::OK, "{}", keep.text);
    assert_eq!(keep.json["metadata"]["generation"], 1);
    let keep_min = api
        .put(
            "secretive",
            &spec(json!({"anthropicApiKey": {"set": true}})),
        )
        .await;
    assert_eq!(keep_min.json["metadata"]["generation"], 1);
    assert_eq!(
        keep_min.json["spec"]["providerKeys"]["anthropicApiKey"]["fingerprint"],
        fingerprint.as_str()
    );

    // Rejected writes carrying secrets never echo them.
    let rejected = [
        spec(json!({"anthropicApiKey": format!("{canary} with spaces")})),
        spec(json!({"openaiApiKey": openai, "bogusKey": canary})),
        json!({"spec": {"customerId": "cust-secret", "region": "NOPE",
            "providerKeys": {"openaiApiKey": openai}}, "extra": canary}),
        json!({"spec": {"customerId": canary, "region": "iad"}}),
        spec(json!({"anthropicOauthToken": [oauth]})),
        json!({"metadata": {"resourceVersion": "999"}, "spec": {"customerId": "cust-secret",
            "region": "iad", "providerKeys": {"openaiApiKey": openai}}}),
    ];
    for body in &rejected {
        let reply = api.put("secretive", body).await;
        assert!(reply.status.is_client_error(), "{}", reply.text);
        record("rejected", &reply.text);
    }
    let malformed = api
        .send(
            Method::PUT,
            "/v1/instances/secretive",
            Some(WRITER),
            Some((
                "application/json",
                format!("{{\"spec\": {{\"providerKeys\": {{\"openaiApiKey\": \"{openai}\"")
                    .into_bytes(),
            )),
            &[],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    record("malformed", &malformed.text);
    let wrong_type = api
        .send(
            Method::PUT,
            "/v1/instances/secretive",
            Some(WRITER),
            Some(("text/plain", openai.clone().into_bytes())),
            &[],
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    record("wrong type", &wrong_type.text);
    assert_eq!(plaintext(&api, uid, "OPENAI_API_KEY").await, None);

    // Merge patch sets, replaces and removes keys.
    let patched = api
        .patch(
            "secretive",
            &json!({"spec": {"providerKeys": {"openaiApiKey": openai, "anthropicOauthToken": oauth}}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    record("patch set", &patched.text);
    assert_eq!(
        patched.json["spec"]["providerKeys"]["openaiApiKey"]["set"],
        true
    );
    assert_eq!(
        plaintext(&api, uid, "OPENAI_API_KEY").await.as_deref(),
        Some(openai.as_str())
    );
    assert_eq!(
        plaintext(&api, uid, "ANTHROPIC_OAUTH_TOKEN")
            .await
            .as_deref(),
        Some(oauth.as_str())
    );
    let replaced = api
        .patch(
            "secretive",
            &json!({"spec": {"providerKeys": {"anthropicApiKey": canary_b}}}),
        )
        .await;
    record("patch replace", &replaced.text);
    assert_ne!(
        replaced.json["spec"]["providerKeys"]["anthropicApiKey"]["fingerprint"],
        fingerprint.as_str()
    );
    assert_eq!(
        plaintext(&api, uid, "ANTHROPIC_API_KEY").await.as_deref(),
        Some(canary_b.as_str())
    );
    let removed = api
        .patch(
            "secretive",
            &json!({"spec": {"providerKeys": {"openaiApiKey": null}}}),
        )
        .await;
    record("patch remove", &removed.text);
    assert!(removed.json["spec"]["providerKeys"]
        .get("openaiApiKey")
        .is_none());
    assert_eq!(plaintext(&api, uid, "OPENAI_API_KEY").await, None);

    // Every read endpoint, and every watch: the whole change history since the create, the
    // current list, and the events.
    let first: i64 = created.json["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let history = format!(
        "/v1/instances?watch=true&timeoutSeconds=1&resourceVersion={}",
        first - 1
    );
    for path in [
        "/v1/instances/secretive",
        "/v1/instances",
        "/v1/instances/secretive/events",
        "/openapi.json",
        "/metrics",
        &history,
        "/v1/instances?watch=true&timeoutSeconds=1",
        "/v1/instances/secretive/events?watch=true&timeoutSeconds=1",
    ] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        record(path, &reply.text);
    }
    let reconcile = api
        .send(
            Method::POST,
            "/v1/instances/secretive/reconcile",
            Some(WRITER),
            None,
            &[],
        )
        .await;
    record("reconcile", &reconcile.text);

    // PUT without keys removes them all.
    let cleared = api
        .put(
            "secretive",
            &json!({"spec": {"customerId": "cust-secret", "region": "iad"}}),
        )
        .await;
    record("clear", &cleared.text);
    assert_eq!(cleared.json["spec"]["providerKeys"], json!({}));
    assert_eq!(plaintext(&api, uid, "ANTHROPIC_API_KEY").await, None);
    let deleted = api.delete("secretive").await;
    record("delete", &deleted.text);

    let instances_text: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(i)::text FROM instances i")
            .fetch_all(&api.pool)
            .await
            .unwrap();
    let events_text: Vec<String> = sqlx::query_scalar("SELECT row_to_json(e)::text FROM events e")
        .fetch_all(&api.pool)
        .await
        .unwrap();
    let work_text: Vec<String> = sqlx::query_scalar("SELECT row_to_json(w)::text FROM work w")
        .fetch_all(&api.pool)
        .await
        .unwrap();
    let changes_text: Vec<String> =
        sqlx::query_scalar("SELECT row_to_json(c)::text FROM instance_changes c")
            .fetch_all(&api.pool)
            .await
            .unwrap();
    assert!(
        bodies.iter().any(|b| b.contains("\"MODIFIED\"")),
        "the history watch sent no change"
    );
    let log_text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        log_text.contains("secretive"),
        "the log capture saw no request at all"
    );
    for secret in all {
        for body in &bodies {
            assert!(
                !body.contains(secret.as_str()),
                "secret leaked in response {body}"
            );
        }
        for text in instances_text
            .iter()
            .chain(&events_text)
            .chain(&work_text)
            .chain(&changes_text)
        {
            assert!(
                !text.contains(secret.as_str()),
                "secret leaked in the database: {text}"
            );
        }
        assert!(
            !log_text.contains(secret.as_str()),
            "secret leaked in the log"
        );
    }
}
