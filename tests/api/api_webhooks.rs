//! `/v1/webhooks` over a fresh database: validation at the edge (URL, event types, label
//! selector, unknown fields) with structured errors that never echo the value, the signing
//! secret shown once and sealed at rest, the reader's limits, and 404s.

use openclaws_testkit::api::{spawn_api, TestApi, READER, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn create(api: &TestApi, body: &Value) -> openclaws_testkit::api::Reply {
    api.write(Method::POST, "/v1/webhooks", body).await
}

fn valid() -> Value {
    json!({"url": "https://hooks.example.com/openclaws", "eventTypes": ["instance.phase_changed"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_registrations_are_refused_field_by_field() {
    let api = spawn_api().await;
    let cases = [
        (
            json!({"url": "ftp://hooks.example.com/x", "eventTypes": ["instance.created"]}),
            "url",
        ),
        (
            json!({"url": "https://user:SECRET-PW@hooks.example.com/", "eventTypes": ["instance.created"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "eventTypes": ["instance.created"]}),
            "url",
        ),
        (json!({"url": 7, "eventTypes": ["instance.created"]}), "url"),
        (
            json!({"url": format!("https://e.com/{}", "a".repeat(2100)), "eventTypes": ["instance.created"]}),
            "url",
        ),
        (
            json!({"url": "https://e.com/", "eventTypes": ["instance.created", "instance.exploded"]}),
            "eventTypes[1]",
        ),
        (
            json!({"url": "https://e.com/", "eventTypes": []}),
            "eventTypes",
        ),
        (json!({"url": "https://e.com/"}), "eventTypes"),
        (
            json!({"url": "https://e.com/", "eventTypes": ["instance.created"], "labelSelector": "tier in (pro"}),
            "labelSelector",
        ),
        (
            json!({"url": "https://e.com/", "eventTypes": ["instance.created"], "secret": "mine"}),
            "secret",
        ),
        (
            json!({"url": "https://e.com/", "eventTypes": ["instance.created"], "description": "a\u{0007}b"}),
            "description",
        ),
    ];
    for (body, path) in cases {
        let reply = create(&api, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], "invalid", "{}", reply.text);
        assert_eq!(reply.field_paths(), [path], "{}", reply.text);
        assert!(
            !reply.text.contains("SECRET-PW") && !reply.text.contains("exploded"),
            "{}",
            reply.text
        );
    }
    let selector = create(&api, &json!({"url": "https://e.com/", "eventTypes": ["instance.created"], "labelSelector": "tier in (pro"})).await;
    let message = selector.json["error"]["fields"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("offset"),
        "the selector error says where: {message}"
    );

    let malformed = api
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(WRITER),
            Some(("application/json", b"{".to_vec())),
            &[],
        )
        .await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.text
    );
    let text = api
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(WRITER),
            Some(("text/plain", b"{}".to_vec())),
            &[],
        )
        .await;
    assert_eq!(
        text.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        text.text
    );
    assert!(api.get("/v1/webhooks").await.json["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_is_shown_once_and_sealed_at_rest() {
    let api = spawn_api().await;
    let mut body = valid();
    body["labelSelector"] = json!("tier in (pro, team)");
    body["eventTypes"] = json!(["instance.deleted", "instance.created", "instance.deleted"]);
    let reply = create(&api, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let secret = reply.json["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 30,
        "{secret}"
    );
    let id = reply.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.headers["location"],
        format!("/v1/webhooks/{id}").as_str()
    );
    assert_eq!(
        reply.json["eventTypes"],
        json!(["instance.created", "instance.deleted"])
    );

    for path in [
        format!("/v1/webhooks/{id}"),
        "/v1/webhooks".to_owned(),
        format!("/v1/webhooks/{id}/deliveries"),
    ] {
        let read = api.send(Method::GET, &path, Some(READER), None, &[]).await;
        assert_eq!(read.status, StatusCode::OK, "{path}: {}", read.text);
        assert!(
            !read.text.contains(&secret) && !read.text.contains("secret"),
            "{path}: {}",
            read.text
        );
    }
    let listed = api.get("/v1/webhooks").await.json;
    assert_eq!(listed["items"][0]["labelSelector"], "tier in (pro, team)");
    assert_eq!(listed["items"][0]["pending"], 0);

    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_ciphertext FROM webhooks")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    let encoded = secret.trim_start_matches("whsec_");
    let raw = String::from_utf8_lossy(&sealed);
    assert!(
        !raw.contains(encoded) && !raw.contains(&secret),
        "the secret is encrypted at rest"
    );

    let second = create(&api, &valid()).await;
    assert_ne!(
        second.json["secret"], reply.json["secret"],
        "each webhook has its own secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_cannot_register_or_delete_and_unknown_ids_are_404() {
    let api = spawn_api().await;
    let bytes = serde_json::to_vec(&valid()).unwrap();
    let reader = api
        .send(
            Method::POST,
            "/v1/webhooks",
            Some(READER),
            Some(("application/json", bytes)),
            &[],
        )
        .await;
    assert_eq!(reader.status, StatusCode::FORBIDDEN, "{}", reader.text);
    let id = create(&api, &valid()).await.json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/webhooks/{id}");
    let reader_delete = api
        .send(Method::DELETE, &path, Some(READER), None, &[])
        .await;
    assert_eq!(reader_delete.status, StatusCode::FORBIDDEN);
    let unknown = format!("/v1/webhooks/{}", uuid::Uuid::new_v4());
    assert_eq!(api.get(&unknown).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.get(&format!("{unknown}/deliveries")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/v1/webhooks/not-a-uuid").await.status,
        StatusCode::BAD_REQUEST
    );
    let retry = format!("{path}/deliveries/{}/retry", uuid::Uuid::new_v4());
    let reader_retry = api
        .send(Method::POST, &retry, Some(READER), None, &[])
        .await;
    assert_eq!(reader_retry.status, StatusCode::FORBIDDEN);
    let unknown_retry = api
        .send(Method::POST, &retry, Some(WRITER), None, &[])
        .await;
    assert_eq!(
        unknown_retry.status,
        StatusCode::NOT_FOUND,
        "{}",
        unknown_retry.text
    );
    let gone = api
        .send(Method::DELETE, &path, Some(WRITER), None, &[])
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = api
        .send(Method::DELETE, &path, Some(WRITER), None, &[])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get(&path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_webhooks_with_pending_and_failed_counts() {
    let api = spawn_api().await;
    let body = json!({"url": "https://hooks.example.com/private-path-token", "eventTypes": ["instance.created"], "description": "dashboard"});
    let created = create(&api, &body).await;
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    for name in ["one", "two"] {
        let reply = api.put(name, &openclaws_testkit::api::minimal("c")).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    }
    sqlx::query("UPDATE webhook_deliveries SET state = 'failed' WHERE instance_name = 'one'")
        .execute(&api.pool)
        .await
        .unwrap();
    let listed = api
        .get(&format!(
            "/v1/webhooks/{}",
            created.json["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (
            listed.json["pending"].as_i64(),
            listed.json["failed"].as_i64()
        ),
        (Some(1), Some(1))
    );

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{}/support/login", api.base))
        .form(&[("token", READER)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = client
        .get(format!("{}/support/webhooks", api.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("https://hooks.example.com") && html.contains("dashboard"),
        "{html}"
    );
    assert!(html.contains(r#"<td class="pending">1</td>"#), "{html}");
    assert!(
        html.contains(r#"<span class="badge bad">1</span>"#),
        "{html}"
    );
    assert!(
        !html.contains("private-path-token") && !html.contains(&secret),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_in_the_openapi_document_with_every_status() {
    let api = spawn_api().await;
    let doc = api
        .send(Method::GET, "/openapi.json", None, None, &[])
        .await
        .json;
    let paths = &doc["paths"];
    let expected: [(&str, &str, &[&str]); 6] = [
        (
            "/v1/webhooks/{id}/deliveries/{delivery}/retry",
            "post",
            &["202", "400", "401", "403", "404", "409"],
        ),
        (
            "/v1/webhooks",
            "post",
            &[
                "201", "400", "401", "403", "409", "413", "415", "422", "429", "503",
            ],
        ),
        ("/v1/webhooks", "get", &["200", "401", "429", "503"]),
        ("/v1/webhooks/{id}", "get", &["200", "400", "401", "404"]),
        (
            "/v1/webhooks/{id}",
            "delete",
            &["204", "400", "401", "403", "404"],
        ),
        (
            "/v1/webhooks/{id}/deliveries",
            "get",
            &["200", "400", "401", "404"],
        ),
    ];
    for (path, method, statuses) in expected {
        let responses = &paths[path][method]["responses"];
        for status in statuses {
            assert!(
                responses[status].is_object(),
                "{method} {path}: {status} undocumented"
            );
        }
    }
    let kinds = &doc["components"]["schemas"]["WebhookEventType"]["enum"];
    assert_eq!(kinds.as_array().map(Vec::len), Some(5), "{kinds}");
}
