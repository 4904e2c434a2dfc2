//! App secrets, IP assignments, certificates with the Cloudflare-compatible DNS, and the
//! orphan report, over real HTTP.

mod sim_support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sim_support::{error_text, TestSim};

fn machine_of<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["machines"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["id"] == id))
        .expect("machine in /_sim/state")
}

#[tokio::test]
async fn secrets_are_versioned_and_gate_min_secrets_version() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-sec").await;
    let r = sim
        .post(
            "/v1/apps/oc-sec/secrets",
            json!({"values": {"GATEWAY_TOKEN": "s3cret", "OTHER": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["secrets"].as_array().map(Vec::len), Some(2));
    assert!(r.body["secrets"][0].get("value").is_none());
    let r = sim
        .post(
            "/v1/apps/oc-sec/secrets",
            json!({"values": {"OTHER": null}}),
        )
        .await;
    assert_eq!(r.body["version"], 2);
    let r = sim.get("/v1/apps/oc-sec/secrets").await;
    let secrets = r.body["secrets"].as_array().expect("secrets");
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["name"], "GATEWAY_TOKEN");
    assert!(
        secrets[0].get("value").is_none(),
        "values hidden by default"
    );
    assert!(secrets[0]["digest"].as_str().is_some_and(|d| !d.is_empty()));
    let r = sim
        .get("/v1/apps/oc-sec/secrets/GATEWAY_TOKEN?show_secrets=true")
        .await;
    assert_eq!(r.body["value"], "s3cret");
    let r = sim
        .post("/v1/apps/oc-sec/secrets/NEW", json!({"value": "v"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["version"], 3);
    let r = sim.delete("/v1/apps/oc-sec/secrets/NEW").await;
    assert_eq!(r.body["version"], 4);
    assert_eq!(
        sim.delete("/v1/apps/oc-sec/secrets/NEW").await.status,
        StatusCode::NOT_FOUND
    );

    let r = sim
        .post(
            "/v1/apps/oc-sec/machines",
            json!({"config": {"image": "i"}, "min_secrets_version": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(error_text(&r).contains("min_secrets_version"));
    let r = sim
        .post(
            "/v1/apps/oc-sec/machines",
            json!({"config": {"image": "i"}, "min_secrets_version": 4}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = r.body["id"].as_str().expect("id").to_string();
    let state = sim.control(Method::GET, "/_sim/state", None).await;
    assert_eq!(machine_of(&state.body, &id)["secrets_version"], 4);

    sim.post("/v1/apps/oc-sec/secrets", json!({"values": {"A": "1"}}))
        .await;
    let r = sim
        .post(
            &format!("/v1/apps/oc-sec/machines/{id}"),
            json!({"config": {"image": "i"}, "min_secrets_version": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let state = sim.control(Method::GET, "/_sim/state", None).await;
    assert_eq!(machine_of(&state.body, &id)["secrets_version"], 5);
}

#[tokio::test]
async fn ip_assignments() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-ip1").await;
    sim.app("oc-ip2").await;
    let a = sim
        .post("/v1/apps/oc-ip1/ip_assignments", json!({"type": "v6"}))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let b = sim
        .post("/v1/apps/oc-ip1/ip_assignments", json!({"type": "v6"}))
        .await;
    assert_ne!(a.body["ip"], b.body["ip"], "not idempotent");
    let s1 = sim
        .post(
            "/v1/apps/oc-ip1/ip_assignments",
            json!({"type": "shared_v4"}),
        )
        .await;
    let s2 = sim
        .post(
            "/v1/apps/oc-ip2/ip_assignments",
            json!({"type": "shared_v4"}),
        )
        .await;
    assert_eq!(s1.body["ip"], s2.body["ip"]);
    assert_eq!(s1.body["shared"], true);
    let r = sim
        .post("/v1/apps/oc-ip1/ip_assignments", json!({"type": "bogus"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let list = sim.get("/v1/apps/oc-ip1/ip_assignments").await;
    assert_eq!(list.body["ips"].as_array().map(Vec::len), Some(3));
    let ip = a.body["ip"].as_str().expect("ip");
    let r = sim
        .delete(&format!("/v1/apps/oc-ip1/ip_assignments/{ip}"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = sim
        .delete(&format!("/v1/apps/oc-ip1/ip_assignments/{ip}"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let list = sim.get("/v1/apps/oc-ip1/ip_assignments").await;
    assert_eq!(list.body["ips"].as_array().map(Vec::len), Some(2));
}
