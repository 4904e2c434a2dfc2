//! Black-box tests of write semantics: a write identical to what is stored changes nothing,
//! concurrent creates of one name never conflict, concurrent merge patches of one instance all
//! land (none lost, each its own version), `If-None-Match: *` creates only, integral
//! floats are the integers the document promises, and provider key fingerprints shown to
//! readers depend on the instance.

use futures_util::future::join_all;
use openclaws_testkit::api::{minimal, spawn_api, TestApi, READER, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// What a no-op must leave alone: the row's version and transaction id (any UPDATE, even one
/// changing nothing, gives the row a new `xmin`), its work row, and the number of events.
async fn footprint(api: &TestApi, name: &str) -> (i64, String, Option<(String, String)>, i64) {
    let (version, xmin): (i64, String) =
        sqlx::query_as("SELECT resource_version, xmin::text FROM instances WHERE name = $1")
            .bind(name)
            .fetch_one(&api.pool)
            .await
            .unwrap();
    let work: Option<(String, String)> = sqlx::query_as(
        "SELECT w.due_at::text, w.reason FROM work w JOIN instances i ON i.uid = w.instance_uid \
         WHERE i.name = $1",
    )
    .bind(name)
    .fetch_optional(&api.pool)
    .await
    .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE instance_name = $1")
        .bind(name)
        .fetch_one(&api.pool)
        .await
        .unwrap();
    (version, xmin, work, events)
}

#[tokio::test]
async fn identical_writes_change_nothing() {
    let api = spawn_api().await;
    let body = json!({
        "metadata": {"labels": {"team": "a"}},
        "spec": {"customerId": "c-1", "region": "iad", "guest": {"memoryMb": 4096},
                 "providerKeys": {"anthropicApiKey": "sk-ant-noop-0123456789"}}
    });
    let created = api.put("noop", &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // Make the work row distinguishable from anything a write would set.
    sqlx::query("UPDATE work SET reason = 'marker', due_at = now() + interval '1 hour'")
        .execute(&api.pool)
        .await
        .unwrap();
    let before = footprint(&api, "noop").await;

    let again = api.put("noop", &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["metadata"]["resourceVersion"], "1");
    assert_eq!(again.headers["etag"], "\"1\"");
    assert_eq!(again.json, created.json);
    assert_eq!(footprint(&api, "noop").await, before);

    // The read shape sent back, defaults spelled out, the kept key: still nothing.
    let mut read_back = json!({"metadata": {"labels": created.json["metadata"]["labels"]},
                              "spec": created.json["spec"]});
    read_back["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(api.put("noop", &read_back).await.status, StatusCode::OK);
    let patched = api
        .patch("noop", &json!({"spec": {"guest": {"memoryMb": 4096}}}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let labels = api
        .patch("noop", &json!({"metadata": {"labels": {"team": "a"}}}))
        .await;
    assert_eq!(labels.status, StatusCode::OK);
    assert_eq!(footprint(&api, "noop").await, before);

    // A stale precondition is still refused, even when nothing would change.
    let stale = api
        .send(
            Method::PUT,
            "/v1/instances/noop",
            Some(WRITER),
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
            &[("if-match", "\"7\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);

    // A real change still writes, enqueues and records.
    let changed = api
        .patch("noop", &json!({"spec": {"guest": {"memoryMb": 2048}}}))
        .await;
    assert_eq!(changed.json["metadata"]["resourceVersion"], "2");
    let after = footprint(&api, "noop").await;
    assert_eq!(after.0, 2);
    assert_ne!(after.1, before.1);
    assert_eq!(after.2.unwrap().1, "SpecUpdated");
    assert_eq!(after.3, before.3 + 1);
}

/// A merge patch is written in one statement against the row as read; when another write got
/// there first it goes the locking way and is planned again, so every patch lands.
#[tokio::test]
async fn concurrent_merge_patches_of_one_instance_all_land() {
    let api = spawn_api().await;
    let created = api.put("many", &minimal("c-many")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // Fewer than the API's 10 pooled connections: the patches race on the row, not for a
    // connection (one waiting longer than `DB_WAIT` for the pool gets a 503 on a loaded machine).
    const PATCHES: usize = 8;
    let label = |i: usize| json!({"metadata": {"labels": {format!("l{i}"): "x"}}});
    let replies = join_all((0..PATCHES).map(|i| {
        let body = label(i);
        let api = &api;
        async move { api.patch("many", &body).await }
    }))
    .await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::OK),
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, &r.text))
            .collect::<Vec<_>>()
    );
    let mut versions: Vec<&str> = replies
        .iter()
        .map(|r| r.json["metadata"]["resourceVersion"].as_str().unwrap())
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), PATCHES, "each patch its own version");
    let after = api.get("/v1/instances/many").await;
    let labels = after.json["metadata"]["labels"].as_object().unwrap();
    assert!(
        (0..PATCHES).all(|i| labels.contains_key(&format!("l{i}"))),
        "{labels:?}"
    );
    let updates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE instance_name = 'many' AND reason = 'LabelsUpdated'",
    )
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(updates, PATCHES as i64);
}

#[tokio::test]
async fn concurrent_creates_of_one_name_never_conflict() {
    let api = spawn_api().await;
    let body = minimal("c-race");
    let replies = join_all((0..24).map(|_| api.put("race", &body))).await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((created, ok), (1, 23), "{statuses:?}");
    let uid = &replies[0].json["metadata"]["uid"];
    assert!(replies.iter().all(|r| &r.json["metadata"]["uid"] == uid));
    // One version for all: the losers' writes were identical, so they changed nothing.
    let version = &replies[0].json["metadata"]["resourceVersion"];
    assert!(replies
        .iter()
        .all(|r| &r.json["metadata"]["resourceVersion"] == version));
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM events WHERE instance_name = 'race'")
            .fetch_all(&api.pool)
            .await
            .unwrap();
    assert_eq!(reasons, ["Created"]);

    // Create-only: one 201, every other 412.
    let create_only = |name: &'static str| {
        api.send(
            Method::PUT,
            name,
            Some(WRITER),
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
            &[("if-none-match", "*")],
        )
    };
    let replies = join_all((0..24).map(|_| create_only("/v1/instances/race-only"))).await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((created, refused), (1, 23), "{statuses:?}");
    let refusal = replies
        .iter()
        .find(|r| r.status == StatusCode::PRECONDITION_FAILED)
        .unwrap();
    assert_eq!(refusal.json["error"]["code"], "precondition_failed");
}

#[tokio::test]
async fn if_none_match_star_creates_only() {
    let api = &spawn_api().await;
    let put = |extra: (&'static str, &'static str)| async move {
        api.send(
            Method::PUT,
            "/v1/instances/once",
            Some(WRITER),
            Some((
                "application/json",
                serde_json::to_vec(&minimal("c")).unwrap(),
            )),
            &[extra],
        )
        .await
    };
    assert_eq!(
        put(("if-none-match", "*")).await.status,
        StatusCode::CREATED
    );
    let again = put(("if-none-match", "*")).await;
    assert_eq!(
        again.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        again.text
    );
    assert_eq!(again.json["error"]["code"], "precondition_failed");
    let other = put(("if-none-match", "\"1\"")).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert_eq!(put(("x-unrelated", "1")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn integral_floats_are_the_integers_the_schema_allows() {
    let api = spawn_api().await;
    let reply = api
        .put(
            "floats",
            &json!({"spec": {"customerId": "c", "region": "iad", "volumeSizeGb": 2.0,
                "guest": {"cpus": 2.0, "memoryMb": 4.096e3}, "gatewayTokenRotation": 0.0}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["spec"]["guest"]["memoryMb"], 4096);
    assert_eq!(reply.json["spec"]["volumeSizeGb"], 2);
    let fraction = api
        .patch("floats", &json!({"spec": {"guest": {"cpus": 2.5}}}))
        .await;
    assert_eq!(fraction.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fraction.field_paths(), ["spec.guest.cpus"]);
}

async fn shown_key(api: &TestApi, name: &str) -> Value {
    let reply = api
        .send(
            Method::GET,
            &format!("/v1/instances/{name}"),
            Some(READER),
            None,
            &[],
        )
        .await;
    reply.json["spec"]["providerKeys"]["anthropicApiKey"].clone()
}

#[tokio::test]
async fn equal_keys_on_two_instances_show_different_fingerprints() {
    let api = spawn_api().await;
    let with_key = |customer: &str, key: &str| {
        json!({"spec": {"customerId": customer, "region": "iad",
            "providerKeys": {"anthropicApiKey": key}}})
    };
    let shared = "sk-ant-shared-0123456789abcdef";
    let a = api.put("first", &with_key("c-a", shared)).await;
    let b = api.put("second", &with_key("c-b", shared)).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(b.status, StatusCode::CREATED);
    let fa = shown_key(&api, "first").await["fingerprint"].clone();
    let fb = shown_key(&api, "second").await["fingerprint"].clone();
    assert!(fa.as_str().unwrap().starts_with("hmac-sha256:"), "{fa}");
    assert_ne!(fa, fb, "a reader could tell the two customers share a key");
    assert_eq!(
        a.json["spec"]["providerKeys"]["anthropicApiKey"]["fingerprint"],
        fa
    );
    let listed = api
        .send(Method::GET, "/v1/instances", Some(READER), None, &[])
        .await;
    let listed: Vec<&Value> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["spec"]["providerKeys"]["anthropicApiKey"]["fingerprint"])
        .collect();
    assert_eq!(listed, [&fa, &fb]);

    // Stored as before this change (the value's own fingerprint, equal on both rows), so
    // fingerprints stored by earlier versions keep working: the same key is recognised.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT spec->'providerKeys'->'anthropicApiKey'->>'fingerprint' FROM instances ORDER BY name",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap();
    assert_eq!(stored[0], stored[1]);
    assert_eq!(stored[0], api.cipher.fingerprint(shared.as_bytes()));
    assert_ne!(Value::String(stored[0].clone()), fa);
    let same = api.put("first", &with_key("c-a", shared)).await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.json["metadata"]["resourceVersion"], "1");
    assert_eq!(
        shown_key(&api, "first").await["fingerprint"],
        fa,
        "not stable"
    );

    // A new value shows a new fingerprint.
    let rotated = api
        .put("first", &with_key("c-a", "sk-ant-new-0123456789"))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_ne!(shown_key(&api, "first").await["fingerprint"], fa);
    assert_eq!(shown_key(&api, "second").await["fingerprint"], fb);
}
