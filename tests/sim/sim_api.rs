//! Auth, naming, leases, metadata, listing filters, the org scan and error shapes.

use fly_sim::{LatencyModel, SimConfig};
use openclaws_testkit::sim::{error_text, TestSim, ORG, TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn auth_requires_a_known_token_in_either_scheme() {
    let sim = TestSim::start(0.0).await;
    let r = sim
        .send(Method::GET, "/v1/apps?org_slug=personal", None, None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["error"].is_string(), "{:?}", r.body);
    assert!(r.request_id.is_some());
    let r = sim
        .send(Method::GET, "/v1/apps", None, Some("Bearer wrong"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = sim
        .send(
            Method::GET,
            "/v1/apps",
            None,
            Some(&format!("FlyV1 {TOKEN}")),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["total_apps"], 0);
}

#[tokio::test]
async fn unknown_route_is_plain_text_404_and_bad_json_is_400() {
    let sim = TestSim::start(0.0).await;
    let r = sim.get("/v1/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, Value::String("404 page not found\n".into()));
    assert!(r.request_id.is_some());

    let r = sim
        .send(
            Method::POST,
            "/v1/apps",
            None,
            Some(&format!("Bearer {TOKEN}")),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        error_text(&r).starts_with("invalid_argument"),
        "{:?}",
        r.body
    );
    sim.app("oc-json").await;
    let r = sim
        .post("/v1/apps/oc-json/machines", json!({"config": {"image": 5}}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn app_names_are_global_and_foreign_apps_are_forbidden() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-dup").await;
    let r = sim
        .post("/v1/apps", json!({"name": "oc-dup", "org_slug": ORG}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body,
        json!({"error": "Validation failed: Name has already been taken", "status": "name_taken"})
    );
    let r = sim.post("/v1/apps", json!({"name": "Bad_Name"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = sim
        .post("/_sim/foreign-apps", json!({"name": "oc-theirs"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = sim.get("/v1/apps/oc-theirs").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = sim.post("/v1/apps", json!({"name": "oc-theirs"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["status"], "name_taken");
    assert_eq!(
        sim.get("/v1/apps/oc-free").await.status,
        StatusCode::NOT_FOUND
    );

    // Without ?wait the create answers {id, created_at} only.
    let r = sim.post("/v1/apps", json!({"name": "oc-short"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.body["created_at"].is_i64());
    assert!(r.body.get("name").is_none());
    let r = sim.get("/v1/apps?org_slug=personal").await;
    assert_eq!(r.body["total_apps"], 2, "foreign apps are not listed");
}

#[tokio::test]
async fn other_tokens_see_their_own_org_only() {
    let mut config = SimConfig::new(TOKEN, ORG);
    config.latency = LatencyModel::spec_defaults().scaled(0.0);
    config
        .other_tokens
        .insert("other-token".into(), "other-org".into());
    let sim = TestSim::start_with(config).await;
    sim.app("oc-mine").await;
    let r = sim
        .send(
            Method::GET,
            "/v1/apps/oc-mine",
            None,
            Some("Bearer other-token"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn leases_gate_mutations_but_not_metadata() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-lease").await;
    let m = sim.machine("oc-lease", None, json!({})).await;
    let id = m["id"].as_str().expect("id").to_string();
    let base = format!("/v1/apps/oc-lease/machines/{id}");

    let r = sim.get(&format!("{base}/lease")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = sim
        .post(
            &format!("{base}/lease"),
            json!({"ttl": 60, "description": "ctl"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["status"], "success");
    let nonce = r.body["data"]["nonce"].as_str().expect("nonce").to_string();
    assert_eq!(nonce.len(), 12);
    assert!(r.body["data"]["expires_at"].is_i64());
    assert_eq!(r.body["data"]["version"], m["instance_id"]);

    let r = sim.post_empty(&format!("{base}/lease?ttl=30")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["code"], "invalid");
    assert!(r.body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with(&format!("machine ID {id} lease currently held by"))));

    let r = sim.post_empty(&format!("{base}/stop")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "stop without nonce");
    let r = sim.delete(&format!("{base}?force=true")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "delete without nonce");

    let r = sim
        .post(&format!("{base}/metadata/ctl.note"), json!({"value": "x"}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "metadata is not lease-gated"
    );

    let r = sim.post_nonce(&format!("{base}/stop"), None, &nonce).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = sim
        .post_nonce(&format!("{base}/lease"), Some(json!({"ttl": 120})), &nonce)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.body["data"]["nonce"],
        nonce.as_str(),
        "refresh keeps the nonce"
    );

    let r = sim.delete(&format!("{base}/lease")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = sim
        .send(
            Method::DELETE,
            &format!("{base}/lease"),
            None,
            Some(&format!("Bearer {TOKEN}")),
            Some(&nonce),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        sim.get(&format!("{base}/lease")).await.status,
        StatusCode::NOT_FOUND
    );

    // A lease from create expires on the simulated clock.
    let r = sim
        .post(
            "/v1/apps/oc-lease/machines",
            json!({"config": {"image": "img:1"}, "lease_ttl": 30}),
        )
        .await;
    let id2 = r.body["id"].as_str().expect("id").to_string();
    assert!(r.body["nonce"].is_string());
    let r = sim
        .post_empty(&format!("/v1/apps/oc-lease/machines/{id2}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    sim.advance(31.0).await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-lease/machines/{id2}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn metadata_endpoints_and_list_filters() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-meta").await;
    let a = sim
        .machine(
            "oc-meta",
            None,
            json!({"ctl.customer": "c1", "ctl.role": "gateway"}),
        )
        .await;
    sim.machine(
        "oc-meta",
        None,
        json!({"ctl.customer": "c1", "ctl.role": "spare"}),
    )
    .await;
    sim.machine(
        "oc-meta",
        None,
        json!({"ctl.customer": "c2", "ctl.role": "gateway"}),
    )
    .await;
    let r = sim
        .get("/v1/apps/oc-meta/machines?metadata.ctl.customer=c1&metadata.ctl.role=gateway")
        .await;
    let hits = r.body.as_array().expect("list");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["id"], a["id"]);
    let r = sim
        .get("/v1/apps/oc-meta/machines?metadata.ctl.customer=c1")
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(2));
    let r = sim
        .get("/v1/apps/oc-meta/machines?state=started&summary=true")
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(3));
    assert_eq!(r.body[0]["events"], json!([]));
    assert!(r.body[0]["config"]["metadata"]["ctl.customer"].is_string());
    let r = sim.get("/v1/apps/oc-meta/machines?region=ams").await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(0));

    let id = a["id"].as_str().expect("id");
    let base = format!("/v1/apps/oc-meta/machines/{id}/metadata");
    let r = sim
        .patch(
            &base,
            json!({"metadata": {"ctl.gen": "2", "ctl.role": null}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = sim.get(&base).await;
    assert_eq!(r.body, json!({"ctl.customer": "c1", "ctl.gen": "2"}));
    let r = sim.get(&format!("{base}/ctl.gen")).await;
    assert_eq!(r.body, json!({"value": "2"}));
    let r = sim.delete(&format!("{base}/ctl.gen")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        sim.get(&format!("{base}/ctl.gen")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = sim
        .put(
            &base,
            json!({"metadata": {"only": "this"}, "machine_version": "stale"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = sim.put(&base, json!({"metadata": {"only": "this"}})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.get(&base).await.body, json!({"only": "this"}));
}

#[tokio::test]
async fn org_scan_pages_by_updated_at_and_filters_by_updated_after() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-scan-a").await;
    sim.app("oc-scan-b").await;
    let mut ids = Vec::new();
    for app in [
        "oc-scan-a",
        "oc-scan-b",
        "oc-scan-a",
        "oc-scan-b",
        "oc-scan-a",
    ] {
        let m = sim.machine(app, None, json!({"ctl.customer": app})).await;
        ids.push(m["id"].as_str().expect("id").to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orgs/{ORG}/machines?limit=2&cursor={c}"),
            None => format!("/v1/orgs/{ORG}/machines?limit=2"),
        };
        let r = sim.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        pages += 1;
        let page = r.body["machines"].as_array().expect("machines").clone();
        assert!(page.len() <= 2);
        for m in &page {
            assert!(m["app_name"]
                .as_str()
                .is_some_and(|a| a.starts_with("oc-scan-")));
            assert_eq!(m["config"]["metadata"]["ctl.customer"], m["app_name"]);
            seen.push((
                m["updated_at"].as_str().unwrap_or_default().to_string(),
                m["id"].as_str().unwrap_or_default().to_string(),
            ));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not terminate");
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "ordered by (updated_at, id)");
    let mut got: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);

    // Only what changed after the mark comes back.
    let mark = sim.get("/_sim/clock").await.body["now"]
        .as_str()
        .expect("now")
        .to_string();
    sim.advance(5.0).await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-scan-b/machines/{}/stop", ids[1]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = sim
        .get(&format!(
            "/v1/orgs/{ORG}/machines?updated_after={}",
            mark.replace('+', "%2B")
        ))
        .await;
    let changed: Vec<&str> = r.body["machines"]
        .as_array()
        .expect("machines")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(changed, vec![ids[1].as_str()]);
    let r = sim
        .get(&format!("/v1/orgs/{ORG}/machines?updated_after=yesterday"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn volumes_extend_grows_only_and_names_repeat() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-vol").await;
    let a = sim.volume("oc-vol").await;
    let b = sim.volume("oc-vol").await;
    assert_ne!(a, b, "names are not unique");
    let r = sim
        .post(
            "/v1/apps/oc-vol/volumes",
            json!({"name": "data", "region": "iad"}),
        )
        .await;
    assert_eq!(r.body["size_gb"], 3, "default size");
    assert_eq!(r.body["encrypted"], true);
    let r = sim
        .post(
            "/v1/apps/oc-vol/volumes",
            json!({"name": "big", "size_gb": 501}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = sim
        .put(
            &format!("/v1/apps/oc-vol/volumes/{a}/extend"),
            json!({"size_gb": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["volume"]["size_gb"], 5);
    assert_eq!(r.body["needs_restart"], false);
    let r = sim
        .put(
            &format!("/v1/apps/oc-vol/volumes/{a}/extend"),
            json!({"size_gb": 4}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = sim
        .put(
            &format!("/v1/apps/oc-vol/volumes/{a}"),
            json!({"snapshot_retention": 10}),
        )
        .await;
    assert_eq!(r.body["snapshot_retention"], 10);
    let r = sim.get("/v1/apps/oc-vol/volumes").await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn exec_needs_a_started_machine() {
    let sim = TestSim::start(20.0).await;
    sim.app("oc-exec").await;
    let m = sim.machine("oc-exec", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let path = format!("/v1/apps/oc-exec/machines/{id}/exec");
    let r = sim.post(&path, json!({"command": ["true"]})).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    sim.advance(60.0).await;
    let r = sim
        .post(&path, json!({"cmd": "openclaw status", "timeout": 5}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["exit_code"], 0);
    assert_eq!(r.body["stdout"], "");
}

struct ThrottleStarts;

impl fly_sim::RequestHook for ThrottleStarts {
    fn before(&self, req: &fly_sim::RequestInfo) -> Option<axum::response::Response> {
        use axum::response::IntoResponse;
        (req.route.ends_with("/start") && req.machine_id.is_some()).then(|| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": "rate limit exceeded"})),
            )
                .into_response()
        })
    }
}

#[tokio::test]
async fn request_hooks_can_answer_instead_of_the_handler() {
    let mut config = SimConfig::new(TOKEN, ORG);
    config.latency = LatencyModel::spec_defaults().scaled(0.0);
    config.hooks.push(std::sync::Arc::new(ThrottleStarts));
    let sim = TestSim::start_with(config).await;
    sim.app("oc-hook").await;
    let m = sim.machine("oc-hook", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-hook/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.request_id.is_some());
    let r = sim
        .post_empty(&format!("/v1/apps/oc-hook/machines/{id}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let calls = sim.get("/_sim/calls").await;
    assert_eq!(
        calls.body["POST /v1/apps/{app}/machines/{id}/start"]["statuses"]["429"],
        1
    );
}
