//! Field ownership (server-side apply): the dashboard's writes no longer undo support's pause or
//! recorded pairing approvals; an apply that would change another manager's field is a 409
//! naming it, unless forced; fields a manager stops applying go back to their defaults.

use openclaws_testkit::api::{spawn_api, TestApi, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const APPLY: &str = "application/apply-patch+json";

async fn send(
    api: &TestApi,
    method: Method,
    path: &str,
    media: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let body = Some((media, serde_json::to_vec(body).unwrap()));
    let reply = api.send(method, path, Some(WRITER), body, &[]).await;
    (reply.status, reply.json)
}

async fn apply(api: &TestApi, name: &str, query: &str, body: &Value) -> (StatusCode, Value) {
    let path = format!("/v1/instances/{name}?{query}");
    send(api, Method::PATCH, &path, APPLY, body).await
}

fn owned_by<'a>(object: &'a Value, manager: &str) -> Vec<&'a str> {
    let entries = object["metadata"]["managedFields"].as_array();
    entries
        .into_iter()
        .flatten()
        .filter(|e| e["manager"] == manager)
        .flat_map(|e| e["fields"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect()
}

fn settings(memory: u32) -> Value {
    json!({"spec": {"customerId": "cus_1", "region": "iad",
                    "guest": {"memoryMb": memory}, "pairing": {"policy": "manual"}}})
}

#[tokio::test]
async fn a_dashboard_put_keeps_supports_pause_and_recorded_approvals() {
    a_dashboard_put_keeps_supports_pause_and_recorded_approvals_on(&spawn_api().await).await;
}

/// [`a_dashboard_put_keeps_supports_pause_and_recorded_approvals`] on a given API (also run through a transaction pooler).
pub(crate) async fn a_dashboard_put_keeps_supports_pause_and_recorded_approvals_on(api: &TestApi) {
    let dashboard = "/v1/instances/shared?fieldManager=dashboard";
    let (code, _) = send(
        api,
        Method::PUT,
        dashboard,
        "application/json",
        &settings(2048),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    // Support pauses it, and a device approval is recorded through the pairing route.
    let pause = json!({"spec": {"paused": true}});
    let path = "/v1/instances/shared?fieldManager=support";
    let (code, paused) = send(
        api,
        Method::PATCH,
        path,
        "application/merge-patch+json",
        &pause,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{paused}");
    assert_eq!(owned_by(&paused, "support"), ["/spec/paused"]);
    let approval = json!({"requestId": "req-1"});
    let reply = api
        .write(
            Method::POST,
            "/v1/instances/shared/pairing/approvals",
            &approval,
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.text);

    // The dashboard's next full PUT of the customer's settings leaves out both.
    let (code, after) = send(
        api,
        Method::PUT,
        dashboard,
        "application/json",
        &settings(4096),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{after}");
    assert_eq!(after["spec"]["paused"], true, "support's pause survives");
    assert_eq!(after["spec"]["guest"]["memoryMb"], 4096);
    let approvals = after["spec"]["pairing"]["approvals"].as_array().unwrap();
    assert_eq!(
        approvals.len(),
        1,
        "the recorded approval survives: {after}"
    );
    assert!(owned_by(&after, "dashboard").contains(&"/spec/guest/memoryMb"));
    assert_eq!(
        owned_by(&after, "pairing-approvals"),
        ["/spec/pairing/approvals"]
    );

    // A client naming no manager writes as `api` and replaces what nobody else owns.
    let plain = api.put("shared", &settings(2048)).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text);
    assert_eq!(plain.json["spec"]["paused"], true);
    assert!(owned_by(&plain.json, "api").contains(&"/spec/guest/memoryMb"));
    assert!(!owned_by(&plain.json, "dashboard").contains(&"/spec/guest/memoryMb"));
}

#[tokio::test]
async fn an_apply_over_another_managers_field_conflicts_unless_forced() {
    an_apply_over_another_managers_field_conflicts_unless_forced_on(&spawn_api().await).await;
}

/// [`an_apply_over_another_managers_field_conflicts_unless_forced`] on a given API (also run through a transaction pooler).
pub(crate) async fn an_apply_over_another_managers_field_conflicts_unless_forced_on(api: &TestApi) {
    let (code, created) = apply(api, "owned", "fieldManager=dashboard", &settings(2048)).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert!(owned_by(&created, "dashboard").contains(&"/spec/customerId"));
    let (code, _) = apply(
        api,
        "owned",
        "fieldManager=support",
        &json!({"spec": {"paused": true}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK);

    // The dashboard's whole intent, now with the instance running.
    let mut unpause = settings(2048);
    unpause["spec"]["paused"] = json!(false);
    let (code, refused) = apply(api, "owned", "fieldManager=dashboard", &unpause).await;
    assert_eq!(code, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "conflict");
    assert_eq!(
        refused["error"]["fields"],
        json!([{"path": "/spec/paused", "message": "is managed by support"}])
    );
    let unchanged = api.get("/v1/instances/owned").await.json;
    assert_eq!(
        unchanged["spec"]["paused"], true,
        "a conflict changes nothing"
    );

    // Applying the value the owner has is no conflict: the field is shared.
    let same = json!({"spec": {"paused": true}});
    let (code, shared) = apply(api, "owned", "fieldManager=ops", &same).await;
    assert_eq!(code, StatusCode::OK, "{shared}");
    assert_eq!(owned_by(&shared, "ops"), ["/spec/paused"]);
    assert_eq!(owned_by(&shared, "support"), ["/spec/paused"]);

    let (code, forced) = apply(api, "owned", "fieldManager=dashboard&force=true", &unpause).await;
    assert_eq!(code, StatusCode::OK, "{forced}");
    assert_eq!(forced["spec"]["paused"], false);
    assert!(owned_by(&forced, "support").is_empty());
    assert!(owned_by(&forced, "dashboard").contains(&"/spec/paused"));
    assert_eq!(
        owned_by(&forced, "ops"),
        Vec::<&str>::new(),
        "ops lost it too"
    );
}

#[tokio::test]
async fn fields_a_manager_stops_applying_return_to_their_defaults() {
    let api = spawn_api().await;
    let (code, _) = apply(&api, "shrink", "fieldManager=dashboard", &settings(4096)).await;
    assert_eq!(code, StatusCode::CREATED);
    let version = |o: &Value| o["metadata"]["resourceVersion"].clone();
    let without_guest = json!({"spec": {"customerId": "cus_1", "region": "iad"}});
    let (code, after) = apply(&api, "shrink", "fieldManager=dashboard", &without_guest).await;
    assert_eq!(code, StatusCode::OK, "{after}");
    assert_eq!(
        after["spec"]["guest"]["memoryMb"], 2048,
        "back to the default"
    );
    assert_eq!(
        after["spec"]["pairing"]["policy"], "auto",
        "back to the default"
    );

    // The same apply again changes nothing: no new version, no event.
    let events_before = api.get("/v1/instances/shrink/events").await.json["items"]
        .as_array()
        .map_or(0, Vec::len);
    let (code, again) = apply(&api, "shrink", "fieldManager=dashboard", &without_guest).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(version(&again), version(&after));
    let events_after = api.get("/v1/instances/shrink/events").await.json["items"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(events_before, events_after);
}

#[tokio::test]
async fn write_parameters_are_checked() {
    let api = spawn_api().await;
    let body = settings(2048);
    let (code, missing) = apply(&api, "params", "", &body).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{missing}");
    assert_eq!(missing["error"]["fields"][0]["path"], "fieldManager");
    for query in [
        "fieldManager=has%20space",
        "fieldManager=",
        "fieldManager=%00x",
    ] {
        let (code, reply) = apply(&api, "params", query, &body).await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {reply}");
    }
    let long = format!("fieldManager={}", "m".repeat(129));
    assert_eq!(
        apply(&api, "params", &long, &body).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let path = "/v1/instances/params?fieldManager=dashboard&force=true";
    let (code, reply) = send(&api, Method::PUT, path, "application/json", &body).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["error"]["fields"][0]["path"], "force");
    let (code, reply) = apply(&api, "params", "fieldManager=d&force=maybe", &body).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    // An apply that leaves the object invalid is refused like any write, and stores nothing.
    let (code, reply) = apply(
        &api,
        "params",
        "fieldManager=d",
        &json!({"spec": {"paused": true}}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(
        api.get("/v1/instances/params").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn concurrent_applies_of_a_new_name_create_it_once_and_never_conflict() {
    concurrent_applies_of_a_new_name_create_it_once_and_never_conflict_on(&spawn_api().await).await;
}

/// [`concurrent_applies_of_a_new_name_create_it_once_and_never_conflict`] on a given API (also run through a transaction pooler).
pub(crate) async fn concurrent_applies_of_a_new_name_create_it_once_and_never_conflict_on(
    api: &TestApi,
) {
    let body = settings(2048);
    let applies = (0..8).map(|_| apply(api, "racer", "fieldManager=dashboard", &body));
    let codes: Vec<StatusCode> = futures_util::future::join_all(applies)
        .await
        .into_iter()
        .map(|(code, _)| code)
        .collect();
    let created = codes.iter().filter(|c| **c == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| *c == StatusCode::CREATED || *c == StatusCode::OK),
        "{codes:?}"
    );
}
