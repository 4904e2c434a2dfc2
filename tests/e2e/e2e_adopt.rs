//! Adoption (`docs/adoption.md`): an app the old web app built is taken over through
//! `POST /v1/instances/{name}/adopt` with one machine update, keeping its volume, its gateway
//! token, its DNS record and certificate; it then is ours like any other (drift repaired,
//! covered by a fleet-wide release, torn down on delete). Apps outside the prefix, held by another instance or not in the web
//! app's layout are never adopted, and one app is adopted once however many ask at once.

use openclaws_testkit::db::eventually;
use openclaws_testkit::legacy::{self, LegacyApp, LegacyOptions};
use openclaws_testkit::releases;
use openclaws_testkit::stack::{condition, Stack, StackOptions, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// The adopted gateway token: must never show in an answer, an event or the status.
const CANARY: &str = "canary-legacy-gateway-token-7f3a9c";

async fn adopt(stack: &Stack, name: &str, body: &Value) -> (StatusCode, String) {
    let resp = stack
        .http
        .post(format!("{}/v1/instances/{name}/adopt", stack.api_url))
        .bearer_auth(WRITER)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn adoption(app: &str, token: &str) -> Value {
    json!({"app": app, "gatewayToken": token, "spec": {"customerId": "c-legacy", "region": "iad"}})
}

async fn calls(stack: &Stack, key: &str) -> u64 {
    let (_, calls) = stack.fly(Method::GET, "/_sim/calls", None).await;
    calls[key]["total"].as_u64().unwrap_or(0)
}

const UPDATE: &str = "POST /v1/apps/{app}/machines/{id}";
const RESTART: &str = "POST /v1/apps/{app}/machines/{id}/restart";
const STOP: &str = "POST /v1/apps/{app}/machines/{id}/stop";
const CREATE_MACHINE: &str = "POST /v1/apps/{app}/machines";
const CREATE_VOLUME: &str = "POST /v1/apps/{app}/volumes";

/// What a test checks stayed the same.
async fn certificate_exists(stack: &Stack, old: &LegacyApp) -> bool {
    let path = format!("/v1/apps/{}/certificates/{}", old.app, old.hostname);
    stack.fly(Method::GET, &path, None).await.0 == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_keeps_volume_token_and_endpoint_with_one_machine_update() {
    let stack = Stack::start(StackOptions::default()).await;
    let old = legacy::build(&stack, "legacy", CANARY, &LegacyOptions::default()).await;
    let counted = [UPDATE, RESTART, STOP, CREATE_MACHINE, CREATE_VOLUME];
    let mut before = Vec::new();
    for key in counted {
        before.push(calls(&stack, key).await);
    }

    let (code, answer) = adopt(&stack, "legacy", &adoption(&old.app, CANARY)).await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    assert!(
        !answer.contains(CANARY),
        "the token is write-only: {answer}"
    );
    let ready = stack.wait_ready("legacy", Duration::from_secs(60)).await;

    let mut after = Vec::new();
    for key in counted {
        after.push(calls(&stack, key).await);
    }
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(
        delta,
        [1, 0, 0, 0, 0],
        "exactly one machine update, nothing restarted, stopped or created ({counted:?})"
    );
    let machines = stack.fly_machines(&old.app).await;
    assert_eq!(machines.len(), 1, "{machines:?}");
    assert_eq!(machines[0]["id"], old.machine_id);
    let volumes = stack.fly_volumes(&old.app).await;
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(volumes[0]["id"], old.volume_id);
    assert_eq!(ready["status"]["fly"]["volumeId"], old.volume_id);
    assert_eq!(ready["status"]["fly"]["machineId"], old.machine_id);
    assert_eq!(
        legacy::secret_value(&stack, &old.app, "OPENCLAW_GATEWAY_TOKEN")
            .await
            .as_deref(),
        Some(CANARY),
        "the gateway token is the web app's"
    );
    let records = legacy::dns_records(&stack, &old.hostname).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["id"], old.dns_record_id.as_str());
    assert_eq!(records[0]["content"], format!("{}.fly.dev", old.app));
    assert!(certificate_exists(&stack, &old).await);
    assert_eq!(condition(&ready, "DnsReady")["status"], "True", "{ready}");

    let (_, body) = stack.get("legacy").await;
    assert!(!body.to_string().contains(CANARY));
    let events = serde_json::to_string(&stack.events("legacy").await).unwrap();
    assert!(!events.contains(CANARY), "{events}");
    assert!(events.contains("AdoptionClaimed"), "{events}");

    drift_is_repaired(&stack, &old).await;
    a_fleet_release_covers_it(&stack, &old).await;
    deletion_tears_the_adopted_app_down(&stack, &old).await;
}

/// A fleet-wide release updates the adopted instance like any other, on the adopted volume.
async fn a_fleet_release_covers_it(stack: &Stack, old: &LegacyApp) {
    let image = "ghcr.io/openclaw/openclaw:2026.9.6";
    let (code, body) = releases::post(
        stack,
        "/v1/releases",
        json!({"metadata": {"name": "after-adoption"}, "spec": {"image": image,
               "strategy": {"canary": 1, "waves": [100], "healthDeadlineSeconds": 120}}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let timeout = Duration::from_secs(120);
    let (done, _) = releases::wait_phase(stack, "after-adoption", "Completed", timeout).await;
    assert_eq!(done["status"]["members"], 1, "{done}");
    let machines = stack.fly_machines(&old.app).await;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["id"], old.machine_id.as_str());
    assert_eq!(machines[0]["config"]["image"], image);
    assert_eq!(stack.fly_volumes(&old.app).await[0]["id"], old.volume_id);
}

/// A machine changed out of band is put back, on the adopted volume.
async fn drift_is_repaired(stack: &Stack, old: &LegacyApp) {
    let machines = stack.fly_machines(&old.app).await;
    let mut config = machines[0]["config"].clone();
    let wanted = config["image"].clone();
    config["image"] = json!("someone/else:latest");
    let path = format!("/v1/apps/{}/machines/{}", old.app, old.machine_id);
    let (code, body) = stack
        .fly(Method::POST, &path, Some(json!({"config": config})))
        .await;
    assert!(code.is_success(), "{code} {body}");
    stack.reconcile_now("legacy").await;
    eventually(
        Duration::from_secs(30),
        "the image to be put back",
        || async {
            let machines = stack.fly_machines(&old.app).await;
            (machines.len() == 1 && machines[0]["config"]["image"] == wanted).then_some(())
        },
    )
    .await;
    let volumes = stack.fly_volumes(&old.app).await;
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0]["id"], old.volume_id);
}

/// The adopted app is ours: deletion removes machine, volume, certificate, record and app.
async fn deletion_tears_the_adopted_app_down(stack: &Stack, old: &LegacyApp) {
    assert_eq!(stack.delete("legacy").await, StatusCode::ACCEPTED);
    eventually(Duration::from_secs(60), "the row to be gone", || async {
        (stack.get("legacy").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let apps = stack.fly_apps().await;
    assert!(
        !apps
            .iter()
            .any(|a| a["name"] == old.app.as_str() && a["deleting_at"].is_null()),
        "{apps:?}"
    );
    assert!(stack.fly_machines(&old.app).await.is_empty());
    assert!(legacy::dns_records(stack, &old.hostname).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_outside_the_prefix_or_held_by_another_instance_is_refused_by_the_api() {
    let stack = Stack::start(StackOptions::default()).await;
    for app in ["legacy", "xx-legacy", "oc-other"] {
        let (code, answer) = adopt(&stack, "legacy", &adoption(app, CANARY)).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{app}: {answer}");
        assert!(answer.contains("\"app\""), "{answer}");
        assert!(!answer.contains(CANARY), "{answer}");
    }
    let (code, _) = stack
        .put("taken", json!({"customerId": "c", "region": "iad"}))
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, answer) = adopt(&stack, "taken", &adoption("oc-taken", CANARY)).await;
    assert_eq!(code, StatusCode::CONFLICT, "an existing instance: {answer}");
    let (code, answer) = adopt(&stack, "legacy", &json!({"app": "oc-legacy", "spec": {}})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adoptions_of_one_app_adopt_it_once() {
    let stack = Stack::start(StackOptions::default()).await;
    let body = adoption("oc-twice", CANARY);
    let answers =
        futures_util::future::join_all((0..4).map(|_| adopt(&stack, "twice", &body))).await;
    let created = answers
        .iter()
        .filter(|(c, _)| *c == StatusCode::CREATED)
        .count();
    let conflicts = answers
        .iter()
        .filter(|(c, _)| *c == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 3), "{answers:?}");
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM adoptions WHERE app_name = 'oc-twice'")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_not_in_the_web_apps_layout_is_refused_and_untouched() {
    let stack = Stack::start(StackOptions::default()).await;
    let two = LegacyOptions {
        machines: 2,
        ..LegacyOptions::default()
    };
    let old = legacy::build(&stack, "twomachines", CANARY, &two).await;
    let machines_before = stack.fly_machines(&old.app).await;
    let updates = calls(&stack, UPDATE).await;
    let (code, answer) = adopt(&stack, "twomachines", &adoption(&old.app, CANARY)).await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    let failed = stack
        .wait_for(
            "twomachines",
            "phase Failed",
            Duration::from_secs(30),
            |b| b["status"]["phase"] == "Failed",
        )
        .await;
    let ready = condition(&failed, "Ready");
    assert_eq!(ready["reason"], "AdoptionRefused", "{failed}");
    assert!(
        ready["message"].as_str().unwrap().contains("2 machines"),
        "{ready}"
    );
    assert_eq!(calls(&stack, UPDATE).await, updates, "nothing was updated");
    assert_eq!(stack.fly_machines(&old.app).await, machines_before);
    assert_eq!(
        legacy::secret_value(&stack, &old.app, "OPENCLAW_GATEWAY_TOKEN")
            .await
            .as_deref(),
        Some(CANARY)
    );

    // Deleting the instance leaves the app it never adopted as it was.
    assert_eq!(stack.delete("twomachines").await, StatusCode::ACCEPTED);
    eventually(Duration::from_secs(30), "the row to be gone", || async {
        (stack.get("twomachines").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert_eq!(stack.fly_machines(&old.app).await.len(), 2);
    assert_eq!(stack.fly_volumes(&old.app).await.len(), 1);
    assert_eq!(legacy::dns_records(&stack, &old.hostname).await.len(), 1);
}

/// Output of one run of the built binary.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `openclaws-controller import ARGS` against the stack's simulator and API.
async fn import(stack: &Stack, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openclaws-controller"));
    command
        .arg("import")
        .args(args)
        .env("FLY_API_BASE", &stack.sim_url)
        .env("FLY_API_TOKEN", &stack.settings.fly.fly_api_token)
        .env("FLY_ORG", &stack.settings.fly.fly_org)
        .env("FLY_APP_PREFIX", &stack.settings.fly.fly_app_prefix)
        .env("OPENCLAWS_BASE_DOMAIN", &stack.settings.base_domain)
        .env("OPENCLAWS_API_URL", &stack.api_url)
        .env("OPENCLAWS_API_TOKEN", WRITER)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the command finishes")
        .expect("the binary runs");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A tokens file as the web app's database would export it.
fn tokens_file(tokens: &Value) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("openclaws-tokens-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, tokens.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_lists_the_old_fleet_and_adopts_the_selected_apps() {
    let stack = Stack::start(StackOptions::default()).await;
    let alpha = legacy::build(&stack, "alpha", "tok-alpha-5b1e", &LegacyOptions::default()).await;
    let two = LegacyOptions {
        machines: 2,
        ..LegacyOptions::default()
    };
    legacy::build(&stack, "beta", "tok-beta-77c2", &two).await;
    legacy::build(&stack, "gamma", "tok-gamma-0d9f", &LegacyOptions::default()).await;
    stack
        .put("ours", json!({"customerId": "c", "region": "iad"}))
        .await;
    stack.wait_ready("ours", Duration::from_secs(60)).await;

    let listed = import(&stack, &["--dry-run"]).await;
    println!("{}", listed.stdout);
    assert!(listed.ok, "{}{}", listed.stdout, listed.stderr);
    let page = &listed.stdout;
    assert!(
        page.contains("4 app(s) named oc-* in organization personal: 2 can be adopted"),
        "{page}"
    );
    assert!(
        page.contains("ADOPT   oc-alpha as instance alpha (region iad, volume 1 GB)"),
        "{page}"
    );
    assert!(
        page.contains(&format!("machine {}", alpha.machine_id)),
        "{page}"
    );
    assert!(page.contains("1 restart"), "{page}");
    assert!(
        page.contains(&format!("volume {} (openclaw_data", alpha.volume_id)),
        "{page}"
    );
    assert!(
        page.contains("SKIP    oc-beta: the app has 2 machines"),
        "{page}"
    );
    assert!(
        page.contains("SKIP    oc-ours: created by the controller"),
        "{page}"
    );
    assert_eq!(
        stack.get("alpha").await.0,
        StatusCode::NOT_FOUND,
        "a dry run writes nothing"
    );

    let tokens = tokens_file(&json!({
        "oc-alpha": "tok-alpha-5b1e",
        "oc-beta": "tok-beta-77c2",
        "oc-gamma": {"gatewayToken": "tok-gamma-0d9f", "customerId": "cus_gamma"}
    }));
    let tokens = tokens.to_str().unwrap();
    let some = import(
        &stack,
        &["--app", "oc-alpha", "--app", "oc-beta", "--tokens", tokens],
    )
    .await;
    assert!(!some.ok, "beta cannot be adopted: {}", some.stdout);
    assert!(
        some.stdout.contains("oc-alpha: adopted as instance alpha"),
        "{}",
        some.stdout
    );
    assert!(
        some.stdout
            .contains("oc-beta: not adopted: the app has 2 machines"),
        "{}",
        some.stdout
    );
    for run in [&listed, &some] {
        assert!(
            !run.stdout.contains("tok-") && !run.stderr.contains("tok-"),
            "a token was printed"
        );
    }
    let ready = stack.wait_ready("alpha", Duration::from_secs(60)).await;
    assert_eq!(
        ready["metadata"]["managedFields"][0]["manager"], "import",
        "{ready}"
    );
    assert_eq!(
        legacy::secret_value(&stack, "oc-alpha", "OPENCLAW_GATEWAY_TOKEN")
            .await
            .as_deref(),
        Some("tok-alpha-5b1e")
    );

    let rest = import(&stack, &["--all", "--tokens", tokens]).await;
    assert!(rest.ok, "{}{}", rest.stdout, rest.stderr);
    assert_eq!(
        rest.stdout.trim(),
        "oc-gamma: adopted as instance gamma (follow it with: openclaws-controller describe gamma)"
    );
    let gamma = stack.wait_ready("gamma", Duration::from_secs(60)).await;
    assert_eq!(gamma["spec"]["customerId"], "cus_gamma");
    std::fs::remove_file(tokens).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_imports_of_one_app_adopt_it_once() {
    let stack = Stack::start(StackOptions::default()).await;
    legacy::build(&stack, "delta", "tok-delta-31aa", &LegacyOptions::default()).await;
    let tokens = tokens_file(&json!({"oc-delta": "tok-delta-31aa"}));
    let tokens = tokens.to_str().unwrap();
    let args = ["--app", "oc-delta", "--tokens", tokens];
    let (a, b) = tokio::join!(import(&stack, &args), import(&stack, &args));
    let adopted = [&a, &b].iter().filter(|r| r.ok).count();
    assert_eq!(adopted, 1, "{}\n{}", a.stdout, b.stdout);
    let refused = if a.ok { &b } else { &a };
    assert!(refused.stdout.contains("409"), "{}", refused.stdout);
    stack.wait_ready("delta", Duration::from_secs(60)).await;
    assert_eq!(stack.fly_machines("oc-delta").await.len(), 1);
    assert_eq!(stack.fly_volumes("oc-delta").await.len(), 1);
    std::fs::remove_file(tokens).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_another_instance_owns_is_never_adopted() {
    let stack = Stack::start(StackOptions::default()).await;
    let old = legacy::build(&stack, "marked", CANARY, &LegacyOptions::default()).await;
    let path = format!("/v1/apps/{}/machines/{}", old.app, old.machine_id);
    let (_, machine) = stack.fly(Method::GET, &path, None).await;
    let mut config = machine["config"].clone();
    let other = "0190f5c2-0000-7000-8000-000000000001";
    config["metadata"] = json!({"openclaws_instance_uid": other});
    let (code, body) = stack
        .fly(Method::POST, &path, Some(json!({"config": config})))
        .await;
    assert!(code.is_success(), "{code} {body}");
    let updates = calls(&stack, UPDATE).await;

    let (code, answer) = adopt(&stack, "marked", &adoption(&old.app, CANARY)).await;
    assert_eq!(code, StatusCode::CREATED, "{answer}");
    let failed = stack
        .wait_for("marked", "phase Failed", Duration::from_secs(30), |b| {
            b["status"]["phase"] == "Failed"
        })
        .await;
    let ready = condition(&failed, "Ready");
    assert_eq!(ready["reason"], "AdoptionRefused", "{failed}");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("already belongs to instance {other}")),
        "{message}"
    );
    assert_eq!(calls(&stack, UPDATE).await, updates, "nothing was updated");
}
