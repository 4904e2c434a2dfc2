//! A Fly outage: every call answers 503. The organization's circuit opens, reconciles stop
//! calling Fly (one probe every couple of seconds instead), and the moment Fly answers again the
//! held instances resume and converge within seconds, with no backoff left from the outage.

use axum::response::IntoResponse;
use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn fly_calls(stack: &Stack) -> u64 {
    let (_, calls) = stack.fly(Method::GET, "/_sim/calls", None).await;
    calls
        .as_object()
        .map(|by_endpoint| {
            by_endpoint
                .iter()
                .filter(|(endpoint, _)| !endpoint.contains("/_sim/"))
                .map(|(_, c)| c["total"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_fly_outage_held_instances_resume_within_seconds() {
    let stack = Stack::start(StackOptions::default()).await;
    let names = ["outage-a", "outage-b", "outage-c"];
    // Fly is down before the instances are created.
    let (code, body) = stack
        .fly(
            Method::POST,
            "/_sim/faults",
            Some(json!({"kind": "error", "status": 503, "path": "^/v1/"})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    for name in names {
        stack
            .put(name, json!({"customerId": "c", "region": "iad"}))
            .await;
    }
    // Once the circuit is open, calls stop: count them over an outage window.
    eventually(
        Duration::from_secs(30),
        "instances held for Fly",
        || async {
            let held: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM work WHERE reason = 'held-for-fly'")
                    .fetch_one(&stack.db.pool)
                    .await
                    .unwrap();
            (held == names.len() as i64).then_some(())
        },
    )
    .await;
    let before = fly_calls(&stack).await;
    // A measured window of the held outage (nothing is awaited here).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = fly_calls(&stack).await - before;
    // One probe every 2 s, not three instances retrying (with reads retried inside).
    assert!(during <= 6, "{during} Fly calls in 8 s of a held outage");
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM work")
        .fetch_all(&stack.db.pool)
        .await
        .unwrap();
    assert!(
        attempts.iter().all(|a| *a <= 6),
        "the outage kept raising backoff: {attempts:?}"
    );

    // Fly answers again: every held instance is back at work within seconds (its app created:
    // the probe's interval plus the organization's line of app creations), then Ready.
    stack.fly(Method::DELETE, "/_sim/faults", None).await;
    let recovered = Instant::now();
    eventually(Duration::from_secs(30), "every app created", || async {
        (stack.fly_apps().await.len() == names.len()).then_some(())
    })
    .await;
    let resumed = recovered.elapsed();
    println!(
        "every held instance resumed {:.1} s after Fly recovered",
        resumed.as_secs_f64()
    );
    assert!(
        resumed < Duration::from_secs(8),
        "resuming took {resumed:?}"
    );
    for name in names {
        let body: Value = stack.wait_ready(name, Duration::from_secs(60)).await;
        assert_eq!(body["status"]["phase"], "Ready");
    }
    let took = recovered.elapsed();
    println!("all Ready {:.1} s after Fly recovered", took.as_secs_f64());
    assert!(took < Duration::from_secs(40), "recovery took {took:?}");
}

/// Fly answers 503 to everything while `down`; every request is recorded with its sender.
#[derive(Default)]
struct Outage {
    down: std::sync::atomic::AtomicBool,
    calls: std::sync::Mutex<Vec<(String, Instant)>>,
}

impl Outage {
    fn senders_since(&self, since: Instant) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(_, at)| *at > since)
            .map(|(sender, _)| sender.clone())
            .collect()
    }
}

struct OutageHook(std::sync::Arc<Outage>);

impl fly_sim::hooks::RequestHook for OutageHook {
    fn before(&self, req: &fly_sim::hooks::RequestInfo) -> Option<axum::response::Response> {
        let sender = req.user_agent.clone().unwrap_or_default();
        let replica = match sender.rsplit_once("(replica ") {
            Some((_, name)) => name.trim_end_matches(')').to_owned(),
            None => sender,
        };
        self.0.calls.lock().unwrap().push((replica, Instant::now()));
        let down = self.0.down.load(std::sync::atomic::Ordering::SeqCst);
        down.then(|| {
            let body = r#"{"error":"service unavailable"}"#;
            (reqwest::StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        })
    }
}

/// Two replicas share one circuit: the one that sees Fly fail opens it for both, only one
/// probes (and another takes the probe over when it stops), and the probe's success closes it
/// for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_circuit_and_one_probe() {
    use openclaws_fly::{observer::NoObserver, FlyClient};
    use openclaws_testkit::stack::{FLY_TOKEN, ORG};
    use std::sync::atomic::Ordering;
    use tokio_util::sync::CancellationToken;

    let outage = std::sync::Arc::new(Outage::default());
    let options = StackOptions {
        hooks: vec![std::sync::Arc::new(OutageHook(outage.clone()))],
        ..StackOptions::default()
    };
    let stack = Stack::start_without_controller(options).await;
    let replicas = ["r1", "r2"].map(|name| {
        let fly = FlyClient::new(
            &stack.sim_url,
            FLY_TOKEN,
            ORG,
            std::sync::Arc::new(NoObserver),
        )
        .identified_as(name);
        let stop = CancellationToken::new();
        // As `serve` runs it: told of the other replica's opening and closing by NOTIFY.
        let wakeup = openclaws_engine::controller::listener::Wakeup::listen(
            Some(stack.db.url.clone()),
            openclaws_store::CIRCUIT_CHANNEL,
            stop.clone(),
        );
        tokio::spawn(openclaws_engine::controller::outage::recover(
            fly.clone(),
            stack.db.controller.clone(),
            name.to_owned(),
            wakeup,
            stop.clone(),
        ));
        (fly, stop)
    });
    let [(r1, _), (r2, _)] = &replicas;
    let open = |fly: &FlyClient| fly.circuit().is_open();

    // Fly goes down; r1's own calls fail until its circuit opens.
    outage.down.store(true, Ordering::SeqCst);
    eventually(Duration::from_secs(10), "r1's circuit open", || async {
        let _ = r1.get_app("oc-some-app").await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        open(r1).then_some(())
    })
    .await;
    // r2 never saw a failure, yet holds its calls within a look at the shared circuit.
    eventually(Duration::from_secs(5), "r2 holding calls", || async {
        open(r2).then_some(())
    })
    .await;

    // A measured window of the held outage: one replica probes, about every 2 s.
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let probes = outage.senders_since(window);
    let mut probers: Vec<&String> = probes.iter().collect();
    probers.sort();
    probers.dedup();
    println!(
        "{} probes in 9 s of a shared outage, from {probers:?}",
        probes.len()
    );
    assert_eq!(probers.len(), 1, "one prober at a time: {probes:?}");
    assert!((3..=6).contains(&probes.len()), "{probes:?}");

    // The prober stops (its replica dies): the other takes the probe over within its turn.
    let prober = probers[0].clone();
    let (survivor, stopped) = if prober == "r1" {
        (r2, &replicas[0].1)
    } else {
        (r1, &replicas[1].1)
    };
    stopped.cancel();
    let handover = Instant::now();
    let other = if prober == "r1" { "r2" } else { "r1" };
    eventually(Duration::from_secs(12), "the probe handed over", || async {
        outage
            .senders_since(handover)
            .iter()
            .any(|s| s == other)
            .then_some(())
    })
    .await;
    println!(
        "the probe passed to {other} after {:.1} s",
        handover.elapsed().as_secs_f64()
    );

    // Fly answers again: the survivor's probe closes the circuit.
    outage.down.store(false, Ordering::SeqCst);
    let recovered = Instant::now();
    eventually(Duration::from_secs(5), "calls resume", || async {
        (!open(survivor)).then_some(())
    })
    .await;
    println!(
        "calls resumed {:.1} s after Fly recovered",
        recovered.elapsed().as_secs_f64()
    );
    // The survivor resumes its own calls first, then writes the shared row: wait for that write.
    eventually(
        Duration::from_secs(5),
        "the organization's circuit closed for every replica",
        || async {
            let (open,): (bool,) =
                sqlx::query_as("SELECT open_since IS NOT NULL FROM fly_circuit WHERE org = $1")
                    .bind(ORG)
                    .fetch_one(&stack.db.pool)
                    .await
                    .unwrap();
            (!open).then_some(())
        },
    )
    .await;
    replicas.iter().for_each(|(_, stop)| stop.cancel());
}
