//! Black-box tests of the instance lifecycle over real HTTP and a real PostgreSQL.

use chrono::{DateTime, Utc};
use openclaws_testkit::api::{minimal, spawn_api, Reply, TestApi, WRITER};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn work_row(api: &TestApi, name: &str) -> Option<(DateTime<Utc>, String, bool)> {
    sqlx::query_as(
        "SELECT w.due_at, w.reason, w.due_at <= now() FROM work w JOIN instances i ON i.uid = w.instance_uid \
         WHERE i.name = $1",
    )
    .bind(name)
    .fetch_optional(&api.pool)
    .await
    .unwrap()
}

async fn event_reasons(api: &TestApi, name: &str) -> Vec<String> {
    let reply = api.get(&format!("/v1/instances/{name}/events")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_then_replace_and_generation_semantics() {
    let api = spawn_api().await;
    let created = api.put("alpha", &minimal("cust-1")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let object = &created.json;
    assert_eq!(object["apiVersion"], "openclaws.biz/v1alpha1");
    assert_eq!(object["kind"], "OpenClawInstance");
    assert_eq!(object["metadata"]["name"], "alpha");
    assert_eq!(object["metadata"]["generation"], 1);
    assert_eq!(object["metadata"]["resourceVersion"], "1");
    assert_eq!(created.headers["etag"], "\"1\"");
    assert!(object["metadata"].get("deletionTimestamp").is_none());

    // Same spec again: 200 and nothing changes, not even the resource version.
    let same = api.put("alpha", &minimal("cust-1")).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(same.json["metadata"]["generation"], 1);
    assert_eq!(same.json["metadata"]["resourceVersion"], "1");
    assert_eq!(same.json["metadata"]["uid"], object["metadata"]["uid"]);

    // Defaults written explicitly are the same spec.
    let explicit = api
        .put(
            "alpha",
            &json!({"spec": {"customerId": "cust-1", "region": "iad", "volumeSizeGb": 1,
                "guest": {"cpuKind": "shared", "cpus": 2, "memoryMb": 2048}}}),
        )
        .await;
    assert_eq!(explicit.status, StatusCode::OK);
    assert_eq!(explicit.json["metadata"]["generation"], 1);
    assert_eq!(explicit.json["metadata"]["resourceVersion"], "1");

    // A real change bumps the generation.
    let changed = api
        .put(
            "alpha",
            &json!({"spec": {"customerId": "cust-1", "region": "iad", "runState": "stopped"}}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json["metadata"]["generation"], 2);
    assert_eq!(changed.json["spec"]["runState"], "stopped");

    // A status write (by the controller) never bumps the generation.
    sqlx::query(
        "UPDATE instances SET status = '{\"phase\":\"Ready\",\"observedGeneration\":2}', phase = 'Ready', \
         resource_version = resource_version + 1 WHERE name = 'alpha'",
    )
    .execute(&api.pool)
    .await
    .unwrap();
    let read = api.get("/v1/instances/alpha").await;
    assert_eq!(read.json["metadata"]["generation"], 2);
    assert_eq!(read.json["status"]["phase"], "Ready");
    // And an API write never touches status.
    let again = api
        .put(
            "alpha",
            &json!({"spec": {"customerId": "cust-1", "region": "iad", "runState": "running"}}),
        )
        .await;
    assert_eq!(again.json["metadata"]["generation"], 3);
    assert_eq!(again.json["status"]["phase"], "Ready");
    assert_eq!(again.json["status"]["observedGeneration"], 2);

    let reasons = event_reasons(&api, "alpha").await;
    assert_eq!(reasons[0], "Created");
    assert!(reasons.contains(&"SpecUpdated".to_owned()), "{reasons:?}");
    let events = api.get("/v1/instances/alpha/events").await;
    let updated: Vec<_> = events.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "SpecUpdated")
        .map(|e| e["generation"].as_i64().unwrap())
        .collect();
    assert_eq!(updated, [2, 3]);
}

#[tokio::test]
async fn defaults_are_applied_and_shown_on_read() {
    let api = spawn_api().await;
    assert_eq!(
        api.put("beta", &minimal("c")).await.status,
        StatusCode::CREATED
    );
    let read = api.get("/v1/instances/beta").await;
    assert_eq!(read.status, StatusCode::OK);
    let spec = &read.json["spec"];
    assert_eq!(spec["image"], "ghcr.io/openclaw/openclaw:main");
    assert_eq!(
        spec["guest"],
        json!({"cpuKind": "shared", "cpus": 2, "memoryMb": 2048})
    );
    assert_eq!(spec["volumeSizeGb"], 1);
    assert_eq!(spec["runState"], "running");
    assert_eq!(spec["exposure"], "public");
    assert_eq!(spec["model"]["primary"], "anthropic/claude-sonnet-4-6");
    assert_eq!(spec["model"]["fallbacks"], json!([]));
    assert_eq!(spec["pairing"]["policy"], "auto");
    assert_eq!(spec["composio"]["enabled"], false);
    assert_eq!(spec["paused"], false);
    assert_eq!(read.json["status"]["phase"], "Pending");
    let stored: serde_json::Value =
        sqlx::query_scalar("SELECT spec FROM instances WHERE name = 'beta'")
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(stored["image"], "ghcr.io/openclaw/openclaw:main");
}

#[tokio::test]
async fn merge_patch_updates_and_validates() {
    let api = spawn_api().await;
    api.put(
        "gamma",
        &json!({"metadata": {"labels": {"tier": "pro", "team": "a"}},
            "spec": {"customerId": "c", "region": "iad", "model": {"fallbacks": ["openai/gpt-5"]}}}),
    )
    .await;
    let patched = api
        .patch(
            "gamma",
            &json!({"metadata": {"labels": {"team": null, "x": "y"}},
                "spec": {"guest": {"memoryMb": 4096}, "identity": {"displayName": "Claw"},
                         "model": {"fallbacks": null}}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(
        patched.json["metadata"]["labels"],
        json!({"tier": "pro", "x": "y"})
    );
    assert_eq!(patched.json["spec"]["guest"]["memoryMb"], 4096);
    assert_eq!(patched.json["spec"]["guest"]["cpus"], 2);
    assert_eq!(patched.json["spec"]["identity"]["displayName"], "Claw");
    assert_eq!(patched.json["spec"]["model"]["fallbacks"], json!([]));
    assert_eq!(patched.json["metadata"]["generation"], 2);

    // application/json is accepted too; the result is validated.
    let bad = api
        .write(
            Method::PATCH,
            "/v1/instances/gamma",
            &json!({"spec": {"guest": {"memoryMb": 100000}, "bogus": true}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let paths = bad.field_paths();
    assert!(
        paths.contains(&"spec.guest.memoryMb".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"spec.bogus".to_owned()), "{paths:?}");

    // customerId is immutable; volumes only grow.
    let immut = api
        .patch("gamma", &json!({"spec": {"customerId": "other"}}))
        .await;
    assert_eq!(immut.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(immut.field_paths(), ["spec.customerId"]);
    let grow = api
        .patch("gamma", &json!({"spec": {"volumeSizeGb": 10}}))
        .await;
    assert_eq!(grow.status, StatusCode::OK);
    let shrink = api
        .patch("gamma", &json!({"spec": {"volumeSizeGb": 5}}))
        .await;
    assert_eq!(shrink.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(shrink.field_paths(), ["spec.volumeSizeGb"]);
    let shrink_put = api
        .put(
            "gamma",
            &json!({"spec": {"customerId": "c", "region": "iad"}}),
        )
        .await;
    assert_eq!(shrink_put.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(shrink_put.field_paths(), ["spec.volumeSizeGb"]);

    let missing = api.patch("nope-nope", &json!({"spec": {}})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json["error"]["code"], "not_found");
}

#[tokio::test]
async fn list_filters_and_pagination() {
    let api = spawn_api().await;
    for i in 0..7 {
        let customer = if i % 2 == 0 { "even" } else { "odd" };
        let reply = api.put(&format!("inst-{i:02}"), &minimal(customer)).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    sqlx::query("UPDATE instances SET phase = 'Ready' WHERE name IN ('inst-01', 'inst-04')")
        .execute(&api.pool)
        .await
        .unwrap();

    let all = api.get("/v1/instances").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json["kind"], "OpenClawInstanceList");
    assert_eq!(all.json["apiVersion"], "openclaws.biz/v1alpha1");
    assert_eq!(all.json["items"].as_array().unwrap().len(), 7);
    assert!(all.json["metadata"].get("continue").is_none());

    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/v1/instances?limit=3".to_owned(),
            Some(c) => format!("/v1/instances?limit=3&continue={c}"),
        };
        let page = api.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        pages += 1;
        for item in page.json["items"].as_array().unwrap() {
            names.push(item["metadata"]["name"].as_str().unwrap().to_owned());
        }
        match page.json["metadata"]["continue"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<_> = (0..7).map(|i| format!("inst-{i:02}")).collect();
    assert_eq!(names, expected);

    let odd = api.get("/v1/instances?customerId=odd").await;
    let odd_names: Vec<_> = odd.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(odd_names, ["inst-01", "inst-03", "inst-05"]);

    let ready = api.get("/v1/instances?phase=Ready&customerId=even").await;
    let ready_names: Vec<_> = ready.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(ready_names, ["inst-04"]);

    for bad in [
        "/v1/instances?limit=0",
        "/v1/instances?limit=1001",
        "/v1/instances?limit=abc",
        "/v1/instances?phase=Sleeping",
        "/v1/instances?continue=not-a-cursor",
    ] {
        let reply = api.get(bad).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(reply.field_paths().len(), 1, "{bad}");
    }
    let max = api.get("/v1/instances?limit=1000").await;
    assert_eq!(max.status, StatusCode::OK);
}

#[tokio::test]
async fn delete_is_idempotent_and_blocks_writes() {
    let api = spawn_api().await;
    api.put("delta", &minimal("c")).await;
    let first = api.delete("delta").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let stamp = first.json["metadata"]["deletionTimestamp"]
        .as_str()
        .expect("deletionTimestamp set")
        .to_owned();
    let (_, reason, due) = work_row(&api, "delta").await.unwrap();
    assert_eq!(reason, "deletion-requested");
    assert!(due);

    let second = api.delete("delta").await;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(second.json["metadata"]["deletionTimestamp"], stamp.as_str());

    let read = api.get("/v1/instances/delta").await;
    assert_eq!(read.json["metadata"]["deletionTimestamp"], stamp.as_str());

    let put = api.put("delta", &minimal("c")).await;
    assert_eq!(put.status, StatusCode::CONFLICT);
    assert!(put.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("being deleted"));
    let patch = api.patch("delta", &json!({"spec": {"paused": true}})).await;
    assert_eq!(patch.status, StatusCode::CONFLICT);

    assert_eq!(api.delete("never-was").await.status, StatusCode::NOT_FOUND);

    // Events survive the row (tombstones).
    sqlx::query("DELETE FROM instances WHERE name = 'delta'")
        .execute(&api.pool)
        .await
        .unwrap();
    assert_eq!(
        api.get("/v1/instances/delta").await.status,
        StatusCode::NOT_FOUND
    );
    let reasons = event_reasons(&api, "delta").await;
    assert!(
        reasons.contains(&"DeletionRequested".to_owned()),
        "{reasons:?}"
    );
    assert_eq!(
        api.get("/v1/instances/never-was/events").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn reconcile_makes_work_due_now() {
    let api = spawn_api().await;
    api.put("epsilon", &minimal("c")).await;
    sqlx::query("UPDATE work SET due_at = now() + interval '1 hour', reason = 'scheduled'")
        .execute(&api.pool)
        .await
        .unwrap();
    let (due_before, _, due_now) = work_row(&api, "epsilon").await.unwrap();
    assert!(!due_now);
    let reply = api
        .send(
            Method::POST,
            "/v1/instances/epsilon/reconcile",
            Some(WRITER),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert_eq!(reply.json["metadata"]["name"], "epsilon");
    let (due_after, reason, due_now) = work_row(&api, "epsilon").await.unwrap();
    assert!(due_now);
    assert!(due_after < due_before);
    assert_eq!(reason, "reconcile-requested");
    assert!(event_reasons(&api, "epsilon")
        .await
        .contains(&"ReconcileRequested".to_owned()));
    let missing = api
        .send(
            Method::POST,
            "/v1/instances/nobody/reconcile",
            Some(WRITER),
            None,
            &[],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_enqueues_in_the_same_transaction() {
    let api = spawn_api().await;
    let reply = api.put("zeta", &minimal("c")).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let (_, reason, due) = work_row(&api, "zeta").await.expect("work row after create");
    assert_eq!(reason, "created");
    assert!(due);
    // A failed write leaves neither a row nor work behind.
    let bad = api
        .put(
            "eta-x",
            &json!({"spec": {"customerId": "c", "region": "iad",
            "providerKeys": {"openaiApiKey": {"set": true}}}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM instances WHERE name = 'eta-x'")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let work: i64 = sqlx::query_scalar("SELECT count(*) FROM work")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(work, 1);
}

#[tokio::test]
async fn stale_resource_version_and_if_match_conflict() {
    let api = spawn_api().await;
    api.put("theta", &minimal("c")).await;
    // Body precondition.
    let ok = api
        .put(
            "theta",
            &json!({"metadata": {"resourceVersion": "1"}, "spec": {"customerId": "c", "region": "ord"}}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let stale = api
        .put(
            "theta",
            &json!({"metadata": {"resourceVersion": "1"}, "spec": {"customerId": "c", "region": "iad"}}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.json["error"]["code"], "conflict");
    // If-Match header.
    let body = serde_json::to_vec(&minimal("c")).unwrap();
    let stale_header = api
        .send(
            Method::PUT,
            "/v1/instances/theta",
            Some(WRITER),
            Some(("application/json", body.clone())),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale_header.status, StatusCode::CONFLICT);
    let fresh_header = api
        .send(
            Method::PUT,
            "/v1/instances/theta",
            Some(WRITER),
            Some(("application/json", body)),
            &[("if-match", "\"2\"")],
        )
        .await;
    assert_eq!(fresh_header.status, StatusCode::OK, "{}", fresh_header.text);
    let stale_patch = api
        .patch(
            "theta",
            &json!({"metadata": {"resourceVersion": "2"}, "spec": {"paused": true}}),
        )
        .await;
    assert_eq!(stale_patch.status, StatusCode::CONFLICT);
    let stale_delete = api
        .send(
            Method::DELETE,
            "/v1/instances/theta",
            Some(WRITER),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale_delete.status, StatusCode::CONFLICT);
    let create_with_version = api
        .put(
            "iota",
            &json!({"metadata": {"resourceVersion": "4"}, "spec": {"customerId": "c", "region": "iad"}}),
        )
        .await;
    assert_eq!(create_with_version.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn racing_writers_with_the_same_version_cannot_both_win() {
    let api = spawn_api().await;
    api.put("kappa", &minimal("c")).await;
    let mut set = tokio::task::JoinSet::new();
    // Every writer changes the spec (none keeps "iad"), so the winner bumps the generation.
    for region in ["ord", "lhr", "fra", "syd", "nrt", "gru", "ams", "sin"] {
        let http = api.http.clone();
        let url = format!("{}/v1/instances/kappa", api.base);
        set.spawn(async move {
            http.put(url)
                .bearer_auth(WRITER)
                .json(&json!({"metadata": {"resourceVersion": "1"},
                    "spec": {"customerId": "c", "region": region}}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = set.join_next().await {
        statuses.push(status.unwrap());
    }
    let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((wins, conflicts), (1, 7));
    let read = api.get("/v1/instances/kappa").await;
    assert_eq!(read.json["metadata"]["generation"], 2);
    assert_eq!(read.json["metadata"]["resourceVersion"], "2");
}

#[tokio::test]
async fn events_filters() {
    let api = spawn_api().await;
    api.put("lambda", &minimal("c")).await;
    api.put(
        "lambda",
        &json!({"spec": {"customerId": "c", "region": "ord"}}),
    )
    .await;
    let all = api.get("/v1/instances/lambda/events").await;
    assert_eq!(all.json["items"].as_array().unwrap().len(), 2);
    let limited = api.get("/v1/instances/lambda/events?limit=1").await;
    let items = limited.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["reason"], "SpecUpdated");
    let warnings = api.get("/v1/instances/lambda/events?type=Warning").await;
    assert_eq!(warnings.json["items"], json!([]));
    let future = api
        .get("/v1/instances/lambda/events?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(future.json["items"], json!([]));
    let bad = api
        .get("/v1/instances/lambda/events?since=yesterday&type=Info&limit=0")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut paths = bad.field_paths();
    paths.sort();
    assert_eq!(paths, ["limit", "since", "type"]);
}

#[tokio::test]
async fn events_filter_by_type_and_since_keeps_exactly_the_matching_ones() {
    use openclaws_store::events::{append, EventType, NewEvent};
    let api = spawn_api().await;
    let created = api.put("mu-ev", &minimal("c")).await;
    let uid: uuid::Uuid = created.json["metadata"]["uid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let warn = |reason: &'static str| NewEvent {
        instance_uid: uid,
        instance_name: "mu-ev",
        type_: EventType::Warning,
        reason,
        message: "something failed",
        generation: Some(1),
    };
    append(&api.pool, &warn("EarlyFailed")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    append(&api.pool, &warn("LateFailed")).await.unwrap();
    api.put(
        "mu-ev",
        &json!({"spec": {"customerId": "c", "region": "ord"}}),
    )
    .await;

    let reasons = |reply: Reply| -> Vec<(String, String)> {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |t: &str, r: &str| (t.to_owned(), r.to_owned());
    let warnings = reasons(api.get("/v1/instances/mu-ev/events?type=Warning").await);
    assert_eq!(
        warnings,
        [
            pair("Warning", "EarlyFailed"),
            pair("Warning", "LateFailed")
        ]
    );
    let normal = reasons(api.get("/v1/instances/mu-ev/events?type=Normal").await);
    assert!(
        !normal.is_empty() && normal.iter().all(|(t, _)| t == "Normal"),
        "{normal:?}"
    );
    let since = cut.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let later = reasons(
        api.get(&format!("/v1/instances/mu-ev/events?since={since}"))
            .await,
    );
    assert_eq!(
        later,
        [pair("Warning", "LateFailed"), pair("Normal", "SpecUpdated")]
    );
    let both = reasons(
        api.get(&format!(
            "/v1/instances/mu-ev/events?since={since}&type=Warning"
        ))
        .await,
    );
    assert_eq!(both, [pair("Warning", "LateFailed")]);
}
