//! The API's state machine, explored with generated sequences of creates, spec changes, pauses,
//! resumes, deletes and reconcile steps (the real API and the real engine against the simulator,
//! reconciles driven one at a time): every answer is the one the state allows (never a 5xx), and
//! from wherever a sequence ends the instance can still be run, paused and deleted. No state
//! leaves it unable to do all three (deleting a paused instance used to: the reconcile stopped at
//! the paused check and the un-pause was refused as "being deleted").

use openclaws_engine::reconcile::{Outcome, Reconciler};
use openclaws_testkit::stack::{Stack, StackOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One step a client or the controller takes.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `PUT` of a whole spec (un-pauses, as a full replace does).
    Put,
    /// A merge patch of a spec field other than `paused`.
    Grow,
    Pause,
    Resume,
    Delete,
    /// One reconcile of the instance, if its row exists.
    Reconcile,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Put),
        1 => Just(Op::Grow),
        2 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => Just(Op::Delete),
        4 => Just(Op::Reconcile),
    ]
}

/// What the client has been told, to check each answer against.
#[derive(Debug, Default)]
struct Model {
    exists: bool,
    deleting: bool,
    volume_gb: u32,
}

/// The system under test: the API over HTTP, and a reconciler driven by hand.
struct World {
    stack: Stack,
    reconciler: Reconciler,
}

impl World {
    async fn start() -> World {
        let options = StackOptions {
            latency_scale: 0.0,
            volume_release_seconds: Some(0.0),
            ..StackOptions::default()
        };
        let mut stack = Stack::start_without_controller(options).await;
        let settings = &stack.settings;
        let inputs = openclaws_server::serve::desired_inputs(settings).unwrap();
        let metrics = Arc::new(openclaws_telemetry::Metrics::new());
        let pool = stack.db.controller.clone();
        let state = openclaws_server::serve::api_state(
            settings,
            pool.clone(),
            metrics.clone(),
            inputs.clone(),
            tokio_util::sync::CancellationToken::new(),
        );
        let router = openclaws_api::router_with(state, settings.api.edge());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        stack.api_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(openclaws_api::serve(
            listener,
            router,
            std::future::pending(),
        ));
        let reconciler =
            openclaws_server::serve::reconciler(settings, pool, inputs, metrics, "explorer");
        World { stack, reconciler }
    }

    /// One reconcile of `name`; `false` when there is no row (nothing to reconcile).
    async fn reconcile(&self, name: &str) -> Result<bool, String> {
        let (code, body) = self.stack.get(name).await;
        if code == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let uid = body["metadata"]["uid"].as_str().ok_or("no uid")?;
        let uid = uid.parse().map_err(|e| format!("{e}"))?;
        match self.reconciler.reconcile(uid, 0, None).await {
            Ok(Outcome::Gone) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(format!("reconcile of {name} failed: {e}")),
        }
    }

