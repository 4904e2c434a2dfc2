//! State guards, waits and crashes (spec §3). Latencies are scaled up (×20) so every transient
//! state lasts long enough to be observed; the clock is advanced to move past them.

use openclaws_testkit::sim::{error_text, TestSim, ORG, TOKEN};
use reqwest::StatusCode;
use serde_json::json;

const SLOW: f64 = 20.0;

async fn started_machine(sim: &TestSim, app: &str) -> String {
    sim.app(app).await;
    let m = sim.machine(app, None, json!({})).await;
    let id = m["id"].as_str().expect("id").to_string();
    sim.advance(60.0).await;
    assert_eq!(sim.state_of(app, &id).await, "started");
    id
}

#[tokio::test]
async fn start_while_created_is_refused() {
    let sim = TestSim::start(SLOW).await;
    sim.app("oc-g1").await;
    let m = sim.machine("oc-g1", None, json!({})).await;
    let id = m["id"].as_str().expect("id");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-g1/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        error_text(&r),
        "failed_precondition: unable to start machine from current state: 'created'"
    );
}

#[tokio::test]
async fn start_while_replacing_or_stopping_is_refused() {
    let sim = TestSim::start(SLOW).await;
    let id = started_machine(&sim, "oc-g2").await;
    let m = sim.get(&format!("/v1/apps/oc-g2/machines/{id}")).await;
    let r = sim
        .post(
            &format!("/v1/apps/oc-g2/machines/{id}"),
            json!({"config": m.body["config"]}),
        )
        .await;
    assert_eq!(r.body["state"], "replacing");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-g2/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        error_text(&r),
        "failed_precondition: unable to start machine from current state: 'replacing'"
    );

    sim.advance(60.0).await;
    assert_eq!(sim.state_of("oc-g2", &id).await, "started");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-g2/machines/{id}/stop"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.state_of("oc-g2", &id).await, "stopping");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-g2/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        error_text(&r),
        "failed_precondition: unable to start machine from current state: 'stopping'"
    );
}

