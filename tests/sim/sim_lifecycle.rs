//! The whole life of one customer's resources against the simulator, over real HTTP.

use openclaws_testkit::db::eventually;
use openclaws_testkit::sim::{error_text, TestSim};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn full_lifecycle_app_volume_machine_update_stop_start_destroy_teardown() {
    let sim = TestSim::start(0.05).await;

    let r = sim
        .post(
            "/v1/apps?wait=true",
            json!({"app_name": "oc-life", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["name"], "oc-life");
    assert_eq!(r.body["organization"]["slug"], "personal");
    assert_eq!(r.body["id"].as_str().map(str::len), Some(16));
    assert!(r.request_id.as_deref().is_some_and(|id| id.len() == 26));

    let vol = sim.volume("oc-life").await;
    assert!(vol.starts_with("vol_") && vol.len() == 20, "{vol}");
    let r = sim.get(&format!("/v1/apps/oc-life/volumes/{vol}")).await;
    assert_eq!(r.body["state"], "created");
    let zone = r.body["zone"].as_str().unwrap_or_default().to_string();
    assert!(!zone.is_empty());

    let m = sim
        .machine("oc-life", Some(&vol), json!({"ctl.customer": "c1"}))
        .await;
    let id = m["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 14);
    assert_eq!(m["state"], "created");
    assert_eq!(m["region"], "iad");
    let v1 = m["instance_id"].as_str().expect("instance id").to_string();
    assert_eq!(v1.len(), 26);

    let r = sim.get(&format!("/v1/apps/oc-life/volumes/{vol}")).await;
    assert_eq!(r.body["attached_machine_id"], id.as_str());

    let w = sim.wait_for("oc-life", &id, "started").await;
    assert_eq!(w["state"], "started");
    assert_eq!(w["version"], v1.as_str());

    // Update: full replace with optimistic concurrency; new version returned synchronously.
    let mut config = m["config"].clone();
    config["env"] = json!({"NODE_ENV": "production"});
    let r = sim
        .post(
            &format!("/v1/apps/oc-life/machines/{id}"),
            json!({"config": config, "current_version": v1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "replacing");
    let v2 = r.body["instance_id"].as_str().expect("v2").to_string();
    assert_ne!(v1, v2);
    let r = sim
        .post(
            &format!("/v1/apps/oc-life/machines/{id}"),
            json!({"config": config, "current_version": v1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "stale current_version");
    let w = sim
        .get(&format!(
            "/v1/apps/oc-life/machines/{id}/wait?state=started&version={v2}&timeout=30"
        ))
        .await;
    assert_eq!(w.status, StatusCode::OK, "{:?}", w.body);
    assert_eq!(w.body["version"], v2.as_str());

    let r = sim
        .get(&format!("/v1/apps/oc-life/machines/{id}/versions"))
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(2));
    assert_eq!(r.body[0]["version"], v2.as_str());

    // Stop → stopped, then start once the reap lag passed.
    let r = sim
        .post(
            &format!("/v1/apps/oc-life/machines/{id}/stop"),
            json!({"timeout": "5s"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    sim.wait_for("oc-life", &id, "stopped").await;
    let r = sim
        .get(&format!("/v1/apps/oc-life/machines/{id}/events?limit=1"))
        .await;
    assert_eq!(
        (
            &r.body[0]["type"],
            &r.body[0]["status"],
            &r.body[0]["source"]
        ),
        (&json!("stop"), &json!("stopped"), &json!("user"))
    );
    sim.advance(1.0).await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-life/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["previous_state"], "stopped");
    sim.wait_for("oc-life", &id, "started").await;

    // Destroy: refused while running, forced works; the volume stays bound for the release lag.
    let r = sim.delete(&format!("/v1/apps/oc-life/machines/{id}")).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = sim
        .delete(&format!("/v1/apps/oc-life/machines/{id}?force=true"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let w = sim.wait_for("oc-life", &id, "destroyed").await;
    assert_eq!(w["state"], "destroyed");
    let r = sim.get(&format!("/v1/apps/oc-life/machines/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(error_text(&r), "not_found: machine not found");
    let r = sim
        .get("/v1/apps/oc-life/machines?include_deleted=true")
        .await;
    assert_eq!(r.body[0]["state"], "destroyed");
    let r = sim.get("/v1/apps/oc-life/machines").await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(0));

    let r = sim.delete(&format!("/v1/apps/oc-life/volumes/{vol}")).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        error_text(&r),
        format!("failed_precondition: volume is currently bound to machine: {id}")
    );
    sim.advance(10.0).await;
    let r = sim.delete(&format!("/v1/apps/oc-life/volumes/{vol}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "destroyed");
    let r = sim.get("/v1/apps/oc-life/volumes").await;
    assert_eq!(r.body[0]["state"], "pending_destroy");

    // App delete is accepted, then the app disappears.
    let r = sim.delete("/v1/apps/oc-life").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    eventually(std::time::Duration::from_secs(5), "app gone", || async {
        (sim.get("/v1/apps/oc-life").await.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let r = sim.get("/v1/apps?org_slug=personal").await;
    assert_eq!(r.body["total_apps"], 0);

    // The control plane still remembers everything.
    let r = sim.get("/_sim/state").await;
    assert_eq!(r.body["deleted_apps"][0]["name"], "oc-life");
    assert_eq!(r.body["machines"][0]["state"], "destroyed");
    let calls = sim.get("/_sim/calls").await;
    assert_eq!(calls.body["POST /v1/apps/{app}/machines"]["total"], 1);
    assert_eq!(
        calls.body["DELETE /v1/apps/{app}/machines/{id}"]["statuses"]["412"],
        1
    );
}

#[tokio::test]
async fn skip_launch_prepares_to_stopped_and_events_are_newest_first() {
    let sim = TestSim::start(20.0).await;
    sim.app("oc-skip").await;
    let r = sim
        .post(
            "/v1/apps/oc-skip/machines",
            json!({"config": {"image": "img:1"}, "skip_launch": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = r.body["id"].as_str().expect("id").to_string();
    assert_eq!(sim.state_of("oc-skip", &id).await, "created");
    sim.advance(60.0).await;
    assert_eq!(sim.state_of("oc-skip", &id).await, "stopped");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-skip/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    sim.advance(60.0).await;
    assert_eq!(sim.state_of("oc-skip", &id).await, "started");
    let r = sim
        .get(&format!("/v1/apps/oc-skip/machines/{id}/events?limit=2"))
        .await;
    let events = r.body.as_array().expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["status"], "started");
    assert!(events[0]["timestamp"].as_i64() >= events[1]["timestamp"].as_i64());
}

#[tokio::test]
async fn app_delete_guard_and_force_cascade() {
    let sim = TestSim::start(0.05).await;
    sim.app("oc-cascade").await;
    let vol = sim.volume("oc-cascade").await;
    let m = sim.machine("oc-cascade", Some(&vol), json!({})).await;
    let id = m["id"].as_str().expect("id").to_string();
    sim.wait_for("oc-cascade", &id, "started").await;

    let r = sim.delete("/v1/apps/oc-cascade").await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{:?}", r.body);
    let r = sim.delete("/v1/apps/oc-cascade?force=true").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = sim.get("/v1/apps/oc-cascade/volumes").await;
    assert_eq!(r.body[0]["state"], "pending_destroy");
    sim.advance(5.0).await;
    assert_eq!(
        sim.get("/v1/apps/oc-cascade").await.status,
        StatusCode::NOT_FOUND
    );
    let state = sim.get("/_sim/state").await;
    assert_eq!(state.body["machines"][0]["state"], "destroyed");
    // The name is free again and the new app does not inherit old machines.
    sim.app("oc-cascade").await;
    let r = sim
        .get("/v1/apps/oc-cascade/machines?include_deleted=true")
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(0));
}
