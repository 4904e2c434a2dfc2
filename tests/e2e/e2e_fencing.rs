//! Fencing across replicas: a replica frozen (SIGSTOP) mid-reconcile past its work lease, while
//! another replica takes the instance over and makes it Ready, sends no Fly mutation once it is
//! resumed, and what it had sent before shows in the instance's events.

use fly_sim::hooks::{RequestHook, RequestInfo};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use openclaws_testkit::db::eventually;
use openclaws_testkit::process::{free_port, spawn_controller, wait_api, ControllerProcess};
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every request the simulator received: who sent it (the replica in its `User-Agent`), what,
/// and when.
#[derive(Default)]
struct Calls(Mutex<Vec<(Option<String>, String, Instant)>>);

impl Calls {
    /// Mutations sent after `since` by the replica named in `agent`.
    fn mutations_by(&self, agent: &str, since: Instant) -> Vec<String> {
        let calls = self.0.lock().unwrap();
        calls
            .iter()
            .filter(|(ua, what, at)| {
                *at > since && ua.as_deref() == Some(agent) && !what.starts_with("GET ")
            })
            .map(|(_, what, _)| what.clone())
            .collect()
    }

    /// The `User-Agent` of the first app creation.
    fn app_creator(&self) -> Option<String> {
        let calls = self.0.lock().unwrap();
        calls
            .iter()
            .find(|(_, what, _)| what == "POST /v1/apps")
            .and_then(|(ua, _, _)| ua.clone())
    }
}

/// A replica process (killed when dropped, frozen or not).
struct Replica(ControllerProcess);

impl Replica {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.0.id() as i32)
    }
}

/// Records every request, and holds back the app creation's answer (after the app exists) so
/// the first replica is mid-reconcile when it is frozen.
struct RecordAndSlowAppCreate(Arc<Calls>);

impl RequestHook for RecordAndSlowAppCreate {
    fn before(&self, req: &RequestInfo) -> Option<axum::response::Response> {
        let what = format!("{} {}", req.method, req.route);
        let entry = (req.user_agent.clone(), what, Instant::now());
        self.0 .0.lock().unwrap().push(entry);
        None
    }

    fn after(
        &self,
        req: &RequestInfo,
        response: axum::response::Response,
    ) -> axum::response::Response {
        if !(req.method == reqwest::Method::POST && req.route == "/v1/apps") {
            return response;
        }
        let (parts, body) = response.into_parts();
        let delayed = futures_util::stream::once(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            axum::body::to_bytes(body, usize::MAX).await
        });
        axum::response::Response::from_parts(parts, axum::body::Body::from_stream(delayed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_frozen_past_its_lease_sends_nothing_when_it_resumes() {
    let calls = Arc::new(Calls::default());
    let mut stack = Stack::start_without_controller(StackOptions {
        hooks: vec![Arc::new(RecordAndSlowAppCreate(calls.clone()))],
        ..StackOptions::default()
    })
    .await;
    let http = reqwest::Client::new();
    let (port_a, port_b) = (free_port(), free_port());
    stack.api_url = format!("http://127.0.0.1:{port_a}");
    let a = Replica(spawn_controller(&stack, port_a));
    wait_api(&http, &stack.api_url).await;
    let (code, body) = stack
        .put("fenced", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    // Replica A is waiting for the app creation's answer: freeze it there.
    eventually(Duration::from_secs(30), "the app", || async {
        (!stack.fly_apps().await.is_empty()).then_some(())
    })
    .await;
    let a_pid = a.pid();
    kill(a_pid, Signal::SIGSTOP).unwrap();
    let frozen_at = Instant::now();
    let agent_a = calls.app_creator().expect("replica A created the app");
    assert!(agent_a.contains("(replica "), "{agent_a}");

    // Replica B takes over once A's lease has lapsed, and finishes the job.
    stack.api_url = format!("http://127.0.0.1:{port_b}");
    let b = Replica(spawn_controller(&stack, port_b));
    wait_api(&http, &stack.api_url).await;
    let ready = stack.wait_ready("fenced", Duration::from_secs(60)).await;
    // B knows it took over from a lapsed lease: it looks again once A's requests are over,
    // instead of at the next resync.
    let uid: uuid::Uuid = ready["metadata"]["uid"].as_str().unwrap().parse().unwrap();
    let recheck: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (LEAST(due_at, recheck_at) - now()))::float8 FROM work \
         WHERE instance_uid = $1",
    )
    .bind(uid)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    let recheck = recheck.expect("a recheck after the takeover");
    assert!(recheck <= 36.0, "next look in {recheck} s");

    // A resumes with a plan made before it was frozen. Its lease is gone: it stops, and says
    // in the instance's events what it had sent.
    kill(a_pid, Signal::SIGCONT).unwrap();
    let abandoned = eventually(
        Duration::from_secs(30),
        "A's abandoned reconcile",
        || async {
            stack
                .events("fenced")
                .await
                .into_iter()
                .find(|e| e["reason"] == "ReconcileAbandoned")
        },
    )
    .await;
    drop(a);
    drop(b);

    let late = calls.mutations_by(&agent_a, frozen_at);
    assert!(
        late.is_empty(),
        "A changed Fly after losing its lease: {late:?}"
    );
    let message = abandoned["message"].as_str().unwrap();
    assert!(message.contains("apps.create oc-fenced"), "{message}");
    assert_eq!(stack.fly_volumes("oc-fenced").await.len(), 1);
    let machines = stack.fly_machines("oc-fenced").await;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["id"], ready["status"]["fly"]["machineId"]);
    let (_, orphans) = stack.fly(reqwest::Method::GET, "/_sim/orphans", None).await;
    assert_eq!(orphans["orphans"], json!([]), "{orphans}");
}
