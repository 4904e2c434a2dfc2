//! The audit trail (issue 12): every event recording a write through the API or the support
//! console names who made it (`actor`), as which field manager, and which fields it changed
//! (names only, never a secret's value or fingerprint); dry runs and writes that change nothing
//! record nothing; events older than the retention are pruned in batches.

use openclaws_server::retention::{self, prune_events, EventPruning, Pruned};
use openclaws_store::Db;
use openclaws_telemetry::Metrics;
use openclaws_testkit::api::{minimal, spawn_api, TestApi, WRITER};
use openclaws_testkit::db::{eventually, fresh_database_behind_pooler};
use openclaws_testkit::watch::WatchStream;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SOON: Duration = Duration::from_secs(10);

/// The instance's events, oldest first, as the API lists them.
async fn events(api: &TestApi, name: &str) -> Vec<Value> {
    let reply = api.get(&format!("/v1/instances/{name}/events")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["items"].as_array().unwrap().clone()
}

/// The newest event of the instance.
async fn newest(api: &TestApi, name: &str) -> Value {
    events(api, name).await.pop().expect("an event")
}

async fn event_count(api: &TestApi) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&api.pool)
        .await
        .unwrap()
}

/// A writer request with a body of media type `media`.
async fn send(api: &TestApi, method: Method, path: &str, media: &str, body: &Value) -> Value {
    let body = Some((media, serde_json::to_vec(body).unwrap()));
    let reply = api.send(method, path, Some(WRITER), body, &[]).await;
    assert!(reply.status.is_success(), "{path}: {}", reply.text);
    reply.json
}

