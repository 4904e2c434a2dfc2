//! `?dryRun=All` on PUT, PATCH (merge and apply) and DELETE: validated and carried out in a
//! transaction that is rolled back, so the answer is the object as it would be with the plan
//! preview for it, and nothing is stored: no row, no secret, no event, no work.

use openclaws_testkit::api::{minimal, spawn_api, TestApi, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn send(
    api: &TestApi,
    method: Method,
    path: &str,
    media: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let body = body.map(|b| (media, serde_json::to_vec(b).unwrap()));
    let reply = api.send(method, path, Some(WRITER), body, &[]).await;
    (reply.status, reply.json)
}

/// Rows an instance's writes leave behind, to show a dry run left none.
async fn footprint(api: &TestApi) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM instances), (SELECT COUNT(*) FROM secrets), \
                (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM work)",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap()
}

fn steps(plan: &Value) -> Vec<&str> {
    plan["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["step"].as_str())
        .collect()
}

#[tokio::test]
async fn a_dry_run_create_answers_the_object_and_its_plan_and_stores_nothing() {
    a_dry_run_create_answers_the_object_and_its_plan_and_stores_nothing_on(&spawn_api().await)
        .await;
}

/// [`a_dry_run_create_answers_the_object_and_its_plan_and_stores_nothing`] on a given API (also run through a transaction pooler).
pub(crate) async fn a_dry_run_create_answers_the_object_and_its_plan_and_stores_nothing_on(
    api: &TestApi,
) {
    let canary = "sk-ant-dryrun-canary-0123456789";
    let body = json!({"spec": {"customerId": "c", "region": "iad",
                               "providerKeys": {"anthropicApiKey": canary}}});
    let json = "application/json";
    let (code, result) = send(
        api,
        Method::PUT,
        "/v1/instances/trial?dryRun=All",
        json,
        Some(&body),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{result}");
    assert_eq!(result["metadata"]["name"], "trial");
    assert_eq!(
        result["spec"]["providerKeys"]["anthropicApiKey"]["set"],
        true
    );
    assert_eq!(result["plan"]["name"], "trial");
    assert_eq!(
        steps(&result["plan"]).first(),
        Some(&"CreateApp"),
        "{result}"
    );
    assert!(!result.to_string().contains(canary));
    assert_eq!(footprint(api).await, (0, 0, 0, 0));
    assert_eq!(
        api.get("/v1/instances/trial").await.status,
        StatusCode::NOT_FOUND
    );

    // An apply that would create is the same.
    let path = "/v1/instances/trial?fieldManager=dashboard&dryRun=All";
    let (code, applied) = send(
        api,
        Method::PATCH,
        path,
        "application/apply-patch+json",
        Some(&minimal("c")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{applied}");
    assert_eq!(
        applied["metadata"]["managedFields"][0]["manager"],
        "dashboard"
    );
    assert_eq!(footprint(api).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn dry_run_changes_and_deletes_leave_the_stored_instance_alone() {
    dry_run_changes_and_deletes_leave_the_stored_instance_alone_on(&spawn_api().await).await;
}

/// [`dry_run_changes_and_deletes_leave_the_stored_instance_alone`] on a given API (also run through a transaction pooler).
pub(crate) async fn dry_run_changes_and_deletes_leave_the_stored_instance_alone_on(api: &TestApi) {
    let created = api.put("kept", &minimal("c")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let before = footprint(api).await;
    let version = created.json["metadata"]["resourceVersion"].clone();

    let patch = json!({"spec": {"guest": {"memoryMb": 4096}, "paused": true}});
    let merge = "application/merge-patch+json";
    let (code, patched) = send(
        api,
        Method::PATCH,
        "/v1/instances/kept?dryRun=All",
        merge,
        Some(&patch),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    assert_eq!(patched["spec"]["guest"]["memoryMb"], 4096);
    assert_eq!(patched["metadata"]["generation"], 2);
    assert_eq!(patched["plan"]["paused"], true);

    let (code, deleted) = send(
        api,
        Method::DELETE,
        "/v1/instances/kept?dryRun=All",
        merge,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{deleted}");
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleted["plan"]["deleting"], true);

    let stored = api.get("/v1/instances/kept").await.json;
    assert_eq!(stored["metadata"]["resourceVersion"], version);
    assert_eq!(stored["spec"]["guest"]["memoryMb"], 2048);
    assert!(stored["metadata"].get("deletionTimestamp").is_none());
    assert!(stored.get("plan").is_none(), "only dry runs carry a plan");
    assert_eq!(footprint(api).await, before);
}

#[tokio::test]
async fn dry_runs_are_validated_like_writes() {
    let api = spawn_api().await;
    let json = "application/json";
    let (code, reply) = send(
        &api,
        Method::PUT,
        "/v1/instances/trial?dryRun=Some",
        json,
        Some(&minimal("c")),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["error"]["fields"][0]["path"], "dryRun");
    let invalid = json!({"spec": {"customerId": "c", "region": "mars"}});
    let (code, _) = send(
        &api,
        Method::PUT,
        "/v1/instances/trial?dryRun=All",
        json,
        Some(&invalid),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let (code, _) = send(
        &api,
        Method::DELETE,
        "/v1/instances/absent?dryRun=All",
        json,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = send(
        &api,
        Method::DELETE,
        "/v1/instances/absent?dryRun=yes",
        json,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(footprint(&api).await, (0, 0, 0, 0));
}
