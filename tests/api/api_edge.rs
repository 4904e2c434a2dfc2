//! Black-box tests of the API's edge: text the database cannot or must not hold (NUL, control,
//! invisible and bidi characters), no request value echoed in an error, the JSON shape for
//! over-long URLs and headers, the limit on failed credentials per client address, and a
//! database outage answered 503 promptly.

use openclaws_api::edge::EdgeSettings;
use openclaws_testkit::api::{minimal, spawn_api, spawn_api_with, test_inputs, READER, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn assert_error_shape(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn nul_and_control_characters_are_refused_with_4xx() {
    let api = spawn_api().await;
    let with =
        |pairing: Value| json!({"spec": {"customerId": "c", "region": "iad", "pairing": pairing}});
    let cases = [
        (
            with(json!({"policy": "manual", "approvals": [{"requestId": "req\u{0}1"}]})),
            "spec.pairing.approvals[0].requestId",
        ),
        (
            with(json!({"policy": "manual", "approvals": [{"id": "a\u{0}", "latest": true}]})),
            "spec.pairing.approvals[0].id",
        ),
        (
            json!({"spec": {"customerId": "c\u{0}", "region": "iad"}}),
            "spec.customerId",
        ),
        (
            json!({"metadata": {"labels": {"team": "a\u{0}b"}}, "spec": {"customerId": "c", "region": "iad"}}),
            "metadata.labels.team",
        ),
        (
            json!({"spec": {"customerId": "c", "region": "iad", "model": {"fallbacks": ["x\u{1b}[31m"]}}}),
            "spec.model.fallbacks[0]",
        ),
    ];
    for (body, path) in &cases {
        let reply = api.put("ctrl", body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            reply.text
        );
        assert!(
            reply.field_paths().contains(&path.to_string()),
            "{path}: {:?}",
            reply.field_paths()
        );
    }
    assert_eq!(
        api.put("ctrl", &minimal("c")).await.status,
        StatusCode::CREATED
    );
    let patch = api
        .patch(
            "ctrl",
            &json!({"spec": {"pairing": {"policy": "manual", "approvals": [{"requestId": "\u{0}"}]}}}),
        )
        .await;
    assert_eq!(
        patch.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        patch.text
    );
    assert_eq!(patch.field_paths(), ["spec.pairing.approvals[0].requestId"]);
    let approval = api
        .write(
            Method::POST,
            "/v1/instances/ctrl/pairing/approvals",
            &json!({"requestId": "r\u{0}"}),
        )
        .await;
    assert_eq!(
        approval.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        approval.text
    );

    // The customerId filter, reachable with the reader token.
    for filter in ["%00", "a%00b", "%1B", "a%E2%80%AEb", ""] {
        let reply = api
            .send(
                Method::GET,
                &format!("/v1/instances?customerId={filter}"),
                Some(READER),
                None,
                &[],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{filter}: {}",
            reply.text
        );
        assert_eq!(reply.field_paths(), ["customerId"]);
    }
    let fine = api
        .send(
            Method::GET,
            "/v1/instances?customerId=c",
            Some(READER),
            None,
            &[],
        )
        .await;
    assert_eq!(fine.status, StatusCode::OK);
    assert_eq!(fine.json["items"].as_array().unwrap().len(), 1);

    // Path names and event filters never reach the database with a control character.
    for path in [
        "/v1/instances/ab%00c",
        "/v1/instances/ctrl%00/events",
        "/v1/instances/ctrl/events?type=%00",
    ] {
        let reply = api.send(Method::GET, path, Some(READER), None, &[]).await;
        assert!(reply.status.is_client_error(), "{path}: {}", reply.status);
        assert!(
            reply.json["error"]["code"].is_string(),
            "{path}: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn invisible_and_bidi_characters_in_names_are_refused_without_echo() {
    let api = spawn_api().await;
    let spec = |extra: Value| {
        let mut body = json!({"spec": {"customerId": "cust-1", "region": "iad"}});
        json_patch::merge(&mut body, &extra);
        body
    };
    let cases = [
        (
            spec(json!({"spec": {"customerId": "cust\u{200B}-1"}})),
            "spec.customerId",
            "cust\u{200B}-1",
        ),
        (
            spec(json!({"spec": {"customerId": "\u{202E}1-tsuc"}})),
            "spec.customerId",
            "\u{202E}1-tsuc",
        ),
        (
            spec(json!({"spec": {"customerId": "\u{FEFF}cust"}})),
            "spec.customerId",
            "\u{FEFF}cust",
        ),
        (
            spec(json!({"spec": {"identity": {"displayName": "Ada\u{2066}Evil\u{2069}"}}})),
            "spec.identity.displayName",
            "Ada\u{2066}Evil\u{2069}",
        ),
        (
            spec(json!({"spec": {"identity": {"displayName": "\u{3164}"}}})),
            "spec.identity.displayName",
            "\u{3164}",
        ),
        (
            spec(json!({"metadata": {"labels": {"owner": "bob\u{200F}"}}})),
            "metadata.labels.owner",
            "bob\u{200F}",
        ),
    ];
    for (body, path, value) in &cases {
        let reply = api.put("uni", body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            reply.text
        );
        assert!(
            reply.field_paths().contains(&path.to_string()),
            "{path}: {:?}",
            reply.field_paths()
        );
        assert!(
            !reply.text.contains(value),
            "{path}: the value came back: {}",
            reply.text
        );
        let message = reply.json["error"]["fields"][0]["message"]
            .as_str()
            .unwrap();
        assert!(message.contains("invisible"), "{message}");
    }
    let emoji = api
        .put(
            "uni",
            &spec(json!({"spec": {"identity": {"displayName": "Zoë ❤\u{FE0F} 李"}}})),
        )
        .await;
    assert_eq!(emoji.status, StatusCode::CREATED, "{}", emoji.text);

    // An unknown field whose name hides a bidi override is named with the character spelled out.
    let sneaky = api
        .put("uni", &spec(json!({"spec": {"evil\u{202E}txt": 1}})))
        .await;
    assert_eq!(sneaky.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!sneaky.text.contains('\u{202E}'), "{}", sneaky.text);
    assert!(
        sneaky
            .field_paths()
            .contains(&"spec.evil⟨U+202E⟩txt".to_owned()),
        "{:?}",
        sneaky.field_paths()
    );
}

#[tokio::test]
async fn errors_never_echo_request_values() {
    let api = spawn_api().await;
    api.put(
        "echo",
        &json!({"spec": {"customerId": "c", "region": "iad", "pairing": {"policy": "manual"}}}),
    )
    .await;
    let canary = "canary-sk-ant-0123456789";
    let bodies = [
        json!({"requestId": 42, "latest": canary}),
        json!({"latest": canary}),
        json!({canary: true}),
        json!([canary]),
    ];
    for body in &bodies {
        let reply = api
            .write(Method::POST, "/v1/instances/echo/pairing/approvals", body)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.text
        );
        if body.is_object() && body.get(canary).is_none() {
            assert!(!reply.text.contains(canary), "{body}: {}", reply.text);
        }
    }
    let typed = api
        .put("echo", &json!({"spec": {"customerId": "c", "region": "iad", "paused": canary, "guest": {"cpus": canary}}}))
        .await;
    assert_eq!(typed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!typed.text.contains(canary), "{}", typed.text);
    let bad_limit = api.get(&format!("/v1/instances?limit={canary}")).await;
    assert_eq!(bad_limit.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad_limit.text.contains(canary), "{}", bad_limit.text);
    let bad_since = api
        .get(&format!("/v1/instances/echo/events?since={canary}"))
        .await;
    assert_eq!(bad_since.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad_since.text.contains(canary), "{}", bad_since.text);
}

#[tokio::test]
async fn over_long_urls_and_headers_get_the_json_shape() {
    let api = spawn_api().await;
    for length in [9 * 1024, 60 * 1024] {
        let long = format!("/v1/instances?customerId={}", "a".repeat(length));
        let reply = api.send(Method::GET, &long, Some(READER), None, &[]).await;
        assert_eq!(reply.status, StatusCode::URI_TOO_LONG, "{length}");
        assert_error_shape(&reply.json, "uri_too_long");
        let open = api
            .send(
                Method::GET,
                &format!("/healthz?{}", "a".repeat(length)),
                None,
                None,
                &[],
            )
            .await;
        assert_eq!(open.status, StatusCode::URI_TOO_LONG);
        assert_error_shape(&open.json, "uri_too_long");
    }
    let big_value = "b".repeat(40 * 1024);
    let reply = api
        .send(
            Method::GET,
            "/v1/instances",
            Some(READER),
            None,
            &[("x-padding", &big_value)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_error_shape(&reply.json, "headers_too_large");

    let names: Vec<String> = (0..150).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let reply = api
        .send(Method::GET, "/v1/instances", Some(READER), None, &many)
        .await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_error_shape(&reply.json, "headers_too_large");

    let ok = api
        .send(
            Method::GET,
            "/v1/instances",
            Some(READER),
            None,
            &many[..50],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
}

/// Sends `request` as raw bytes and reads one answer: the status and the body (its
/// `content-length`, which every answer has) parsed as JSON.
async fn raw_exchange(base: &str, request: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let request = request.to_vec();
    // The server may answer before it has read everything: write and read at once.
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let length = head.to_ascii_lowercase();
        let length = length
            .split("content-length: ")
            .nth(1)?
            .split("\r\n")
            .next()?;
        (body.len() >= length.parse::<usize>().ok()?).then(|| (head.to_owned(), body.to_owned()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (head, body) = loop {
        if let Some(done) = complete(&answer) {
            break done;
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, reader.read(&mut chunk)).await;
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            other => panic!(
                "no complete answer ({other:?}): {:?}",
                String::from_utf8_lossy(&answer)
            ),
        };
        answer.extend_from_slice(&chunk[..n]);
    };
    writing.abort();
    let status = head[9..12].parse().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// What hyper refuses before any route runs (a 64 KiB request target, a head over 1 MiB,
/// malformed HTTP) is answered in the JSON shape too.
#[tokio::test]
async fn requests_hyper_refuses_get_the_json_shape() {
    let api = spawn_api().await;
    let target = format!("/healthz?{}", "a".repeat(70 * 1024));
    let request = format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n");
    let (status, body) = raw_exchange(&api.base, request.as_bytes()).await;
    assert_eq!(status, 414);
    assert_error_shape(&body, "uri_too_long");

    let huge = "h".repeat(4 * 1024 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: {huge}\r\n\r\n");
    let (status, body) = raw_exchange(&api.base, request.as_bytes()).await;
    assert_eq!(status, 431);
    assert_error_shape(&body, "headers_too_large");

    for garbage in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\n\r\n",
    ] {
        let (status, body) = raw_exchange(&api.base, garbage).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(garbage));
        assert_error_shape(&body, "bad_request");
    }

    // The connection wrapper leaves ordinary answers alone, keep-alive included.
    let ok = api.get("/healthz").await;
    assert_eq!(ok.status, StatusCode::OK);
    let missing = api.send(Method::GET, "/nope", None, None, &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_error_shape(&missing.json, "not_found");
}

async fn metric(api: &openclaws_testkit::api::TestApi, series: &str) -> f64 {
    let text = api
        .send(Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from /metrics"))
}

#[tokio::test]
async fn failed_tokens_are_limited_per_address_and_counted() {
    let api = spawn_api_with(EdgeSettings {
        auth_failure_burst: 3,
        auth_failures_per_minute: 1,
        ..EdgeSettings::default()
    })
    .await;
    let limited = r#"openclaws_api_auth_failures_total{credential="bearer",result="limited"}"#;
    let rejected = r#"openclaws_api_auth_failures_total{credential="bearer",result="rejected"}"#;
    assert_eq!(metric(&api, limited).await, 0.0);
    // A request without any token is a mistake, not a guess: never counted.
    for _ in 0..5 {
        let reply = api
            .send(Method::GET, "/v1/instances", None, None, &[])
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    for i in 0..3 {
        let reply = api
            .send(
                Method::GET,
                "/v1/instances",
                Some(&format!("guess-{i}")),
                None,
                &[],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let over = api
        .send(Method::GET, "/v1/instances", Some("guess-3"), None, &[])
        .await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.text);
    assert_error_shape(&over.json, "too_many_requests");
    let retry: u64 = over.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // While limited, even the right token is not looked at.
    let right = api
        .send(Method::GET, "/v1/instances", Some(READER), None, &[])
        .await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(right.headers.contains_key("retry-after"));
    assert_eq!(metric(&api, limited).await, 2.0);
    assert_eq!(metric(&api, rejected).await, 3.0);
    let text = api
        .send(Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    assert!(!text.contains("127.0.0.1"), "an address is a label");

    // The support console's sign-in is limited under the same address.
    let login = api
        .send(
            Method::POST,
            "/support/login",
            None,
            Some((
                "application/x-www-form-urlencoded",
                format!("token={WRITER}").into_bytes(),
            )),
            &[],
        )
        .await;
    assert_eq!(login.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(login.headers.contains_key("retry-after"));
    assert!(
        login.text.contains("Too many failed sign-ins"),
        "{}",
        login.text
    );
}

#[tokio::test]
async fn sign_in_failures_are_limited_and_forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let sign_in = |api: &openclaws_testkit::api::TestApi, forwarded: &'static str| {
        let api_base = api.base.clone();
        let http = api.http.clone();
        async move {
            http.post(format!("{api_base}/support/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-forwarded-for", forwarded)
                .body("token=wrong")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let behind = spawn_api_with(EdgeSettings {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        auth_failure_burst: 2,
        auth_failures_per_minute: 1,
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            sign_in(&behind, "203.0.113.1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in(&behind, "203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        sign_in(&behind, "203.0.113.2").await,
        StatusCode::UNAUTHORIZED
    );
    let limited = r#"openclaws_api_auth_failures_total{credential="sign_in",result="limited"}"#;
    assert_eq!(metric(&behind, limited).await, 1.0);

    // Without a trusted proxy the header is the client's say-so: one address for all.
    let direct = spawn_api_with(EdgeSettings {
        auth_failure_burst: 2,
        auth_failures_per_minute: 1,
        ..EdgeSettings::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            sign_in(&direct, "203.0.113.1").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in(&direct, "203.0.113.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn an_unreachable_database_is_a_prompt_503() {
    // Nothing listens on port 1: every connection attempt is refused, and the pool would retry
    // for its whole acquire timeout.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nothing")
        .unwrap();
    let watch = openclaws_api::watch::WatchHub::start(
        pool.clone().into(),
        Default::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let state = openclaws_api::ApiState {
        pool: pool.clone().into(),
        cipher: std::sync::Arc::new(openclaws_model::secrets::SecretCipher::from_key([1; 32])),
        tokens: openclaws_api::ApiTokens {
            writer: WRITER.into(),
            reader: READER.into(),
        }
        .into(),
        base_domain: "t".into(),
        metrics: Default::default(),
        pairing_window: Duration::from_secs(600),
        inputs: test_inputs().into(),
        watch,
        rendered: Default::default(),
        desired: openclaws_store::desired::DesiredWriter::start(
            pool.clone().into(),
            openclaws_api::DB_WAIT,
        ),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(openclaws_api::serve(
        listener,
        openclaws_api::router(state),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let requests = [
        (
            "read",
            http.get(format!("{base}/v1/instances/down"))
                .bearer_auth(READER),
        ),
        (
            "list",
            http.get(format!("{base}/v1/instances")).bearer_auth(READER),
        ),
        (
            "write",
            http.put(format!("{base}/v1/instances/down"))
                .bearer_auth(WRITER)
                .json(&minimal("c")),
        ),
        ("readyz", http.get(format!("{base}/readyz"))),
    ];
    for (what, request) in requests {
        let started = Instant::now();
        let reply = request.send().await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
        assert!(elapsed < Duration::from_secs(2), "{what} took {elapsed:?}");
        let retry: u64 = reply.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1, "{what}");
        let body: Value = reply.json().await.unwrap();
        assert_error_shape(&body, "unavailable");
        assert!(
            !body.to_string().contains("127.0.0.1"),
            "{what}: the driver's error reached the client: {body}"
        );
        eprintln!("{what}: 503 after {elapsed:?}");
    }
}

#[tokio::test]
async fn the_support_console_spells_out_hidden_characters_of_stored_values() {
    let api = spawn_api().await;
    assert_eq!(
        api.put("legacy", &minimal("cust-7")).await.status,
        StatusCode::CREATED
    );
    // A customer id stored before the policy, with a right-to-left override and a zero-width space.
    sqlx::query(
        "UPDATE instances SET customer_id = $1, spec = jsonb_set(spec, '{customerId}', to_jsonb($1::text)) \
         WHERE name = 'legacy'",
    )
    .bind("cust\u{202E}7-\u{200B}x")
    .execute(&api.pool)
    .await
    .unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(format!("{}/support/login", api.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={READER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for page in ["/support/instances", "/support/instances/legacy"] {
        let reply = api
            .send(Method::GET, page, None, None, &[("cookie", &cookie)])
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{page}");
        let shown = "cust<span class=\"hidden-char\" title=\"an invisible or control character, shown by its code\">⟨U+202E⟩</span>7-";
        assert!(reply.text.contains(shown), "{page}: {}", reply.text);
        assert!(reply.text.contains("⟨U+200B⟩</span>x"), "{page}");
        assert!(
            !reply.text.contains('\u{202E}') && !reply.text.contains('\u{200B}'),
            "{page}"
        );
    }
}
