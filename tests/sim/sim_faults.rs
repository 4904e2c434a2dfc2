//! Rate limits (spec §4) and fault injection (spec §6) over real HTTP.

use openclaws_testkit::sim::{error_text, TestSim};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

fn machine_of<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["machines"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["id"] == id))
        .expect("machine in /_sim/state")
}

async fn count_live(sim: &TestSim, kind: &str, app: &str) -> usize {
    let r = sim.get(&format!("/v1/apps/{app}/{kind}")).await;
    assert_eq!(r.status, StatusCode::OK, "{kind}: {:?}", r.body);
    r.body.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn rapid_starts_are_limited_and_rapid_gets_are_not() {
    let sim = TestSim::start_limited(0.0).await;
    sim.app("oc-rl").await;
    let m = sim.machine("oc-rl", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = sim
            .raw(
                Method::POST,
                &format!("/v1/apps/oc-rl/machines/{id}/start"),
                None,
            )
            .await
            .expect("start");
        statuses.push(r);
    }
    let limited: Vec<_> = statuses
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!limited.is_empty(), "{statuses:?}");
    assert_eq!(limited[0].1.as_deref(), Some("1"));
    assert_eq!(
        serde_json::from_str::<Value>(&limited[0].2).expect("json"),
        json!({"error": "rate limit exceeded"})
    );
    for _ in 0..4 {
        let r = sim.get(&format!("/v1/apps/oc-rl/machines/{id}")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(
        stats.body["rate_limited"]["POST /v1/apps/{app}/machines/{id}/start"],
        json!(limited.len())
    );
    assert_eq!(
        stats.body["calls"]["POST /v1/apps/{app}/machines/{id}/start"]["statuses"]["429"],
        json!(limited.len())
    );

    sim.advance(5.0).await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-rl/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "bucket refills on the sim clock");
}

/// Fires 5 rapid starts; the last 429 seen, if any.
async fn hit(sim: &TestSim, start: String) -> Option<(StatusCode, Option<String>, String)> {
    let mut last = None;
    for _ in 0..5 {
        let r = sim.raw(Method::POST, &start, None).await.expect("start");
        if r.0 == StatusCode::TOO_MANY_REQUESTS {
            last = Some(r);
        }
    }
    last
}

#[tokio::test]
async fn retry_after_is_configurable_and_limits_can_be_switched_off() {
    let sim = TestSim::start_limited(0.0).await;
    sim.app("oc-ra").await;
    let m = sim.machine("oc-ra", None, json!({})).await;
    let start = format!(
        "/v1/apps/oc-ra/machines/{}/start",
        m["id"].as_str().expect("id")
    );
    let r = sim
        .control(
            Method::POST,
            "/_sim/rate-limits",
            Some(json!({"retry_after": "absent"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let limited = hit(&sim, start.clone()).await.expect("a 429");
    assert_eq!(limited.1, None, "Retry-After absent");

    sim.control(
        Method::POST,
        "/_sim/rate-limits",
        Some(json!({"retry_after": 0.5})),
    )
    .await;
    let limited = hit(&sim, start.clone()).await.expect("a 429");
    assert_eq!(limited.1.as_deref(), Some("0.5"));

    sim.control(
        Method::POST,
        "/_sim/rate-limits",
        Some(json!({"enabled": false})),
    )
    .await;
    assert!(hit(&sim, start).await.is_none(), "limits off");
}

#[tokio::test]
async fn lost_after_commit_commits_every_create() {
    let sim = TestSim::start(0.0).await;
    sim.fault(
        json!({"method": "POST", "path": "^/v1/apps$", "kind": "lost_after_commit", "count": 1}),
    )
    .await;
    let r = sim.post("/v1/apps", json!({"name": "oc-lost"})).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(sim.get("/v1/apps/oc-lost").await.status, StatusCode::OK);

    sim.fault(json!({"method": "POST", "path": "/volumes$", "kind": "lost_after_commit", "status": 504, "count": 1}))
        .await;
    let r = sim
        .post(
            "/v1/apps/oc-lost/volumes",
            json!({"name": "data", "region": "iad"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(count_live(&sim, "volumes", "oc-lost").await, 1);

    sim.fault(json!({"method": "POST", "path": "/machines$", "kind": "lost_after_commit", "drop": true, "count": 1}))
        .await;
    let r = sim
        .raw(
            Method::POST,
            "/v1/apps/oc-lost/machines",
            Some(json!({"config": {"image": "img:1"}})),
        )
        .await;
    assert!(r.is_err(), "connection dropped: {r:?}");
    assert_eq!(count_live(&sim, "machines", "oc-lost").await, 1);
    let list = sim.get("/v1/apps/oc-lost/machines").await;
    let id = list.body[0]["id"].as_str().expect("id").to_string();

    sim.fault(json!({"method": "POST", "path": "/machines/[0-9a-f]+$", "kind": "lost_after_commit", "count": 1}))
        .await;
    let before = list.body[0]["instance_id"].clone();
    let r = sim
        .post(
            &format!("/v1/apps/oc-lost/machines/{id}"),
            json!({"config": {"image": "img:2"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let m = sim.get(&format!("/v1/apps/oc-lost/machines/{id}")).await;
    assert_ne!(m.body["instance_id"], before, "update committed");
    assert_eq!(m.body["config"]["image"], "img:2");

    sim.fault(json!({"method": "DELETE", "kind": "lost_after_commit", "count": 1}))
        .await;
    let r = sim
        .delete(&format!("/v1/apps/oc-lost/machines/{id}?force=true"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let m = sim.get(&format!("/v1/apps/oc-lost/machines/{id}")).await;
    assert!(
        m.status == StatusCode::NOT_FOUND || m.body["state"] == "destroying",
        "delete committed: {:?}",
        m.body
    );

    sim.fault(json!({"method": "POST", "path": "/ip_assignments$", "kind": "lost_after_commit", "count": 1}))
        .await;
    let r = sim
        .post("/v1/apps/oc-lost/ip_assignments", json!({"type": "v6"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let ips = sim.get("/v1/apps/oc-lost/ip_assignments").await;
    assert_eq!(ips.body["ips"].as_array().map(Vec::len), Some(1));

    sim.fault(json!({"method": "POST", "path": "/certificates/acme$", "kind": "lost_after_commit", "count": 1}))
        .await;
    let r = sim
        .post(
            "/v1/apps/oc-lost/certificates/acme",
            json!({"hostname": "lost.openclaws.biz"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let c = sim
        .get("/v1/apps/oc-lost/certificates/lost.openclaws.biz")
        .await;
    assert_eq!(c.status, StatusCode::OK);

    let faults = sim.control(Method::GET, "/_sim/faults", None).await;
    let rules = faults.body["faults"].as_array().expect("rules");
    assert_eq!(rules.len(), 7);
    assert!(rules.iter().all(|r| r["hits"] == 1 && r["remaining"] == 0));
}

#[tokio::test]
async fn timeout408_with_and_without_commit() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-408").await;
    sim.fault(json!({"method": "POST", "path": "/machines$", "kind": "timeout408", "commit": false, "count": 1}))
        .await;
    let r = sim
        .post(
            "/v1/apps/oc-408/machines",
            json!({"config": {"image": "i"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    assert!(error_text(&r).starts_with("deadline_exceeded"));
    assert_eq!(count_live(&sim, "machines", "oc-408").await, 0);

    sim.fault(json!({"method": "POST", "path": "/machines$", "kind": "timeout408", "commit": true, "count": 1}))
        .await;
    let r = sim
        .post(
            "/v1/apps/oc-408/machines",
            json!({"config": {"image": "i"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(count_live(&sim, "machines", "oc-408").await, 1);
}

#[tokio::test]
async fn errors_rate_limit_bursts_region_full_and_revoked_tokens() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-err").await;
    sim.fault(json!({"method": "POST", "path": "/volumes$", "kind": "error", "status": 502, "html": true, "count": 1}))
        .await;
    let r = sim
        .post("/v1/apps/oc-err/volumes", json!({"name": "data"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.body.as_str().is_some_and(|t| t.contains("<html>")));
    assert_eq!(
        count_live(&sim, "volumes", "oc-err").await,
        0,
        "nothing committed"
    );

    sim.fault(json!({"path": "/oc-err", "kind": "rate_limit", "retry_after": 3, "count": 2}))
        .await;
    for _ in 0..2 {
        let r = sim
            .raw(Method::GET, "/v1/apps/oc-err", None)
            .await
            .expect("get");
        assert_eq!(r.0, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.1.as_deref(), Some("3"));
    }
    assert_eq!(sim.get("/v1/apps/oc-err").await.status, StatusCode::OK);

    sim.fault(json!({"method": "POST", "path": "/machines$", "app": "oc-err", "kind": "region_full", "count": 1}))
        .await;
    let r = sim
        .post(
            "/v1/apps/oc-err/machines",
            json!({"config": {"image": "i"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.body["status"], "insufficient_capacity");

    sim.fault(json!({"kind": "token_revoked", "count": 1}))
        .await;
    let r = sim.get("/v1/apps/oc-err").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sim.get("/v1/apps/oc-err").await.status, StatusCode::OK);

    let r = sim.control(Method::DELETE, "/_sim/faults", None).await;
    assert_eq!(r.body["removed"], 4);
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-slow").await;
    sim.fault(json!({"method": "GET", "path": "^/v1/apps/oc-slow$", "kind": "latency", "delay_ms": 300, "count": 1}))
        .await;
    let began = std::time::Instant::now();
    assert_eq!(sim.get("/v1/apps/oc-slow").await.status, StatusCode::OK);
    assert!(began.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn list_lag_and_empty_lists() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-lag").await;
    sim.fault(
        json!({"method": "GET", "path": "/(machines|volumes)$", "kind": "list_lag", "seconds": 2}),
    )
    .await;
    sim.volume("oc-lag").await;
    sim.machine("oc-lag", None, json!({})).await;
    assert_eq!(count_live(&sim, "machines", "oc-lag").await, 0, "lagging");
    assert_eq!(count_live(&sim, "volumes", "oc-lag").await, 0, "lagging");
    sim.advance(3.0).await;
    assert_eq!(count_live(&sim, "machines", "oc-lag").await, 1);
    assert_eq!(count_live(&sim, "volumes", "oc-lag").await, 1);

    sim.control(Method::DELETE, "/_sim/faults", None).await;
    sim.fault(json!({"method": "GET", "path": "/machines$", "kind": "empty_list", "count": 2}))
        .await;
    assert_eq!(count_live(&sim, "machines", "oc-lag").await, 0);
    assert_eq!(count_live(&sim, "machines", "oc-lag").await, 0);
    assert_eq!(count_live(&sim, "machines", "oc-lag").await, 1);
}

#[tokio::test]
async fn stuck_machines_stay_put_until_released() {
    let sim = TestSim::start(20.0).await;
    sim.app("oc-stuck").await;
    let m = sim.machine("oc-stuck", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let r = sim
        .control(
            Method::POST,
            &format!("/_sim/machines/{id}/stuck"),
            Some(json!({"state": "created"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    sim.advance(3600.0).await;
    assert_eq!(sim.state_of("oc-stuck", id).await, "created");
    let r = sim
        .get(&format!(
            "/v1/apps/oc-stuck/machines/{id}/wait?state=started&timeout=1"
        ))
        .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    sim.control(Method::DELETE, &format!("/_sim/machines/{id}/stuck"), None)
        .await;
    assert_eq!(sim.state_of("oc-stuck", id).await, "started");

    sim.control(
        Method::POST,
        &format!("/_sim/machines/{id}/stuck"),
        Some(json!({"state": "destroying"})),
    )
    .await;
    let r = sim
        .delete(&format!("/v1/apps/oc-stuck/machines/{id}?force=true"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    sim.advance(600.0).await;
    assert_eq!(sim.state_of("oc-stuck", id).await, "destroying");
}

#[tokio::test]
async fn unreachable_hosts_answer_from_cache_and_refuse_host_work() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-host").await;
    let vol = sim.volume("oc-host").await;
    let m = sim.machine("oc-host", Some(&vol), json!({})).await;
    let id = m["id"].as_str().expect("id");
    let r = sim
        .control(
            Method::POST,
            &format!("/_sim/machines/{id}/unreachable"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let m = sim.get(&format!("/v1/apps/oc-host/machines/{id}")).await;
    assert_eq!(m.body["host_status"], "unreachable");
    assert!(m.body["config"].is_null());
    assert_eq!(
        m.body["incomplete_config"]["image"],
        "registry.fly.io/openclaw:1"
    );
    let r = sim
        .post_empty(&format!("/v1/apps/oc-host/machines/{id}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(error_text(&r).contains("host unreachable"));
    let v = sim.get(&format!("/v1/apps/oc-host/volumes/{vol}")).await;
    assert_eq!(v.body["host_status"], "unreachable");

    sim.control(
        Method::DELETE,
        &format!("/_sim/machines/{id}/unreachable"),
        None,
    )
    .await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-host/machines/{id}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_lease_blocks_mutations_until_it_expires() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-fl").await;
    let m = sim.machine("oc-fl", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let r = sim
        .control(
            Method::POST,
            &format!("/_sim/machines/{id}/foreign-lease"),
            Some(json!({"seconds": 30, "owner": "alice@example.com"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = sim
        .post_empty(&format!("/v1/apps/oc-fl/machines/{id}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("alice@example.com")));
    let r = sim
        .post(
            &format!("/v1/apps/oc-fl/machines/{id}/lease"),
            json!({"ttl": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    sim.advance(31.0).await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-fl/machines/{id}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn crash_loops_grow_the_restart_count_and_launch_failures_vanish() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-loop").await;
    let m = sim.machine("oc-loop", None, json!({})).await;
    let id = m["id"].as_str().expect("id").to_string();
    sim.advance(1.0).await;
    assert_eq!(sim.state_of("oc-loop", &id).await, "started");
    let r = sim
        .control(
            Method::POST,
            &format!("/_sim/machines/{id}/crash-loop"),
            None,
        )
        .await;
    assert_eq!(r.body["restart_count"], 1);
    sim.advance(60.0).await;
    let state = sim.control(Method::GET, "/_sim/state", None).await;
    let count = machine_of(&state.body, &id)["restart_count"]
        .as_u64()
        .expect("restart_count");
    assert!(count >= 4, "restart_count {count}");
    let events = sim
        .get(&format!("/v1/apps/oc-loop/machines/{id}/events?limit=50"))
        .await;
    let exits = events
        .body
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "exit")
        .count();
    assert!(exits >= 4, "exit events {exits}");

    let m = sim.machine("oc-loop", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let r = sim
        .control(
            Method::POST,
            &format!("/_sim/machines/{id}/fail"),
            Some(json!({"launch_failed": true})),
        )
        .await;
    assert_eq!(r.body["state"], "launch_failed");
    sim.advance(5.0).await;
    let r = sim.get(&format!("/v1/apps/oc-loop/machines/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_full_region_refuses_creates_and_starts() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-full").await;
    let m = sim.machine("oc-full", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    sim.post_empty(&format!("/v1/apps/oc-full/machines/{id}/stop"))
        .await;
    sim.advance(5.0).await;
    let r = sim
        .control(
            Method::POST,
            "/_sim/regions/iad",
            Some(json!({"full": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = sim
        .post(
            "/v1/apps/oc-full/machines",
            json!({"region": "iad", "config": {"image": "i"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(r.body["status"], "insufficient_capacity");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-full/machines/{id}/start"))
        .await;
    assert_eq!(r.body["status"], "insufficient_capacity");
    let r = sim
        .post(
            "/v1/apps/oc-full/volumes",
            json!({"name": "data", "region": "iad"}),
        )
        .await;
    assert_eq!(r.body["status"], "volume_placement_capacity");
    let r = sim
        .post(
            "/v1/apps/oc-full/machines",
            json!({"region": "ord", "config": {"image": "i"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "other regions have room");
    sim.control(
        Method::POST,
        "/_sim/regions/iad",
        Some(json!({"full": false})),
    )
    .await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-full/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn host_migration_forks_the_volume_to_a_new_id() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-mig").await;
    let vol = sim.volume("oc-mig").await;
    let m = sim.machine("oc-mig", Some(&vol), json!({})).await;
    let id = m["id"].as_str().expect("id");
    sim.advance(1.0).await;
    let r = sim
        .control(Method::POST, &format!("/_sim/machines/{id}/migrate"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let new_vol = r.body["new_volume"]
        .as_str()
        .expect("new volume")
        .to_string();
    assert_ne!(new_vol, vol);
    assert_ne!(r.body["new_host"], r.body["old_host"]);
    sim.advance(2.0).await;
    let m = sim.get(&format!("/v1/apps/oc-mig/machines/{id}")).await;
    assert_eq!(m.body["state"], "started");
    assert_eq!(m.body["config"]["mounts"][0]["volume"], new_vol.as_str());
    let old = sim.get(&format!("/v1/apps/oc-mig/volumes/{vol}")).await;
    assert_eq!(old.body["state"], "pending_destroy");
    let new = sim.get(&format!("/v1/apps/oc-mig/volumes/{new_vol}")).await;
    assert_eq!(new.body["attached_machine_id"], id);
    assert!(m.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["type"] == "migrate"));
}

#[tokio::test]
async fn a_fresh_machine_read_by_id_is_not_found_during_list_lag() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-fresh").await;
    let old = sim.machine("oc-fresh", None, json!({})).await;
    let old_id = old["id"].as_str().expect("id").to_string();
    sim.advance(5.0).await;
    sim.fault(json!({"method": "GET", "path": "/machines", "kind": "list_lag", "seconds": 2}))
        .await;
    let m = sim.machine("oc-fresh", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let r = sim.get(&format!("/v1/apps/oc-fresh/machines/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(error_text(&r), "not_found: machine not found");
    let r = sim
        .get(&format!("/v1/apps/oc-fresh/machines/{old_id}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "an older machine is readable");
    // Mutations see the machine at once: only reads lag.
    let r = sim
        .post_empty(&format!("/v1/apps/oc-fresh/machines/{id}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    sim.advance(3.0).await;
    let r = sim.get(&format!("/v1/apps/oc-fresh/machines/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "visible once the lag has passed");
}

#[tokio::test]
async fn slow_wait_stalls_then_times_out_and_touches_nothing_else() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-wait").await;
    let m = sim.machine("oc-wait", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    sim.fault(json!({"kind": "slow_wait", "delay_ms": 400, "count": 1}))
        .await;
    // Other requests are not matched (and do not use up the rule).
    assert_eq!(sim.state_of("oc-wait", id).await, "started");
    let began = std::time::Instant::now();
    let r = sim
        .get(&format!(
            "/v1/apps/oc-wait/machines/{id}/wait?state=started&timeout=10"
        ))
        .await;
    assert!(began.elapsed() >= Duration::from_millis(400));
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT, "{:?}", r.body);
    assert!(
        error_text(&r).starts_with("deadline_exceeded"),
        "{:?}",
        r.body
    );
    let r = sim
        .get(&format!(
            "/v1/apps/oc-wait/machines/{id}/wait?state=started&timeout=10"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "one slow wait only: {:?}", r.body);
}

#[tokio::test]
async fn growing_a_machine_in_a_full_region_is_a_capacity_conflict() {
    let sim = TestSim::start(0.0).await;
    sim.app("oc-grow").await;
    let m = sim.machine("oc-grow", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let path = format!("/v1/apps/oc-grow/machines/{id}");
    let mut config = m["config"].clone();
    sim.control(
        Method::POST,
        "/_sim/regions/iad",
        Some(json!({"full": true})),
    )
    .await;
    // The same size (an env change) still fits; more memory does not.
    config["env"] = json!({"A": "1"});
    let r = sim.post(&path, json!({"config": config})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    config["guest"]["memory_mb"] = json!(4096);
    let r = sim.post(&path, json!({"config": config})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["status"], "insufficient_capacity");
    assert!(error_text(&r).contains("could not reserve resource"));
    sim.control(
        Method::POST,
        "/_sim/regions/iad",
        Some(json!({"full": false})),
    )
    .await;
    let r = sim.post(&path, json!({"config": config})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // As a fault rule on the update route: 409 by default.
    sim.fault(json!({"method": "POST", "path": "/machines/[0-9a-f]+$", "kind": "region_full", "count": 1}))
        .await;
    let r = sim.post(&path, json!({"config": config})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.body["status"], "insufficient_capacity");
}

#[tokio::test]
async fn a_per_token_cap_limits_every_action_and_is_off_by_default() {
    let sim = TestSim::start_limited(0.0).await;
    sim.app("oc-cap").await;
    let limits = sim.control(Method::GET, "/_sim/rate-limits", None).await;
    assert_eq!(limits.body["per_token"], Value::Null, "off by default");
    // Reads of different apps draw from different per-action buckets: 30 go through.
    for i in 0..30 {
        let r = sim.get(&format!("/v1/apps/oc-cap-{i}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    let r = sim
        .control(
            Method::POST,
            "/_sim/rate-limits",
            Some(json!({"per_token": {"per_second": 0.2, "burst": 5}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(sim.get(&format!("/v1/apps/oc-other-{i}")).await.status);
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(limited, 3, "a burst of 5 across actions: {statuses:?}");
    let stats = sim.control(Method::GET, "/_sim/stats", None).await;
    assert_eq!(stats.body["rate_limited_total"], 3);
    sim.advance(10.0).await;
    assert_eq!(
        sim.get("/v1/apps/oc-cap").await.status,
        StatusCode::OK,
        "refills on the sim clock"
    );
    let r = sim
        .control(
            Method::POST,
            "/_sim/rate-limits",
            Some(json!({"per_token": null})),
        )
        .await;
    assert_eq!(r.body["per_token"], Value::Null, "switched off again");
    for i in 0..8 {
        assert_eq!(
            sim.get(&format!("/v1/apps/oc-again-{i}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
}
