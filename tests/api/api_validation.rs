//! Black-box tests of input validation, the error shape, authentication and the open endpoints.

use openclaws_api::edge::EdgeSettings;
use openclaws_testkit::api::{minimal, spawn_api, spawn_api_with, test_inputs, READER, WRITER};
use openclaws_testkit::db::fresh_database;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn spec_with(extra: Value) -> Value {
    let mut spec = json!({"customerId": "cust", "region": "iad"});
    json_patch::merge(&mut spec, &extra);
    json!({ "spec": spec })
}

fn assert_error_shape(body: &Value) {
    let error = &body["error"];
    assert!(error["code"].is_string(), "no code in {body}");
    assert!(error["message"].is_string(), "no message in {body}");
}

#[tokio::test]
async fn each_invalid_field_is_named_by_path() {
    let api = spawn_api().await;
    let cases: Vec<(Value, &str)> = vec![
        (spec_with(json!({"region": "IAD"})), "spec.region"),
        (spec_with(json!({"region": "iadx"})), "spec.region"),
        (spec_with(json!({"customerId": ""})), "spec.customerId"),
        (
            spec_with(json!({"customerId": "x".repeat(129)})),
            "spec.customerId",
        ),
        (
            spec_with(json!({"customerId": "a\u{0007}b"})),
            "spec.customerId",
        ),
        (spec_with(json!({"image": "has space:tag"})), "spec.image"),
        (spec_with(json!({"image": "x".repeat(256)})), "spec.image"),
        (spec_with(json!({"image": "repo@sha256:abc"})), "spec.image"),
        (spec_with(json!({"guest": {"cpus": 3}})), "spec.guest.cpus"),
        (spec_with(json!({"guest": {"cpus": 32}})), "spec.guest.cpus"),
        (
            spec_with(json!({"guest": {"memoryMb": 1000}})),
            "spec.guest.memoryMb",
        ),
        (
            spec_with(json!({"guest": {"cpus": 1, "memoryMb": 4096}})),
            "spec.guest.memoryMb",
        ),
        (
            spec_with(json!({"guest": {"cpus": 1, "memoryMb": 512}})),
            "spec.guest.memoryMb",
        ),
        (
            spec_with(json!({"guest": {"cpuKind": "performance", "cpus": 1, "memoryMb": 1024}})),
            "spec.guest.memoryMb",
        ),
        (
            spec_with(json!({"guest": {"cpuKind": "turbo"}})),
            "spec.guest.cpuKind",
        ),
        (spec_with(json!({"volumeSizeGb": 0})), "spec.volumeSizeGb"),
        (spec_with(json!({"volumeSizeGb": 501})), "spec.volumeSizeGb"),
        (spec_with(json!({"runState": "paused"})), "spec.runState"),
        (spec_with(json!({"exposure": "internal"})), "spec.exposure"),
        (
            spec_with(json!({"model": {"primary": ""}})),
            "spec.model.primary",
        ),
        (
            spec_with(json!({"model": {"fallbacks": ["ok", " "]}})),
            "spec.model.fallbacks[1]",
        ),
        (
            spec_with(json!({"pairing": {"approvals": [{"requestId": "r1", "latest": true}]}})),
            "spec.pairing.approvals[0]",
        ),
        (
            spec_with(json!({"pairing": {"approvals": [{"requestId": "r1"}, {}]}})),
            "spec.pairing.approvals[1]",
        ),
        (
            spec_with(json!({"pairing": {"approvals": [{"latest": false}]}})),
            "spec.pairing.approvals[0]",
        ),
        (
            spec_with(json!({"pairing": {"policy": "sometimes"}})),
            "spec.pairing.policy",
        ),
        (
            spec_with(json!({"composio": {"entityId": ""}})),
            "spec.composio.entityId",
        ),
        (
            spec_with(json!({"composio": {"entityId": "e".repeat(129)}})),
            "spec.composio.entityId",
        ),
        (
            spec_with(json!({"identity": {"displayName": "n".repeat(65)}})),
            "spec.identity.displayName",
        ),
        (spec_with(json!({"paused": "yes"})), "spec.paused"),
        (
            spec_with(json!({"guest": {"memoryMb": "2048"}})),
            "spec.guest.memoryMb",
        ),
        (
            spec_with(json!({"providerKeys": {"openaiApiKey": 42}})),
            "spec.providerKeys.openaiApiKey",
        ),
        (
            spec_with(json!({"providerKeys": {"openaiApiKey": ""}})),
            "spec.providerKeys.openaiApiKey",
        ),
        (
            spec_with(json!({"providerKeys": {"anthropicApiKey": {"set": true}}})),
            "spec.providerKeys.anthropicApiKey",
        ),
        (
            spec_with(json!({"channels": {"telegram": {"botToken": "123:abc def"}}})),
            "spec.channels.telegram.botToken",
        ),
        (
            spec_with(json!({"channels": {"telegram": {"botToken": "123:abc\u{0001}"}}})),
            "spec.channels.telegram.botToken",
        ),
        (
            spec_with(json!({"channels": {"telegram": {}}})),
            "spec.channels.telegram.botToken",
        ),
        (
            spec_with(json!({"channels": {"telegram": {"botToken": {"set": true}}}})),
            "spec.channels.telegram.botToken",
        ),
        (
            spec_with(
                json!({"channels": {"telegram": {"botToken": "1:a", "dmPolicy": "allowlist"}}}),
            ),
            "spec.channels.telegram.allowFrom",
        ),
        (
            spec_with(json!({"channels": {"telegram": {"botToken": "1:a", "dmPolicy": "open"}}})),
            "spec.channels.telegram",
        ),
        (
            spec_with(
                json!({"channels": {"telegram": {"botToken": "1:a", "allowFrom": ["@someone"]}}}),
            ),
            "spec.channels.telegram.allowFrom[0]",
        ),
        (
            spec_with(json!({"channels": {"discord": {"token": "t", "allowFrom": ["*"]}}})),
            "spec.channels.discord.allowFrom[0]",
        ),
        (
            spec_with(json!({"channels": {"slack": {"botToken": "xoxb-1"}}})),
            "spec.channels.slack.appToken",
        ),
        (
            spec_with(
                json!({"channels": {"slack": {"botToken": "xoxb-1", "appToken": "xapp-1", "signingSecret": "s"}}}),
            ),
            "spec.channels.slack",
        ),
        (
            spec_with(json!({"channels": {"matrix": {}}})),
            "spec.channels.matrix",
        ),
        (json!({"spec": {"region": "iad"}}), "spec.customerId"),
        (json!({"spec": {"customerId": "c"}}), "spec.region"),
        (
            json!({"metadata": {"labels": {"a": 1}}, "spec": {"customerId": "c", "region": "iad"}}),
            "metadata.labels.a",
        ),
        (
            json!({"metadata": {"name": "other-name"}, "spec": {"customerId": "c", "region": "iad"}}),
            "metadata.name",
        ),
        (
            json!({"kind": "Pod", "spec": {"customerId": "c", "region": "iad"}}),
            "kind",
        ),
        (json!({}), "spec"),
    ];
    for (body, path) in cases {
        let reply = api.put("valid-name", &body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {body} -> {}",
            reply.text
        );
        assert_eq!(reply.json["error"]["code"], "invalid");
        assert_eq!(reply.field_paths(), [path], "{body} -> {}", reply.text);
    }
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM instances")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(created, 0);

    let fine = api
        .put(
            "valid-name",
            &spec_with(json!({"image": format!("ghcr.io/o/o@sha256:{}", "a".repeat(64)),
                "guest": {"cpuKind": "performance", "cpus": 16, "memoryMb": 131072},
                "volumeSizeGb": 500,
                "pairing": {"policy": "manual", "approvals": [{"requestId": "r1"}, {"latest": true}]}})),
        )
        .await;
    assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.text);
}