#[tokio::test]
async fn start_during_reap_lag_says_still_active() {
    let sim = TestSim::start(SLOW).await;
    let id = started_machine(&sim, "oc-g3").await;
    sim.post_empty(&format!("/v1/apps/oc-g3/machines/{id}/stop"))
        .await;
    // Stop takes 1 s × 20; the reap lag is 0.5 s × 20 = 10 s after that.
    sim.advance(20.5).await;
    assert_eq!(sim.state_of("oc-g3", &id).await, "stopped");
    let r = sim
        .post_empty(&format!("/v1/apps/oc-g3/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        error_text(&r),
        "failed_precondition: machine still active, refusing to start"
    );
    sim.advance(10.0).await;
    let r = sim
        .post_empty(&format!("/v1/apps/oc-g3/machines/{id}/start"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["previous_state"], "stopped");
    assert_eq!(sim.state_of("oc-g3", &id).await, "starting");
}

#[tokio::test]
async fn delete_running_without_force_is_refused() {
    let sim = TestSim::start(SLOW).await;
    let id = started_machine(&sim, "oc-g4").await;
    let r = sim.delete(&format!("/v1/apps/oc-g4/machines/{id}")).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        error_text(&r),
        "failed_precondition: unable to destroy machine, not currently stopped, suspended, failed or created"
    );
    assert_eq!(sim.state_of("oc-g4", &id).await, "started");
    let r = sim
        .delete(&format!("/v1/apps/oc-g4/machines/{id}?kill=true"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.state_of("oc-g4", &id).await, "destroying");
}

#[tokio::test]
async fn volume_stays_claimed_until_release_lag_passes() {
    let sim = TestSim::start(SLOW).await;
    sim.app("oc-g5").await;
    let vol = sim.volume("oc-g5").await;
    let m = sim.machine("oc-g5", Some(&vol), json!({})).await;
    let first = m["id"].as_str().expect("id").to_string();
    let create_second = || async {
        sim.post(
            "/v1/apps/oc-g5/machines",
            json!({"config": {"image": "img:1", "mounts": [{"volume": vol, "path": "/data"}]}}),
        )
        .await
    };
    let r = create_second().await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        error_text(&r),
        format!("failed_precondition: volume already claimed by machine {first}")
    );
    // Wrong region is refused too.
    let r = sim
        .post(
            "/v1/apps/oc-g5/machines",
            json!({"region": "ams", "config": {"image": "img:1", "mounts": [{"volume": vol, "path": "/data"}]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    sim.delete(&format!("/v1/apps/oc-g5/machines/{first}?force=true"))
        .await;
    sim.advance(41.0).await; // destroyed after 2 s × 20
    let r = sim.get(&format!("/v1/apps/oc-g5/machines/{first}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = create_second().await;
    assert_eq!(
        r.status,
        StatusCode::PRECONDITION_FAILED,
        "still within release lag"
    );
    sim.advance(100.0).await; // release lag 5 s × 20
    let r = create_second().await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn wait_succeeds_times_out_and_reports_failure() {
    let sim = TestSim::start(SLOW).await;
    let id = started_machine(&sim, "oc-g6").await;

    let r = sim
        .get(&format!(
            "/v1/apps/oc-g6/machines/{id}/wait?state=started&timeout=5"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["ok"], true);
    assert!(r.body["event_id"].is_string());

    let began = std::time::Instant::now();
    let version = sim.get(&format!("/v1/apps/oc-g6/machines/{id}")).await.body["instance_id"]
        .as_str()
        .expect("instance id")
        .to_string();
    let r = sim
        .get(&format!(
            "/v1/apps/oc-g6/machines/{id}/wait?state=stopped&timeout=1&version={version}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        error_text(&r),
        "deadline_exceeded: machine did not reach stopped within 1s"
    );
    assert!(began.elapsed() < std::time::Duration::from_secs(5));

    // A wait blocked on a long transition is released by a clock jump.
    sim.post_empty(&format!("/v1/apps/oc-g6/machines/{id}/stop"))
        .await;
    let waiter = {
        let url =
            format!("/v1/apps/oc-g6/machines/{id}/wait?state=stopped&timeout=30&version={version}");
        let base = sim.base.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!("{base}{url}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    sim.advance(30.0).await;
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("waiter released by the clock jump")
        .expect("join")
        .expect("request");
    assert_eq!(status, StatusCode::OK);

    // Ending in `failed` while waiting for `started` is a 400.
    sim.advance(20.0).await;
    let r = sim.post_empty(&format!("/_sim/machines/{id}/fail")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = sim
        .get(&format!(
            "/v1/apps/oc-g6/machines/{id}/wait?state=started&timeout=2"
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_text(&r), "machine failed to reach desired state");
}

#[tokio::test]
async fn wait_on_a_replaced_version_is_rejected() {
    let sim = TestSim::start(SLOW).await;
    let id = started_machine(&sim, "oc-g7").await;
    let m = sim.get(&format!("/v1/apps/oc-g7/machines/{id}")).await;
    let old = m.body["instance_id"].as_str().expect("v").to_string();
    sim.post(
        &format!("/v1/apps/oc-g7/machines/{id}"),
        json!({"config": m.body["config"]}),
    )
    .await;
    let r = sim
        .get(&format!(
            "/v1/apps/oc-g7/machines/{id}/wait?state=started&version={old}&timeout=1"
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        error_text(&r).contains("currently replaced"),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn crash_applies_restart_policy() {
    let sim = TestSim::start(SLOW).await;
    let id = started_machine(&sim, "oc-g8").await;
    let r = sim
        .post(
            &format!("/_sim/machines/{id}/crash"),
            json!({"exit_code": 137, "oom_killed": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "starting", "restart policy always");
    let r = sim
        .get(&format!("/v1/apps/oc-g8/machines/{id}/events?limit=5"))
        .await;
    let exit = r
        .body
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "exit").cloned())
        .expect("exit event");
    assert_eq!(exit["request"]["exit_event"]["exit_code"], 137);
    assert_eq!(exit["request"]["exit_event"]["oom_killed"], true);
    sim.advance(60.0).await;
    assert_eq!(sim.state_of("oc-g8", &id).await, "started");

    // Restart policy `no`: the machine stays stopped.
    let m = sim.get(&format!("/v1/apps/oc-g8/machines/{id}")).await;
    let mut config = m.body["config"].clone();
    config["restart"] = json!({"policy": "no"});
    sim.post(
        &format!("/v1/apps/oc-g8/machines/{id}"),
        json!({"config": config}),
    )
    .await;
    sim.advance(60.0).await;
    let r = sim
        .post(
            &format!("/_sim/machines/{id}/crash"),
            json!({"exit_code": 1}),
        )
        .await;
    assert_eq!(r.body["state"], "stopped");
}

#[tokio::test]
async fn wait_from_event_id_needs_a_newer_transition() {
    let sim = TestSim::start(SLOW).await;
    let id = started_machine(&sim, "oc-g9").await;
    let r = sim
        .get(&format!(
            "/v1/apps/oc-g9/machines/{id}/wait?state=started&timeout=1"
        ))
        .await;
    let event = r.body["event_id"].as_str().expect("event id").to_string();
    let r = sim
        .get(&format!(
            "/v1/apps/oc-g9/machines/{id}/wait?state=started&timeout=1&from_event_id={event}"
        ))
        .await;
    assert_eq!(
        r.status,
        StatusCode::REQUEST_TIMEOUT,
        "no transition since {event}"
    );
    let r = sim
        .post_empty(&format!("/v1/apps/oc-g9/machines/{id}/restart"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    sim.advance(60.0).await;
    let r = sim
        .get(&format!(
            "/v1/apps/oc-g9/machines/{id}/wait?state=started&timeout=1&from_event_id={event}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_ne!(r.body["event_id"], event.as_str());
}

#[tokio::test]
async fn old_style_destroy_guard_answers_409() {
    let mut config = fly_sim::SimConfig::new(TOKEN, ORG);
    config.latency = fly_sim::LatencyModel::spec_defaults().scaled(SLOW);
    config.destroy_guard_conflict = true;
    let sim = TestSim::start_with(config).await;
    let id = started_machine(&sim, "oc-g10").await;
    let r = sim.delete(&format!("/v1/apps/oc-g10/machines/{id}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        error_text(&r),
        "unable to destroy machine, not currently stopped"
    );
}
