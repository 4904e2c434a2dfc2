//! Load check: 10,000 apps with one machine each stay fast. Ignored by default (slow in debug
//! builds); run with `cargo test --release --test sim_scale -- --ignored --nocapture`.

use openclaws_testkit::sim::{TestSim, ORG};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const APPS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn ten_thousand_apps_and_machines() {
    let sim = Arc::new(TestSim::start(0.0).await);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let sim = sim.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..APPS).step_by(16) {
                let app = format!("oc-scale-{i}");
                sim.app(&app).await;
                sim.machine(&app, None, json!({"ctl.customer": app})).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    println!("created {APPS} apps+machines in {:?}", began.elapsed());

    let t = Instant::now();
    let r = sim
        .get("/v1/apps/oc-scale-4242/machines?metadata.ctl.customer=oc-scale-4242")
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1));
    let get_latency = t.elapsed();
    println!("filtered list: {get_latency:?}");
    assert!(get_latency < Duration::from_millis(200));

    let t = Instant::now();
    let r = sim
        .get(&format!("/v1/orgs/{ORG}/machines?limit=1000"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["machines"].as_array().map(Vec::len), Some(1000));
    println!("org scan page: {:?}", t.elapsed());
}