    /// Reconciles until `done` holds for the instance's `GET` (status and body), within a
    /// bounded number of steps.
    async fn converge(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(StatusCode, &Value) -> bool,
    ) -> Result<(), String> {
        for _ in 0..80 {
            let (code, body) = self.stack.get(name).await;
            if done(code, &body) {
                return Ok(());
            }
            self.reconcile(name).await?;
            // The simulator's machines move on their own clock; give it a beat between visits.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (code, body) = self.stack.get(name).await;
        Err(format!("{name} never became {what}: {code} {body}"))
    }
}

fn expect(what: &str, code: StatusCode, allowed: &[u16]) -> Result<(), String> {
    if allowed.contains(&code.as_u16()) {
        Ok(())
    } else {
        Err(format!(
            "{what} answered {code}, expected one of {allowed:?}"
        ))
    }
}

/// Applies `op` and checks its answer against what the model allows.
async fn apply(world: &World, name: &str, model: &mut Model, op: Op) -> Result<(), String> {
    let stack = &world.stack;
    let spec = |gb: u32| json!({"customerId": "c", "region": "iad", "volumeSizeGb": gb});
    match op {
        Op::Put => {
            let gb = model.volume_gb.max(1);
            let (code, _) = stack.put(name, spec(gb)).await;
            match (model.exists, model.deleting) {
                (_, true) => expect("PUT while deleting", code, &[409])?,
                (true, false) => expect("PUT", code, &[200])?,
                (false, _) => expect("PUT of a new name", code, &[201])?,
            }
            if !model.deleting {
                model.exists = true;
                model.volume_gb = gb;
            }
        }
        Op::Grow | Op::Pause | Op::Resume => {
            let patch = match op {
                Op::Grow => json!({"spec": {"volumeSizeGb": model.volume_gb + 1}}),
                Op::Pause => json!({"spec": {"paused": true}}),
                _ => json!({"spec": {"paused": false}}),
            };
            let (code, _) = stack.patch(name, patch).await;
            match (model.exists, model.deleting) {
                (false, _) => expect("PATCH of no instance", code, &[404])?,
                (true, true) => expect("PATCH while deleting", code, &[409, 404])?,
                (true, false) => expect("PATCH", code, &[200])?,
            }
            if model.exists && !model.deleting && matches!(op, Op::Grow) {
                model.volume_gb += 1;
            }
        }
        Op::Delete => {
            let code = stack.delete(name).await;
            let allowed: &[u16] = if model.exists { &[202, 404] } else { &[404] };
            expect("DELETE", code, allowed)?;
            model.deleting = model.exists;
        }
        Op::Reconcile => {
            if !world.reconcile(name).await? {
                model.exists = false;
                model.deleting = false;
            }
        }
    }
    // Whatever happened, reads answer and agree with the model.
    let (code, _) = stack.get(name).await;
    let allowed: &[u16] = match (model.exists, model.deleting) {
        (true, false) => &[200],
        (true, true) => &[200, 404],
        (false, _) => &[404],
    };
    expect("GET", code, allowed)?;
    if code == StatusCode::NOT_FOUND {
        model.exists = false;
        model.deleting = false;
    }
    Ok(())
}

/// From wherever the sequence left it: run it (unless it is being deleted), pause it, delete it.
async fn escape(world: &World, name: &str, model: &Model) -> Result<(), String> {
    let stack = &world.stack;
    if model.exists && !model.deleting {
        let (code, _) = stack.patch(name, json!({"spec": {"paused": false}})).await;
        expect("resume", code, &[200])?;
        world
            .converge(name, "Ready", |_, b| b["status"]["phase"] == "Ready")
            .await?;
        let (code, _) = stack.patch(name, json!({"spec": {"paused": true}})).await;
        expect("pause", code, &[200])?;
        world
            .converge(name, "Paused", |_, b| {
                let conditions = b["status"]["conditions"].as_array();
                conditions.is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Paused" && c["status"] == "True")
                })
            })
            .await?;
    }
    if model.exists {
        expect("DELETE", stack.delete(name).await, &[202, 404])?;
    }
    world
        .converge(name, "gone", |code, _| code == StatusCode::NOT_FOUND)
        .await?;
    let app = format!("oc-{name}");
    let left = stack.fly_apps().await;
    if left.iter().any(|a| a["name"] == app.as_str()) {
        return Err(format!("{app} is still at Fly after the instance is gone"));
    }
    Ok(())
}

#[test]
fn no_sequence_of_writes_and_reconciles_leaves_an_instance_stuck() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let world = rt.block_on(World::start());
    let case = AtomicU32::new(0);
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..12), |ops| {
        let name = format!("sm-{}", case.fetch_add(1, Ordering::SeqCst));
        rt.block_on(async {
            let mut model = Model::default();
            for op in &ops {
                apply(&world, &name, &mut model, *op).await?;
            }
            escape(&world, &name, &model).await
        })
        .map_err(|e| TestCaseError::fail(format!("{ops:?}: {e}")))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
