//! Ownership: resources without our mark are never touched, whether the name belongs to another
//! organization or to a look-alike app in our own organization.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack, StackOptions};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_app_in_our_org_is_never_touched() {
    let stack = Stack::start(StackOptions::default()).await;
    // Someone created an app with our naming scheme by hand, with a volume and a machine.
    let (code, body) = stack
        .fly(
            Method::POST,
            "/v1/apps",
            Some(
                json!({"app_name": "oc-lookalike", "org_slug": "personal", "network": "hand-made"}),
            ),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    let (code, volume) = stack
        .fly(
            Method::POST,
            "/v1/apps/oc-lookalike/volumes",
            Some(json!({"name": "data", "region": "iad", "size_gb": 1})),
        )
        .await;
    assert!(code.is_success(), "{code} {volume}");
    let (code, machine) = stack
        .fly(
            Method::POST,
            "/v1/apps/oc-lookalike/machines",
            Some(json!({"region": "iad", "config": {"image": "nginx",
                "mounts": [{"volume": volume["id"], "path": "/data"}]}})),
        )
        .await;
    assert!(code.is_success(), "{code} {machine}");

    stack
        .put("lookalike", json!({"customerId": "c", "region": "iad"}))
        .await;
    let failed = stack
        .wait_for("lookalike", "phase Failed", Duration::from_secs(20), |b| {
            b["status"]["phase"] == "Failed"
        })
        .await;
    assert_eq!(condition(&failed, "Ready")["reason"], "AppNameTaken");
    assert_eq!(condition(&failed, "AppReady")["status"], "False");

    // Deleting the instance removes the row but leaves the look-alike app alone.
    assert_eq!(stack.delete("lookalike").await, StatusCode::ACCEPTED);
    eventually(Duration::from_secs(20), "the row to be gone", || async {
        (stack.get("lookalike").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let (code, _) = stack.fly(Method::GET, "/v1/apps/oc-lookalike", None).await;
    assert_eq!(code, StatusCode::OK, "the look-alike app still exists");
    let machines = stack.fly_machines("oc-lookalike").await;
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["id"], machine["id"]);
    assert_eq!(stack.fly_volumes("oc-lookalike").await.len(), 1);
    let (_, calls) = stack.fly(Method::GET, "/_sim/calls", None).await;
    let deletes: Vec<&String> = calls
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("DELETE "))
        .collect();
    assert!(deletes.is_empty(), "something was deleted: {deletes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_name_owned_by_another_org_fails_without_retry_storm() {
    let stack = Stack::start(StackOptions::default()).await;
    let (code, _) = stack
        .fly(
            Method::POST,
            "/_sim/foreign-apps",
            Some(json!({"name": "oc-elsewhere"})),
        )
        .await;
    assert!(code.is_success());
    stack
        .put("elsewhere", json!({"customerId": "c", "region": "iad"}))
        .await;
    let failed = stack
        .wait_for("elsewhere", "phase Failed", Duration::from_secs(20), |b| {
            b["status"]["phase"] == "Failed"
        })
        .await;
    assert_eq!(condition(&failed, "Ready")["reason"], "AppNameTaken");
    // Blocked until the spec changes: the next visit is a resync away, not a backoff.
    let next =
        chrono::DateTime::parse_from_rfc3339(failed["status"]["nextReconcileAt"].as_str().unwrap())
            .unwrap();
    assert!(
        next > chrono::Utc::now() + chrono::Duration::seconds(200),
        "{next}"
    );
}
