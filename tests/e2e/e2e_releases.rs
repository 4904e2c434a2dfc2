//! Releases end to end on the inert simulator (`docs/releases.md`): a release chosen by label
//! selector rolls the fleet canary first within `maxUnavailable`, leaves pinned instances
//! alone, and records who changed what; a canary that cannot be updated fails at its deadline,
//! halts the release and is rolled back while the rest of the fleet is never touched; pause,
//! resume and abort act on the running release; and a controller restart mid-release resumes
//! it where it was.

use openclaws_testkit::db::eventually;
use openclaws_testkit::releases::{members, post, release, wait_phase};
use openclaws_testkit::stack::{Stack, StackOptions, READER, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);
const NEW_IMAGE: &str = "ghcr.io/openclaw/openclaw:2026.9.6";

fn fast() -> StackOptions {
    StackOptions {
        latency_scale: 0.05,
        ..StackOptions::default()
    }
}

/// Creates instance `name` with `labels` (and `image` when pinned).
async fn create(stack: &Stack, name: &str, labels: Value, image: Option<&str>) {
    let mut spec = json!({"customerId": format!("cust-{name}"), "region": "iad"});
    if let Some(image) = image {
        spec["image"] = json!(image);
    }
    let resp = stack
        .http
        .put(format!(
            "{}/v1/instances/{name}?fieldManager=dashboard",
            stack.api_url
        ))
        .bearer_auth(WRITER)
        .json(&json!({"metadata": {"labels": labels}, "spec": spec}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
}

fn state_of<'a>(members: &'a [Value], instance: &str) -> &'a str {
    members
        .iter()
        .find(|m| m["instanceName"] == instance)
        .and_then(|m| m["state"].as_str())
        .unwrap_or("absent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_rolls_the_selected_fleet_canary_first_and_leaves_pinned_instances() {
    let stack = Stack::start(fast()).await;
    for name in ["rel-a", "rel-b", "rel-c", "rel-d"] {
        create(&stack, name, json!({"tier": "free"}), None).await;
    }
    create(
        &stack,
        "rel-pinned",
        json!({"tier": "free"}),
        Some("ghcr.io/openclaw/openclaw:main"),
    )
    .await;
    create(&stack, "rel-other", json!({"tier": "paid"}), None).await;
    for name in [
        "rel-a",
        "rel-b",
        "rel-c",
        "rel-d",
        "rel-pinned",
        "rel-other",
    ] {
        stack.wait_ready(name, CONVERGE).await;
    }
    // One customer stopped their gateway; support holds another (spec.paused).
    create(&stack, "rel-stopped", json!({"tier": "free"}), None).await;
    let (code, _) = stack
        .patch("rel-stopped", json!({"spec": {"runState": "stopped"}}))
        .await;
    assert_eq!(code, StatusCode::OK);
    stack
        .wait_for("rel-stopped", "stopped", CONVERGE, |b| {
            b["status"]["phase"] == "Stopped"
        })
        .await;
    create(&stack, "rel-held", json!({"tier": "free"}), None).await;
    stack.wait_ready("rel-held", CONVERGE).await;
    let (code, _) = stack
        .patch("rel-held", json!({"spec": {"paused": true}}))
        .await;
    assert_eq!(code, StatusCode::OK);

    let (code, created) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "openclaw-2026.9.6"}, "spec": {
            "image": NEW_IMAGE, "selector": "tier=free",
            "strategy": {"canary": 1, "waves": [50, 100], "maxUnavailable": 2}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["spec"]["openclawVersion"], "2026.9.6",
        "derived from the tag"
    );
    let (code, refused) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "second"}, "spec": {"image": NEW_IMAGE}}),
    )
    .await;
    assert_eq!(
        code,
        StatusCode::CONFLICT,
        "one release at a time: {refused}"
    );

    let (done, most_down) = wait_phase(&stack, "openclaw-2026.9.6", "Completed", CONVERGE).await;
    assert!(
        most_down <= 2,
        "{most_down} members down at once with maxUnavailable 2"
    );
    assert_eq!(
        done["status"]["members"], 6,
        "the pinned and the paid instance are not members: {done}"
    );
    let waves = done["status"]["waves"].as_array().unwrap();
    assert_eq!(waves[0]["name"], "canary");
    assert_eq!(waves[0]["size"], 1);
    let settled = |w: &Value| w["healthy"].as_u64().unwrap() + w["skipped"].as_u64().unwrap();
    assert!(
        waves.iter().all(|w| json!(settled(w)) == w["size"]),
        "{done}"
    );

    let listed = members(&stack, "openclaw-2026.9.6").await;
    assert_eq!(listed[0]["instanceName"], "rel-a");
    assert_eq!(listed[0]["wave"], 0);
    let canary_done = listed[0]["finishedAt"].as_str().unwrap().to_owned();
    for m in &listed[1..] {
        assert!(
            m["startedAt"]
                .as_str()
                .or(m["finishedAt"].as_str())
                .unwrap()
                >= canary_done.as_str(),
            "waves after the canary: {m}"
        );
    }
    for name in ["rel-a", "rel-b", "rel-c", "rel-d"] {
        let body = stack.wait_ready(name, CONVERGE).await;
        assert_eq!(body["spec"]["image"], NEW_IMAGE);
        assert_eq!(
            body["status"]["fly"]["image"], NEW_IMAGE,
            "{name} runs the new image"
        );
        let managed = body["metadata"]["managedFields"].as_array().unwrap();
        let owner = managed
            .iter()
            .find(|e| {
                e["fields"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("/spec/image"))
            })
            .unwrap();
        assert_eq!(owner["manager"], "release-controller");
        let events = stack.events(name).await;
        let write = events
            .iter()
            .find(|e| e["reason"] == "ReleaseUpdating")
            .expect("an audited write");
        assert_eq!(write["actor"], "release/openclaw-2026.9.6");
        assert_eq!(write["changedFields"], json!(["/spec/image"]));
    }
    let listed = members(&stack, "openclaw-2026.9.6").await;
    let state = |name: &str| {
        let m = listed.iter().find(|m| m["instanceName"] == name).unwrap();
        m["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        state("rel-held"),
        "Skipped",
        "a paused instance is left alone"
    );
    assert_eq!(
        state("rel-stopped"),
        "Healthy",
        "a stopped instance passes stopped"
    );
    let (_, stopped) = stack.get("rel-stopped").await;
    assert_eq!(stopped["status"]["fly"]["image"], NEW_IMAGE);
    assert_eq!(
        stopped["status"]["phase"], "Stopped",
        "still stopped, as its customer asked"
    );
    for name in ["rel-pinned", "rel-other"] {
        let (_, body) = stack.get(name).await;
        assert_eq!(
            body["spec"]["image"], "ghcr.io/openclaw/openclaw:main",
            "{name} untouched"
        );
        assert_eq!(body["metadata"]["generation"], 1);
    }
    let reasons: Vec<&str> = done["status"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"Started") && reasons.contains(&"Completed"),
        "{reasons:?}"
    );
    assert_eq!(
        stack
            .metric(
                "openclaws_release_member_transitions_total",
                "state=\"Healthy\""
            )
            .await,
        5.0
    );

    // `release status` (the newest release, since none runs) prints the same.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_openclaws-controller"))
        .args(["release", "status", "--api-url", &stack.api_url])
        .env("OPENCLAWS_API_TOKEN", READER)
        .output()
        .await
        .unwrap();
    let page = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{page} {errors}");
    for expected in [
        "openclaw-2026.9.6",
        "Completed",
        "canary",
        "wave 1",
        NEW_IMAGE,
    ] {
        assert!(page.contains(expected), "{expected} missing from:\n{page}");
    }

    // The support console shows the release and its waves.
    let cookie = console_session(&stack).await;
    let list = console_page(&stack, "/support/releases", &cookie).await;
    assert!(
        list.contains("openclaw-2026.9.6") && list.contains("5 / 6"),
        "{list}"
    );
    let detail = console_page(&stack, "/support/releases/openclaw-2026.9.6", &cookie).await;
    for expected in ["Completed", "canary", "wave 2", "release-events"] {
        assert!(
            detail.contains(expected),
            "{expected} missing from the console page"
        );
    }
}