fn fields(event: &Value) -> Vec<&str> {
    event["changedFields"]
        .as_array()
        .unwrap_or_else(|| panic!("changedFields in {event}"))
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn put_patch_apply_and_delete_record_actor_manager_and_changed_fields() {
    put_patch_apply_and_delete_record_actor_manager_and_changed_fields_on(&spawn_api().await).await;
}

/// [`put_patch_apply_and_delete_record_actor_manager_and_changed_fields`] on a given API (also run through a transaction pooler).
pub(crate) async fn put_patch_apply_and_delete_record_actor_manager_and_changed_fields_on(
    api: &TestApi,
) {
    let body = json!({"metadata": {"labels": {"team": "a"}},
                      "spec": {"customerId": "c1", "region": "iad"}});
    let json = "application/json";
    send(
        api,
        Method::PUT,
        "/v1/instances/alpha?fieldManager=dashboard",
        json,
        &body,
    )
    .await;
    let created = newest(api, "alpha").await;
    assert_eq!(created["reason"], "Created");
    assert_eq!(created["actor"], "writer");
    assert_eq!(created["fieldManager"], "dashboard");
    assert_eq!(
        fields(&created),
        ["/metadata/labels/team", "/spec/customerId", "/spec/region"]
    );

    // An identical PUT changes nothing and records nothing.
    let before = event_count(api).await;
    send(
        api,
        Method::PUT,
        "/v1/instances/alpha?fieldManager=dashboard",
        json,
        &body,
    )
    .await;
    assert_eq!(event_count(api).await, before);

    // A merge patch without fieldManager is the default manager's.
    let merge = "application/merge-patch+json";
    send(
        api,
        Method::PATCH,
        "/v1/instances/alpha",
        merge,
        &json!({"spec": {"paused": true}}),
    )
    .await;
    let paused = newest(api, "alpha").await;
    assert_eq!(paused["reason"], "SpecUpdated");
    assert_eq!(
        (&paused["actor"], &paused["fieldManager"]),
        (&json!("writer"), &json!("api"))
    );
    assert_eq!(fields(&paused), ["/spec/paused"]);

    // A server-side apply names its manager.
    let apply = "application/apply-patch+json";
    let intent = json!({"metadata": {"labels": {"tier": "gold"}}});
    send(
        api,
        Method::PATCH,
        "/v1/instances/alpha?fieldManager=ops",
        apply,
        &intent,
    )
    .await;
    let applied = newest(api, "alpha").await;
    assert_eq!(applied["reason"], "LabelsUpdated");
    assert_eq!(applied["fieldManager"], "ops");
    assert_eq!(fields(&applied), ["/metadata/labels/tier"]);

    // A reconcile request and a deletion name the actor only.
    let reply = api
        .send(
            Method::POST,
            "/v1/instances/alpha/reconcile",
            Some(WRITER),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let requested = newest(api, "alpha").await;
    assert_eq!(requested["reason"], "ReconcileRequested");
    assert_eq!(requested["actor"], "writer");
    assert!(requested["fieldManager"].is_null() && requested["changedFields"].is_null());
    assert_eq!(api.delete("alpha").await.status, StatusCode::ACCEPTED);
    let deleted = newest(api, "alpha").await;
    assert_eq!(deleted["reason"], "DeletionRequested");
    assert_eq!(deleted["actor"], "writer");
    assert!(deleted["fieldManager"].is_null() && deleted["changedFields"].is_null());
}

#[tokio::test]
async fn a_provider_key_is_named_but_its_value_and_fingerprint_appear_nowhere() {
    let api = spawn_api().await;
    let first = "sk-ant-audit-canary-first-0123456789";
    let second = "sk-ant-audit-canary-second-9876543210";
    let with_key = |key: &str| {
        json!({"spec": {"customerId": "c1", "region": "iad",
                        "providerKeys": {"anthropicApiKey": key}}})
    };
    assert_eq!(
        api.put("keyed", &with_key(first)).await.status,
        StatusCode::CREATED
    );
    let created = newest(&api, "keyed").await;
    assert!(fields(&created).contains(&"/spec/providerKeys/anthropicApiKey"));
    let reply = api.put("keyed", &with_key(second)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let fingerprint = reply.json["spec"]["providerKeys"]["anthropicApiKey"]["fingerprint"]
        .as_str()
        .expect("a fingerprint")
        .to_owned();
    let rotated = newest(&api, "keyed").await;
    assert_eq!(fields(&rotated), ["/spec/providerKeys/anthropicApiKey"]);

    let listed = api.get("/v1/instances/keyed/events").await.text;
    let url = format!("{}/v1/instances/keyed/events?watch=true", api.base);
    let mut stream = WatchStream::open(&api.http, &url, WRITER, false)
        .await
        .unwrap();
    let mut watched = String::new();
    for _ in 0..2 {
        let received = stream.next(SOON).await.expect("a watched event");
        watched.push_str(&received.object.to_string());
    }
    assert!(
        watched.contains("/spec/providerKeys/anthropicApiKey"),
        "{watched}"
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT row_to_json(events)::text FROM events")
        .fetch_all(&api.pool)
        .await
        .unwrap();
    for (what, text) in [
        ("list", listed),
        ("watch", watched),
        ("rows", stored.join("\n")),
    ] {
        for secret in [first, second, fingerprint.as_str()] {
            assert!(
                !text.contains(secret),
                "{what} shows a secret or fingerprint: {text}"
            );
        }
    }
}

#[tokio::test]
async fn dry_runs_record_nothing() {
    dry_runs_record_nothing_on(&spawn_api().await).await;
}

/// [`dry_runs_record_nothing`] on a given API (also run through a transaction pooler).
pub(crate) async fn dry_runs_record_nothing_on(api: &TestApi) {
    api.put("alpha", &minimal("c1")).await;
    let before = event_count(api).await;
    let json = "application/json";
    let paused = json!({"spec": {"customerId": "c1", "region": "iad", "paused": true}});
    send(
        api,
        Method::PUT,
        "/v1/instances/alpha?dryRun=All",
        json,
        &paused,
    )
    .await;
    send(
        api,
        Method::PUT,
        "/v1/instances/bravo?dryRun=All",
        json,
        &minimal("c1"),
    )
    .await;
    let merge = "application/merge-patch+json";
    let patch = json!({"spec": {"paused": true}});
    send(
        api,
        Method::PATCH,
        "/v1/instances/alpha?dryRun=All",
        merge,
        &patch,
    )
    .await;
    let apply = "application/apply-patch+json";
    let path = "/v1/instances/alpha?dryRun=All&fieldManager=ops";
    send(api, Method::PATCH, path, apply, &patch).await;
    let reply = api
        .send(
            Method::DELETE,
            "/v1/instances/alpha?dryRun=All",
            Some(WRITER),
            None,
            &[],
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(event_count(api).await, before);
}

/// A console session of the writer: its cookie and the CSRF token of `name`'s page.
async fn console_writer(api: &TestApi, name: &str) -> (String, String) {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(format!("{}/support/login", api.base))
        .form(&[("token", WRITER)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let set = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = console_page(api, &cookie, name).await;
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a form with a CSRF token") + marker.len();
    let csrf = page[at..][..page[at..].find('"').unwrap()].to_owned();
    (cookie, csrf)
}

async fn console_page(api: &TestApi, cookie: &str, name: &str) -> String {
    let path = format!("/support/instances/{name}");
    let page = api
        .send(Method::GET, &path, None, None, &[("cookie", cookie)])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    page.text
}

async fn console_post(api: &TestApi, cookie: &str, path: &str, form: &[(&str, &str)]) {
    let reply = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}{path}", api.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::SEE_OTHER, "{path}");
}

#[tokio::test]
async fn console_actions_name_the_session_and_show_in_its_history_table() {
    let api = spawn_api().await;
    let manual = json!({"spec": {"customerId": "c1", "region": "iad",
                                 "pairing": {"policy": "manual"}}});
    assert_eq!(api.put("alpha", &manual).await.status, StatusCode::CREATED);
    let (cookie, csrf) = console_writer(&api, "alpha").await;

    let path = "/support/instances/alpha/reconcile";
    console_post(&api, &cookie, path, &[("csrf", &csrf)]).await;
    let requested = newest(&api, "alpha").await;
    assert_eq!(requested["reason"], "ReconcileRequested");
    let actor = requested["actor"].as_str().unwrap().to_owned();
    let session = actor.strip_prefix("console:").expect("a console actor");
    assert!(session.len() == 8 && session.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!actor.contains(WRITER));

    let path = "/support/instances/alpha/pairing/approvals";
    console_post(
        &api,
        &cookie,
        path,
        &[("csrf", &csrf), ("request_id", "req-1")],
    )
    .await;
    let approved = newest(&api, "alpha").await;
    assert_eq!(approved["actor"], actor.as_str());
    assert_eq!(approved["fieldManager"], "pairing-approvals");
    assert_eq!(fields(&approved), ["/spec/pairing/approvals"]);

    // The same approval through the API names the writer.
    let body = json!({"latest": true});
    let path = "/v1/instances/alpha/pairing/approvals";
    send(&api, Method::POST, path, "application/json", &body).await;
    let by_api = newest(&api, "alpha").await;
    assert_eq!(
        (&by_api["actor"], &by_api["fieldManager"]),
        (&json!("writer"), &json!("pairing-approvals"))
    );

    let page = console_page(&api, &cookie, "alpha").await;
    assert!(page.contains(&actor), "the history table names the session");
    assert!(page.contains("/spec/pairing/approvals"));
}

/// Inserts `count` events of `name` created `age` ago.
async fn backdated(api: &TestApi, name: &str, count: i64, age: &str) {
    sqlx::query(
        "INSERT INTO events (instance_uid, instance_name, type, reason, message, created_at) \
         SELECT uid, name, 'Normal', 'Backdated', 'old', now() - $3::interval \
         FROM instances, generate_series(1, $2) WHERE name = $1",
    )
    .bind(name)
    .bind(count)
    .bind(age)
    .execute(&api.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn events_older_than_the_retention_are_pruned_in_batches_and_recent_ones_kept() {
    let api = spawn_api().await;
    api.put("alpha", &minimal("c1")).await;
    backdated(&api, "alpha", 25, "40 days").await;
    backdated(&api, "alpha", 3, "1 day").await;
    let db = Db::from(api.pool.clone());
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);

    let pruned = prune_events(&db, cutoff, 10, Duration::ZERO).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            events: 25,
            batches: 3
        }
    );
    let kept = events(&api, "alpha").await;
    assert_eq!(
        kept.len(),
        4,
        "the create's event and the three recent ones"
    );
    assert_eq!(kept[0]["reason"], "Created");
    assert!(kept[1..].iter().all(|e| e["reason"] == "Backdated"));

    // Two replicas pruning at once delete each old event once between them.
    backdated(&api, "alpha", 40, "40 days").await;
    let (a, b) = tokio::join!(
        prune_events(&db, cutoff, 7, Duration::ZERO),
        prune_events(&db, cutoff, 7, Duration::ZERO)
    );
    assert_eq!(a.unwrap().events + b.unwrap().events, 40);
    assert_eq!(events(&api, "alpha").await.len(), 4);
}

#[tokio::test]
async fn the_openapi_document_describes_the_audit_fields() {
    let api = spawn_api().await;
    let doc = api.get("/openapi.json").await.json;
    let event = &doc["components"]["schemas"]["Event"]["properties"];
    for field in ["actor", "fieldManager", "changedFields"] {
        let schema = event[field].to_string();
        assert!(schema.contains("null"), "{field} may be null: {schema}");
        assert!(event[field]["description"].is_string(), "{field}: {schema}");
    }
    assert!(event["changedFields"].to_string().contains("array"));
}

#[tokio::test]
async fn the_background_pruner_deletes_old_events_and_counts_them() {
    let api = spawn_api().await;
    api.put("alpha", &minimal("c1")).await;
    backdated(&api, "alpha", 5, "40 days").await;
    backdated(&api, "alpha", 2, "1 day").await;
    let metrics = Arc::new(Metrics::default());
    let settings = EventPruning {
        retention: Duration::from_secs(30 * 86_400),
        every: Duration::from_millis(20),
        batch: 2,
        pause: Duration::ZERO,
    };
    let stop = CancellationToken::new();
    let db = Db::from(api.pool.clone());
    let pruner = tokio::spawn(retention::run(db, settings, metrics.clone(), stop.clone()));
    eventually(SOON, "the old events pruned and counted", || async {
        let counted = metrics.encode().contains("openclaws_events_pruned_total 5");
        (counted && event_count(&api).await == 3).then_some(())
    })
    .await;
    stop.cancel();
    pruner.await.unwrap();
}

#[tokio::test]
async fn pruning_works_through_a_transaction_pooler() {
    let db = fresh_database_behind_pooler().await;
    for (count, age) in [(12, "40 days"), (2, "1 hour")] {
        sqlx::query(
            "INSERT INTO events (instance_uid, instance_name, type, reason, message, created_at) \
             SELECT $1, 'pooled', 'Normal', 'Backdated', 'old', now() - $3::interval \
             FROM generate_series(1, $2)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(count)
        .bind(age)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    let pruned = prune_events(&db.controller, cutoff, 5, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        pruned,
        Pruned {
            events: 12,
            batches: 3
        }
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, 2);
}
