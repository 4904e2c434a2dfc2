//! Crash safety: the controller process is killed with SIGKILL at several points of provisioning
//! and restarted; the instance still converges to exactly one app, one volume and one machine.

use openclaws_testkit::db::eventually;
use openclaws_testkit::process::{free_port, spawn_controller, wait_api};

use fly_sim::hooks::{RequestHook, RequestInfo};
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Holds back the body of every create's response after the create has happened, so a kill lands
/// between Fly committing a resource and the controller learning its id.
struct SlowCreateResponses(Duration);

impl RequestHook for SlowCreateResponses {
    fn after(
        &self,
        req: &RequestInfo,
        response: axum::response::Response,
    ) -> axum::response::Response {
        let creates = req.method == reqwest::Method::POST
            && (req.route == "/v1/apps"
                || req.route.ends_with("/volumes")
                || req.route.ends_with("/machines"));
        if !creates {
            return response;
        }
        let delay = self.0;
        let (parts, body) = response.into_parts();
        let delayed = futures_util::stream::once(async move {
            tokio::time::sleep(delay).await;
            axum::body::to_bytes(body, usize::MAX).await
        });
        axum::response::Response::from_parts(parts, axum::body::Body::from_stream(delayed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_provisioning_and_restarted_leaves_exactly_one_of_each() {
    let mut stack = Stack::start_without_controller(StackOptions {
        hooks: vec![Arc::new(SlowCreateResponses(Duration::from_secs(2)))],
        ..StackOptions::default()
    })
    .await;
    let port = free_port();
    stack.api_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut child = spawn_controller(&stack, port);
    wait_api(&http, &stack.api_url).await;
    let (code, body) = stack
        .put("crashy", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    // Kill the process as soon as each resource exists at Fly, while the controller still waits
    // for the create's response, then start a new one (which waits out the dead one's lease).
    type Milestone = fn(&Vec<Value>, &Vec<Value>, &Vec<Value>) -> bool;
    let milestones: [(&str, Milestone); 3] = [
        ("the app", |apps, _, _| !apps.is_empty()),
        ("the volume", |_, vols, _| !vols.is_empty()),
        ("the machine", |_, _, machines| !machines.is_empty()),
    ];
    for (what, reached) in milestones {
        eventually(Duration::from_secs(30), what, || async {
            let apps = stack.fly_apps().await;
            let vols = stack.fly_volumes("oc-crashy").await;
            let machines = stack.fly_machines("oc-crashy").await;
            reached(&apps, &vols, &machines).then_some(())
        })
        .await;
        child.kill().expect("SIGKILL the controller");
        child.wait().unwrap();
        child = spawn_controller(&stack, port);
        wait_api(&http, &stack.api_url).await;
    }

    let ready = stack.wait_ready("crashy", Duration::from_secs(60)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(stack.fly_apps().await.len(), 1);
    assert_eq!(stack.fly_volumes("oc-crashy").await.len(), 1);
    let machines = stack.fly_machines("oc-crashy").await;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["id"], ready["status"]["fly"]["machineId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_claiming_and_exits_cleanly() {
    let mut stack = Stack::start_without_controller(StackOptions::default()).await;
    let port = free_port();
    stack.api_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = spawn_controller(&stack, port);
    wait_api(&http, &stack.api_url).await;
    stack
        .put("graceful", json!({"customerId": "c", "region": "iad"}))
        .await;
    stack.wait_ready("graceful", Duration::from_secs(30)).await;

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = eventually(Duration::from_secs(15), "the process to exit", || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(status.success(), "exit status {status:?}");
    let leased: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM work WHERE lease_owner IS NOT NULL")
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(leased, 0, "no lease is left behind");
}