#[tokio::test]
async fn bad_names_are_rejected() {
    let api = spawn_api().await;
    for name in ["ab", "-abc", "abc-", "Abc", "a_bc", &"a".repeat(41)] {
        let reply = api.put(name, &minimal("c")).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert_eq!(reply.field_paths(), ["metadata.name"], "{name}");
    }
}

#[tokio::test]
async fn several_errors_are_reported_at_once() {
    let api = spawn_api().await;
    let reply = api
        .put(
            "multi",
            &json!({"bogusTop": 1, "metadata": {"bogusMeta": 2}, "spec": {
                "region": "x", "guest": {"cpus": 3, "memoryMb": 300, "extra": 1},
                "volumeSizeGb": 0, "composio": {"nested": true},
                "pairing": {"approvals": [{}]}}}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    let paths = reply.field_paths();
    for expected in [
        "bogusTop",
        "metadata.bogusMeta",
        "spec.customerId",
        "spec.region",
        "spec.guest.cpus",
        "spec.guest.memoryMb",
        "spec.guest.extra",
        "spec.volumeSizeGb",
        "spec.composio.nested",
        "spec.pairing.approvals[0]",
    ] {
        assert!(
            paths.contains(&expected.to_owned()),
            "{expected} missing from {paths:?}"
        );
    }
}

#[tokio::test]
async fn malformed_requests_get_the_right_status_and_shape() {
    let api = spawn_api().await;
    let put = |body: &'static [u8], content_type: &'static str| {
        api.send(
            Method::PUT,
            "/v1/instances/shape",
            Some(WRITER),
            Some((content_type, body.to_vec())),
            &[],
        )
    };
    let malformed = put(b"{\"spec\": {", "application/json").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json["error"]["code"], "bad_request");
    let empty = put(b"", "application/json").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let not_object = put(b"[1,2]", "application/json").await;
    assert_eq!(not_object.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error_shape(&not_object.json);
    let wrong_type = put(b"{\"spec\": \"iad\"}", "application/json").await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_type.field_paths(), ["spec"]);
    let text = put(b"{}", "text/plain").await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(text.json["error"]["code"], "unsupported_media_type");
    let missing_type = api
        .send(Method::PUT, "/v1/instances/shape", Some(WRITER), None, &[])
        .await;
    assert_eq!(missing_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let merge_on_put = put(b"{}", "application/merge-patch+json").await;
    assert_eq!(merge_on_put.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep = api
        .send(
            Method::PUT,
            "/v1/instances/shape",
            Some(WRITER),
            Some(("application/json", deep.into_bytes())),
            &[],
        )
        .await;
    assert_eq!(deep.status, StatusCode::BAD_REQUEST);

    let big = json!({"spec": {"customerId": "c", "region": "iad",
        "identity": {"displayName": "x".repeat(70 * 1024)}}});
    let oversize = api.put("shape", &big).await;
    assert_eq!(oversize.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(oversize.json["error"]["code"], "payload_too_large");

    api.put("shape", &minimal("c")).await;
    let patch_text = api
        .send(
            Method::PATCH,
            "/v1/instances/shape",
            Some(WRITER),
            Some(("text/plain", b"{}".to_vec())),
            &[],
        )
        .await;
    assert_eq!(patch_text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bad_if_match = api
        .send(
            Method::DELETE,
            "/v1/instances/shape",
            Some(WRITER),
            None,
            &[("if-match", "\"abc\"")],
        )
        .await;
    assert_eq!(bad_if_match.status, StatusCode::BAD_REQUEST);

    let unknown_route = api.get("/v1/nothing-here").await;
    assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_route.json["error"]["code"], "not_found");
    let root = api.send(Method::GET, "/", None, None, &[]).await;
    assert_eq!(root.status, StatusCode::NOT_FOUND);
    assert_error_shape(&root.json);
    let wrong_method = api
        .send(Method::POST, "/v1/instances/shape", Some(WRITER), None, &[])
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json["error"]["code"], "method_not_allowed");
    let wrong_method_open = api.send(Method::POST, "/healthz", None, None, &[]).await;
    assert_eq!(wrong_method_open.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_shape(&wrong_method_open.json);
    let bad_utf8_path = api.get("/v1/instances/%FF%FE").await;
    assert!(bad_utf8_path.status.is_client_error());
    assert_error_shape(&bad_utf8_path.json);
}

#[tokio::test]
async fn tokens_and_roles() {
    // Every wrong token below is a failure from 127.0.0.1: allow them all (the limit has its
    // own tests in `api_edge`).
    let api = spawn_api_with(EdgeSettings {
        auth_failure_burst: 1000,
        ..EdgeSettings::default()
    })
    .await;
    api.put("authz", &minimal("c")).await;
    let body = serde_json::to_vec(&minimal("c")).unwrap();
    let routes: Vec<(Method, &str, bool)> = vec![
        (Method::GET, "/v1/instances", false),
        (Method::GET, "/v1/instances/authz", false),
        (Method::GET, "/v1/instances/authz/events", false),
        (Method::PUT, "/v1/instances/authz", true),
        (Method::PATCH, "/v1/instances/authz", true),
        (Method::POST, "/v1/instances/authz/reconcile", true),
        (Method::DELETE, "/v1/instances/authz", true),
    ];
    for (method, path, writes) in &routes {
        let payload = writes.then(|| ("application/json", body.clone()));
        for token in [None, Some("nope"), Some("")] {
            let reply = api
                .send(method.clone(), path, token, payload.clone(), &[])
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
            assert_eq!(reply.json["error"]["code"], "unauthorized");
        }
        let basic = api
            .send(
                method.clone(),
                path,
                None,
                payload.clone(),
                &[("authorization", "Basic d3JpdGVyOng=")],
            )
            .await;
        assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
        let reader = api
            .send(method.clone(), path, Some(READER), payload.clone(), &[])
            .await;
        if *writes {
            assert_eq!(reader.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(reader.json["error"]["code"], "forbidden");
        } else {
            assert_eq!(reader.status, StatusCode::OK, "{method} {path}");
        }
    }
    // The writer may do everything (DELETE last).
    for (method, path, writes) in &routes {
        let payload = writes.then(|| ("application/json", body.clone()));
        let reply = api
            .send(method.clone(), path, Some(WRITER), payload, &[])
            .await;
        assert!(reply.status.is_success(), "{method} {path}: {}", reply.text);
    }
    // Nothing a reader attempted was written.
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM events WHERE instance_name = 'authz' ORDER BY id")
            .fetch_all(&api.pool)
            .await
            .unwrap();
    assert_eq!(
        reasons,
        // The writer's PUT and PATCH wrote what was stored already: no event.
        ["Created", "ReconcileRequested", "DeletionRequested"]
    );
}

#[tokio::test]
async fn open_operational_endpoints() {
    let api = spawn_api().await;
    let health = api.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = api.send(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    let metrics = api.send(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(metrics.headers.contains_key("x-request-id"));

    let doc = api
        .send(Method::GET, "/openapi.json", None, None, &[])
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/instances", &["get"][..]),
        (
            "/v1/instances/{name}",
            &["get", "put", "patch", "delete"][..],
        ),
        ("/v1/instances/{name}/reconcile", &["post"][..]),
        ("/v1/instances/{name}/adopt", &["post"][..]),
        ("/v1/instances/{name}/events", &["get"][..]),
        ("/v1/instances/{name}/plan", &["get"][..]),
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"][..]),
        ("/metrics", &["get"][..]),
        ("/openapi.json", &["get"][..]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path} missing");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "OpenClawInstance",
        "OpenClawInstanceList",
        "InstanceWrite",
        "InstanceSpecWrite",
        "AdoptionWrite",
        "ProviderKeysWrite",
        "ErrorBody",
        "Event",
        "PlanPreview",
        "PlannedAction",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let patch = &paths["/v1/instances/{name}"]["patch"]["requestBody"]["content"];
    assert!(patch["application/merge-patch+json"].is_object());
    let put_responses = &paths["/v1/instances/{name}"]["put"]["responses"];
    for status in [
        "200", "201", "400", "401", "403", "409", "412", "413", "414", "415", "422", "429", "431",
        "503",
    ] {
        assert!(
            put_responses[status].is_object(),
            "PUT {status} undocumented"
        );
    }
    // As strict as the handlers: the name's pattern and length, a typed and bounded limit,
    // Retry-After on 429 and 503, an approval naming exactly one target.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            for status in ["414", "431"] {
                assert!(responses[status].is_object(), "{method} {path}: {status}");
            }
            if path.starts_with("/v1/") {
                for status in ["400", "401", "429", "503"] {
                    assert!(responses[status].is_object(), "{method} {path}: {status}");
                }
                assert!(responses["429"]["headers"]["Retry-After"].is_object());
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                match parameter["name"].as_str().unwrap() {
                    "name" if path.starts_with("/v1/releases") => {
                        assert_eq!(schema["pattern"], "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$");
                        assert_eq!(
                            (schema["minLength"].as_u64(), schema["maxLength"].as_u64()),
                            (Some(3), Some(63))
                        );
                    }
                    "name" => {
                        assert_eq!(schema["pattern"], "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$");
                        assert_eq!(
                            (schema["minLength"].as_u64(), schema["maxLength"].as_u64()),
                            (Some(3), Some(40))
                        );
                    }
                    "limit" => {
                        assert_eq!(schema["type"], "integer", "{path}");
                        assert_eq!(
                            (schema["minimum"].as_u64(), schema["maximum"].as_u64()),
                            (Some(1), Some(1000))
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ApprovalRequest"]["oneOf"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        schemas["GuestSpec"]["properties"]["cpus"]["enum"],
        json!([1, 2, 4, 8, 16])
    );
    assert!(schemas["InstanceSpecWrite"]["properties"]["customerId"]["pattern"].is_string());
}

#[tokio::test]
async fn readyz_is_503_without_migrations() {
    let db = fresh_database().await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&db.pool)
        .await
        .unwrap();
    let state = openclaws_api::ApiState {
        pool: db.controller.clone(),
        cipher: std::sync::Arc::new(openclaws_model::secrets::SecretCipher::from_key([1; 32])),
        tokens: openclaws_api::ApiTokens {
            writer: WRITER.into(),
            reader: READER.into(),
        }
        .into(),
        base_domain: "t".into(),
        metrics: Default::default(),
        pairing_window: std::time::Duration::from_secs(600),
        inputs: test_inputs().into(),
        watch: openclaws_api::watch::WatchHub::start(
            db.pool.clone().into(),
            Default::default(),
            tokio_util::sync::CancellationToken::new(),
        ),
        rendered: Default::default(),
        desired: openclaws_store::desired::DesiredWriter::start(
            db.controller.clone(),
            openclaws_api::DB_WAIT,
        ),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, openclaws_api::router(state))
            .await
            .unwrap()
    });
    let reply = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    db.pool.close().await;
    let reply = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn less_memory_than_the_gateway_needs_is_refused_naming_the_minimum() {
    let api = spawn_api().await;
    for memory in [256, 512, 768] {
        let reply = api
            .put(
                "small",
                &spec_with(json!({"guest": {"cpus": 1, "memoryMb": memory}})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{memory}: {}",
            reply.text
        );
        assert_eq!(
            reply.field_paths(),
            ["spec.guest.memoryMb"],
            "{}",
            reply.text
        );
        let message = reply.json["error"]["fields"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("at least 1024 MB"), "{message}");
    }
    let reply = api
        .put(
            "small",
            &spec_with(json!({"guest": {"cpus": 1, "memoryMb": 1024}})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
}
