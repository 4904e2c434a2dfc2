//! App secrets, IP assignments, certificates with the Cloudflare-compatible DNS, and the
//! orphan report, over real HTTP.

use openclaws_testkit::sim::{error_text, TestSim};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
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

/// The Cloudflare zone id of the seeded zone.
async fn zone_id(sim: &TestSim) -> String {
    let r = sim.get("/client/v4/zones?name=openclaws.biz").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["result_info"]["count"], 1);
    r.body["result"][0]["id"]
        .as_str()
        .expect("zone id")
        .to_string()
}

#[tokio::test]
async fn certificate_issues_once_cloudflare_dns_points_at_the_app() {
    let sim = TestSim::start(1.0).await;
    sim.app("oc-cert").await;
    sim.post("/v1/apps/oc-cert/ip_assignments", json!({"type": "v6"}))
        .await;
    sim.post(
        "/v1/apps/oc-cert/ip_assignments",
        json!({"type": "shared_v4"}),
    )
    .await;
    let host = "gw-1.openclaws.biz";
    let r = sim
        .post(
            "/v1/apps/oc-cert/certificates/acme",
            json!({"hostname": host}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending_validation");
    assert_eq!(r.body["dns_requirements"]["cname"], "oc-cert.fly.dev");
    assert_eq!(
        r.body["dns_requirements"]["aaaa"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        r.body["dns_requirements"]["a"].as_array().map(Vec::len),
        Some(1)
    );
    let r = sim
        .post(
            "/v1/apps/oc-cert/certificates/acme",
            json!({"hostname": host}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = sim
        .post("/v1/apps/oc-cert/certificates", json!({"hostname": host}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body, json!("404 page not found\n"));

    let r = sim
        .post_empty(&format!("/v1/apps/oc-cert/certificates/{host}/check"))
        .await;
    assert_eq!(r.body["status"], "pending_validation");
    assert_eq!(
        r.body["validation_errors"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(r.body["dns_records"]["cname"]
        .as_array()
        .is_some_and(Vec::is_empty));

    let zone = zone_id(&sim).await;
    let r = sim
        .send(
            Method::POST,
            &format!("/client/v4/zones/{zone}/dns_records"),
            Some(json!({"type": "CNAME", "name": "gw-1", "content": "oc-cert.fly.dev", "ttl": 1, "proxied": false})),
            Some("Bearer wrong"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["success"], false);
    let r = sim
        .post(
            &format!("/client/v4/zones/{zone}/dns_records"),
            json!({"type": "CNAME", "name": "gw-1", "content": "oc-cert.fly.dev", "ttl": 1, "proxied": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["result"]["name"], host);
    let record = r.body["result"]["id"]
        .as_str()
        .expect("record id")
        .to_string();
    let r = sim
        .post(
            &format!("/client/v4/zones/{zone}/dns_records"),
            json!({"type": "CNAME", "name": host, "content": "elsewhere.example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "CNAME conflicts");
    let r = sim
        .get(&format!(
            "/client/v4/zones/{zone}/dns_records?name={host}&type=CNAME"
        ))
        .await;
    assert_eq!(r.body["result_info"]["total_count"], 1);

    let r = sim
        .post_empty(&format!("/v1/apps/oc-cert/certificates/{host}/check"))
        .await;
    assert_eq!(r.body["status"], "issuing");
    assert_eq!(r.body["configured"], true);
    sim.advance(11.0).await;
    let r = sim
        .get(&format!("/v1/apps/oc-cert/certificates/{host}"))
        .await;
    assert_eq!(r.body["status"], "active");
    let issued: Vec<&str> = r.body["certificates"][0]["issued"]
        .as_array()
        .expect("issued")
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert_eq!(issued, vec!["ecdsa", "rsa"]);

    let list = sim.get("/v1/apps/oc-cert/certificates?limit=1").await;
    assert_eq!(list.body["total_count"], 1);
    assert!(list.body.get("next_cursor").is_none());

    let r = sim
        .patch(
            &format!("/client/v4/zones/{zone}/dns_records/{record}"),
            json!({"content": "other.fly.dev"}),
        )
        .await;
    assert_eq!(r.body["result"]["content"], "other.fly.dev");
    let r = sim
        .delete(&format!("/client/v4/zones/{zone}/dns_records/{record}"))
        .await;
    assert_eq!(r.body["result"]["id"], record.as_str());
    let r = sim
        .delete(&format!("/v1/apps/oc-cert/certificates/{host}"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = sim
        .get(&format!("/v1/apps/oc-cert/certificates/{host}"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn certificates_stay_pending_without_dns_and_rate_limit_failed_checks() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-pend").await;
    let host = "gw.customer.example";
    let r = sim
        .post(
            "/v1/apps/oc-pend/certificates/acme",
            json!({"hostname": host}),
        )
        .await;
    let target = r.body["dns_requirements"]["acme_challenge"]["target"]
        .as_str()
        .expect("target")
        .to_string();
    sim.advance(3600.0).await;
    let r = sim
        .get(&format!("/v1/apps/oc-pend/certificates/{host}"))
        .await;
    assert_eq!(
        r.body["status"], "pending_validation",
        "no DNS, no progress"
    );
    for _ in 0..5 {
        let r = sim
            .post_empty(&format!("/v1/apps/oc-pend/certificates/{host}/check"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = sim
        .get(&format!("/v1/apps/oc-pend/certificates/{host}"))
        .await;
    assert!(r.body["rate_limited_until"].is_string(), "{:?}", r.body);

    let r = sim
        .control(
            Method::POST,
            "/_sim/dns",
            Some(json!({"type": "CNAME", "name": format!("_acme-challenge.{host}"), "content": target})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = sim
        .post_empty(&format!("/v1/apps/oc-pend/certificates/{host}/check"))
        .await;
    assert_eq!(r.body["status"], "pending_validation", "rate limited");
    sim.advance(3601.0).await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-pend/certificates/{host}/check"))
        .await;
    assert_eq!(r.body["status"], "active", "DNS-01 works without IPs");
}

#[tokio::test]
async fn orphans_report_leftovers_and_counts() {
    let sim = TestSim::start(1.0).await;
    let r = sim.control(Method::GET, "/_sim/orphans", None).await;
    assert_eq!(r.body["count"], 0);

    sim.app("oc-orph").await;
    let vol = sim.volume("oc-orph").await;
    let r = sim.control(Method::GET, "/_sim/orphans", None).await;
    assert_eq!(r.body["count"], 1, "{:?}", r.body);
    assert_eq!(r.body["orphans"][0]["id"], vol.as_str());

    sim.machine("oc-orph", Some(&vol), json!({})).await;
    let r = sim.control(Method::GET, "/_sim/orphans", None).await;
    assert_eq!(r.body["count"], 0, "{:?}", r.body);
    assert_eq!(r.body["apps"]["oc-orph"]["machines"], 1);
    assert_eq!(r.body["apps"]["oc-orph"]["volumes"], 1);

    sim.volume("oc-orph").await;
    sim.machine("oc-orph", None, json!({})).await;
    let r = sim.control(Method::GET, "/_sim/orphans", None).await;
    let kinds: Vec<&str> = r.body["orphans"]
        .as_array()
        .expect("orphans")
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["machine", "volume"], "{:?}", r.body);

    sim.app("oc-gone").await;
    sim.post("/v1/apps/oc-gone/ip_assignments", json!({"type": "v6"}))
        .await;
    sim.post(
        "/v1/apps/oc-gone/certificates/acme",
        json!({"hostname": "gone.openclaws.biz"}),
    )
    .await;
    sim.control(
        Method::POST,
        "/_sim/dns",
        Some(json!({"type": "CNAME", "name": "gone.openclaws.biz", "content": "oc-gone.fly.dev"})),
    )
    .await;
    let r = sim.control(Method::GET, "/_sim/orphans", None).await;
    assert_eq!(r.body["apps"]["oc-gone"]["dns_records"], 1);
    assert_eq!(r.body["apps"]["oc-gone"]["certificates"], 1);
    assert_eq!(
        sim.delete("/v1/apps/oc-gone").await.status,
        StatusCode::ACCEPTED
    );
    let r = sim.control(Method::GET, "/_sim/orphans", None).await;
    let gone: Vec<&str> = r.body["orphans"]
        .as_array()
        .expect("orphans")
        .iter()
        .filter(|o| o["app"] == "oc-gone")
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(gone, vec!["ip", "certificate"], "{:?}", r.body);
    sim.advance(5.0).await;
    let r = sim.control(Method::GET, "/_sim/orphans", None).await;
    assert!(
        r.body["orphans"]
            .as_array()
            .expect("orphans")
            .iter()
            .any(|o| o["kind"] == "dns_record"),
        "a CNAME to a deleted app is an orphan: {:?}",
        r.body
    );
}