/// Signs in to the support console with the reader token; the session cookie.
async fn console_session(stack: &Stack) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/support/login", stack.api_url))
        .form(&[("token", READER)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn console_page(stack: &Stack, path: &str, cookie: &str) -> String {
    let resp = stack
        .http
        .get(format!("{}{path}", stack.api_url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_cannot_update_halts_the_release_and_is_rolled_back() {
    let stack = Stack::start(fast()).await;
    for name in ["halt-a", "halt-b", "halt-c"] {
        create(&stack, name, json!({}), None).await;
        stack.wait_ready(name, CONVERGE).await;
    }
    // Every update of the canary's machine fails: it never gets the new image.
    let rule = json!({"method": "POST", "path": "/machines/[^/]+$", "app": "oc-halt-a", "kind": "error", "status": 503});
    let (code, _) = stack.fly(Method::POST, "/_sim/faults", Some(rule)).await;
    assert_eq!(code, StatusCode::CREATED);

    let (code, body) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "doomed"}, "spec": {"image": NEW_IMAGE,
            "strategy": {"canary": 1, "waves": [100], "healthDeadlineSeconds": 10}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (done, most_down) = wait_phase(&stack, "doomed", "RolledBack", CONVERGE).await;
    assert!(most_down <= 1);
    let listed = members(&stack, "doomed").await;
    assert_eq!(state_of(&listed, "halt-a"), "RolledBack", "{listed:?}");
    assert_eq!(state_of(&listed, "halt-b"), "Pending");
    assert_eq!(state_of(&listed, "halt-c"), "Pending");
    assert!(
        done["status"]["message"]
            .as_str()
            .unwrap()
            .contains("halted"),
        "{done}"
    );
    stack.fly(Method::DELETE, "/_sim/faults", None).await;
    let canary = stack.wait_ready("halt-a", CONVERGE).await;
    assert_eq!(canary["spec"]["image"], "ghcr.io/openclaw/openclaw:main");
    for name in ["halt-b", "halt-c"] {
        let (_, body) = stack.get(name).await;
        assert_eq!(body["status"]["phase"], "Ready", "{name} never left Ready");
        assert_eq!(
            body["metadata"]["generation"], 1,
            "{name} was never touched"
        );
    }
    let failed = done["status"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["reason"] == "Failed" && e["message"].as_str().unwrap().contains("within 10 s"));
    assert!(
        failed,
        "the canary's failure is in the release's history: {done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_abort_and_a_restart_mid_release() {
    let mut stack = Stack::start(fast()).await;
    for name in ["ops-a", "ops-b", "ops-c", "ops-d"] {
        create(&stack, name, json!({}), None).await;
        stack.wait_ready(name, CONVERGE).await;
    }
    let (code, _) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "steady"}, "spec": {"image": NEW_IMAGE,
            "strategy": {"canary": 1, "waves": [100], "maxUnavailable": 1}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, paused) = post(&stack, "/v1/releases/steady/pause", json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{paused}");
    wait_phase(&stack, "steady", "Paused", CONVERGE).await;
    let frozen: Vec<Value> = members(&stack, "steady").await;
    let started = frozen.iter().filter(|m| m["state"] != "Pending").count();
    assert!(
        started <= 1,
        "at most the canary started before the pause: {frozen:?}"
    );

    // A restart while paused, then resume: the release goes on from its rows.
    stack.stop_controller().await;
    stack.start_controller().await;
    assert_eq!(release(&stack, "steady").await["status"]["phase"], "Paused");
    let (code, _) = post(&stack, "/v1/releases/steady/resume", json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let (done, _) = wait_phase(&stack, "steady", "Completed", CONVERGE).await;
    assert_eq!(done["status"]["members"], 4);
    let (code, _) = post(&stack, "/v1/releases/steady/pause", json!({})).await;
    assert_eq!(
        code,
        StatusCode::CONFLICT,
        "a finished release takes no requests"
    );

    // A fleet-wide release's image is what new instances run unless they pin one.
    create(&stack, "ops-new", json!({}), None).await;
    let (_, fresh) = stack.get("ops-new").await;
    assert_eq!(fresh["spec"]["image"], NEW_IMAGE, "{fresh}");
    create(
        &stack,
        "ops-pin",
        json!({}),
        Some("ghcr.io/openclaw/openclaw:main"),
    )
    .await;
    let (_, pinned) = stack.get("ops-pin").await;
    assert_eq!(pinned["spec"]["image"], "ghcr.io/openclaw/openclaw:main");

    // Abort with rollback: every updated instance goes back.
    let (code, _) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "back-out"}, "spec": {"image": "ghcr.io/openclaw/openclaw:2026.9.7",
            "strategy": {"canary": 0, "waves": [100], "maxUnavailable": 1}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    eventually(CONVERGE, "a member healthy on the new image", || async {
        let m = members(&stack, "back-out").await;
        m.iter().any(|m| m["state"] == "Healthy").then_some(())
    })
    .await;
    let (code, _) = post(&stack, "/v1/releases/back-out/pause", json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    wait_phase(&stack, "back-out", "Paused", CONVERGE).await;
    let (code, body) = post(
        &stack,
        "/v1/releases/back-out/abort",
        json!({"onAbort": "Rollback"}),
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    wait_phase(&stack, "back-out", "RolledBack", CONVERGE).await;
    for name in ["ops-a", "ops-b", "ops-c", "ops-d"] {
        let body = stack
            .wait_for(name, "back on the previous image", CONVERGE, |b| {
                b["status"]["fly"]["image"] == NEW_IMAGE && b["status"]["phase"] == "Ready"
            })
            .await;
        assert_eq!(body["spec"]["image"], NEW_IMAGE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_release_requests_get_clear_errors() {
    let stack = Stack::start(fast()).await;
    let cases = [
        (
            json!({"metadata": {"name": "x"}, "spec": {"image": NEW_IMAGE}}),
            "metadata.name",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": "has space"}}),
            "spec.image",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": "nul\u{0}byte"}}),
            "spec.image",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": "a//b:c"}}),
            "spec.image",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": NEW_IMAGE, "openclawVersion": "9\u{0}"}}),
            "spec.openclawVersion",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": NEW_IMAGE, "strategy": {"waves": [60, 50]}}}),
            "spec.strategy.waves",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": NEW_IMAGE, "strategy": {"maxUnavailable": "two"}}}),
            "spec.strategy",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": NEW_IMAGE, "selector": "a in ("}}),
            "spec.selector",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": NEW_IMAGE, "instances": ["nobody-here"]}}),
            "spec.instances[0]",
        ),
        (
            json!({"metadata": {"name": "ok-name"}, "spec": {"image": NEW_IMAGE}, "extra": 1}),
            "extra",
        ),
        (json!({"metadata": {"name": "ok-name"}}), "spec"),
    ];
    for (body, path) in cases {
        let (code, answer) = post(&stack, "/v1/releases", body.clone()).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {answer}");
        let fields = answer["error"]["fields"].as_array().unwrap();
        assert!(fields.iter().any(|f| f["path"] == path), "{body}: {answer}");
    }
    let resp = stack
        .http
        .post(format!("{}/v1/releases", stack.api_url))
        .bearer_auth(READER)
        .json(&json!({"metadata": {"name": "ok-name"}, "spec": {"image": NEW_IMAGE}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (code, _) = post(&stack, "/v1/releases/none-such/abort", json!({})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let resp = stack
        .http
        .get(format!(
            "{}/v1/releases/none-such/members?state=Bogus",
            stack.api_url
        ))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_step_one_release_once() {
    let stack = Stack::start(fast()).await;
    let second_stop = tokio_util::sync::CancellationToken::new();
    let second = openclaws_server::serve::start(&stack.settings, second_stop.clone())
        .await
        .unwrap();
    let names = ["dup-a", "dup-b", "dup-c", "dup-d", "dup-e"];
    for name in names {
        create(&stack, name, json!({}), None).await;
    }
    for name in names {
        stack.wait_ready(name, CONVERGE).await;
    }
    let (code, body) = post(
        &stack,
        "/v1/releases",
        json!({"metadata": {"name": "shared"}, "spec": {"image": NEW_IMAGE,
               "strategy": {"canary": 1, "waves": [50, 100], "maxUnavailable": 2}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (done, most_down) = wait_phase(&stack, "shared", "Completed", CONVERGE).await;
    assert!(
        most_down <= 2,
        "{most_down} down with two replicas stepping: {done}"
    );
    for name in names {
        let writes = stack
            .events(name)
            .await
            .iter()
            .filter(|e| e["reason"] == "ReleaseUpdating")
            .count();
        assert_eq!(
            writes, 1,
            "{name}: one image write, whichever replica stepped"
        );
    }
    let started = done["status"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "Started")
        .count();
    assert_eq!(started, 1, "members chosen once: {done}");
    second_stop.cancel();
    second.wait().await.unwrap();
}
