//! Black-box tests of watches (`?watch=true`, docs/watch.md) over real HTTP and a real
//! PostgreSQL: status writes move `resourceVersion` and are seen as `MODIFIED`; a resume gets
//! exactly the later changes (in version order, none twice, none lost, also with concurrent
//! writers committing out of order); a pruned version is 410 Gone; bookmarks, heartbeats, SSE
//! framing, timeouts and shutdown; one instance's events.

use futures_util::future::join_all;
use openclaws_api::watch::WatchSettings;
use openclaws_model::{InstanceStatus, Phase};
use openclaws_store::{changes, status};
use openclaws_testkit::api::{minimal, spawn_api, spawn_api_watching, TestApi, WRITER};
use openclaws_testkit::watch::{Frame, Received, WatchStream};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Longest wait for an event that should come.
const SOON: Duration = Duration::from_secs(10);

async fn watch(api: &TestApi, query: &str) -> WatchStream {
    open(api, query, false).await.expect("the watch opens")
}

async fn open(api: &TestApi, query: &str, sse: bool) -> Result<WatchStream, (StatusCode, Value)> {
    let url = format!("{}/v1/instances?watch=true&{query}", api.base);
    WatchStream::open(&api.http, &url, WRITER, sse).await
}

/// The list's `metadata.resourceVersion`.
async fn list_version(api: &TestApi) -> i64 {
    let list = api.get("/v1/instances").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    list.json["metadata"]["resourceVersion"]
        .as_str()
        .expect("a list carries its version")
        .parse()
        .unwrap()
}

fn version_of(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Writes a status the way the controller's reconcile does.
async fn write_status(api: &TestApi, name: &str, phase: Phase, generation: i64) {
    let uid: uuid::Uuid = sqlx::query_scalar("SELECT uid FROM instances WHERE name = $1")
        .bind(name)
        .fetch_one(&api.pool)
        .await
        .unwrap();
    let record = status::load(&api.pool, uid).await.unwrap().unwrap();
    let observed = InstanceStatus {
        phase,
        observed_generation: generation,
        ..InstanceStatus::default()
    };
    status::record(
        &api.db,
        &api.cipher,
        &record,
        &observed,
        &status::Recording::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_status_write_moves_the_version_and_is_seen_as_modified() {
    a_status_write_moves_the_version_and_is_seen_as_modified_on(&spawn_api().await).await;
}

/// [`a_status_write_moves_the_version_and_is_seen_as_modified`] on a given API (also run through a transaction pooler).
pub(crate) async fn a_status_write_moves_the_version_and_is_seen_as_modified_on(api: &TestApi) {
    let created = api.put("alpha", &minimal("c1")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let from = list_version(api).await;
    assert_eq!(from, version_of(&created.json));
    let mut stream = watch(api, &format!("resourceVersion={from}")).await;
    assert_eq!(
        stream.headers()["content-type"],
        "application/x-ndjson",
        "NDJSON unless SSE is asked for"
    );

    write_status(api, "alpha", Phase::Ready, 1).await;
    let event = stream.next_change(SOON).await.unwrap();
    assert_eq!(event.type_, "MODIFIED");
    assert_eq!(event.object["status"]["phase"], "Ready");
    assert!(event.version().unwrap() > from);
    let read = api.get("/v1/instances/alpha").await;
    assert_eq!(event.object, read.json, "rendered exactly like GET");
    assert_eq!(
        read.headers["etag"],
        format!("\"{}\"", event.version().unwrap())
    );

    // The same status again, or bookkeeping only: no new version, no event.
    write_status(api, "alpha", Phase::Ready, 1).await;
    sqlx::query("UPDATE instances SET observed_at = now(), status = status")
        .execute(&api.pool)
        .await
        .unwrap();
    assert_eq!(
        version_of(&api.get("/v1/instances/alpha").await.json),
        event.version().unwrap()
    );
    // A change after it is the next thing the watch sends.
    let patched = api
        .patch("alpha", &json!({"metadata": {"labels": {"tier": "gold"}}}))
        .await;
    let next = stream.next_change(SOON).await.unwrap();
    assert_eq!(next.type_, "MODIFIED");
    assert_eq!(next.object, patched.json);
}

#[tokio::test]
async fn a_status_write_makes_a_stale_precondition_conflict() {
    let api = spawn_api().await;
    let created = api.put("alpha", &minimal("c1")).await;
    write_status(&api, "alpha", Phase::Provisioning, 1).await;
    let stale = created.json["metadata"]["resourceVersion"]
        .as_str()
        .unwrap();
    let write = api
        .send(
            Method::PATCH,
            "/v1/instances/alpha",
            Some(WRITER),
            Some((
                "application/merge-patch+json",
                br#"{"spec":{"paused":true}}"#.to_vec(),
            )),
            &[("if-match", stale)],
        )
        .await;
    assert_eq!(write.status, StatusCode::CONFLICT, "{}", write.text);
    let current = api.get("/v1/instances/alpha").await;
    let etag = current.headers["etag"].to_str().unwrap().to_owned();
    let write = api
        .send(
            Method::PATCH,
            "/v1/instances/alpha",
            Some(WRITER),
            Some((
                "application/merge-patch+json",
                br#"{"spec":{"paused":true}}"#.to_vec(),
            )),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.text);
}

#[tokio::test]
async fn without_a_version_the_watch_lists_first_then_follows_to_deletion() {
    let api = spawn_api_watching(WatchSettings {
        bookmark_interval: Duration::from_millis(200),
        ..WatchSettings::default()
    })
    .await;
    for name in ["alpha", "bravo", "charlie"] {
        assert_eq!(
            api.put(name, &minimal("c1")).await.status,
            StatusCode::CREATED
        );
    }
    api.put("other", &minimal("c2")).await;
    let mut stream = watch(&api, "customerId=c1").await;
    let mut names = BTreeSet::new();
    for _ in 0..3 {
        let event = stream.next(SOON).await.unwrap();
        assert_eq!(event.type_, "ADDED");
        names.insert(event.name().unwrap().to_owned());
    }
    assert_eq!(
        names,
        BTreeSet::from(["alpha".into(), "bravo".into(), "charlie".into()])
    );
    let end_of_list = stream.next(SOON).await.unwrap();
    assert_eq!(
        end_of_list.type_, "BOOKMARK",
        "the initial list ends with a bookmark"
    );
    assert_eq!(end_of_list.object["kind"], "OpenClawInstance");

    api.put("other2", &minimal("c2")).await;
    api.put("delta", &minimal("c1")).await;
    let added = stream.next_change(SOON).await.unwrap();
    assert_eq!(
        (added.type_.as_str(), added.name()),
        ("ADDED", Some("delta"))
    );

    let deleting = api.delete("delta").await;
    let marked = stream.next_change(SOON).await.unwrap();
    assert_eq!(marked.type_, "MODIFIED");
    assert_eq!(marked.object, deleting.json);
    sqlx::query("DELETE FROM instances WHERE name = 'delta'")
        .execute(&api.pool)
        .await
        .unwrap();
    let deleted = stream.next_change(SOON).await.unwrap();
    assert_eq!(deleted.type_, "DELETED");
    assert_eq!(deleted.name(), Some("delta"));
    assert!(deleted.version().unwrap() > marked.version().unwrap());
    assert!(deleted.object["metadata"]["deletionTimestamp"].is_string());

    // Bookmarks carry the version reached, and keep coming while nothing changes.
    let bookmark = stream.next(SOON).await.unwrap();
    assert_eq!(bookmark.type_, "BOOKMARK");
    assert_eq!(bookmark.version(), deleted.version());
    assert_eq!(stream.next(SOON).await.unwrap().type_, "BOOKMARK");
}

#[tokio::test]
async fn a_phase_filter_sees_objects_enter_and_leave() {
    let api = spawn_api().await;
    api.put("alpha", &minimal("c1")).await;
    let from = list_version(&api).await;
    let mut stream = watch(&api, &format!("phase=Ready&resourceVersion={from}")).await;
    write_status(&api, "alpha", Phase::Provisioning, 1).await;
    write_status(&api, "alpha", Phase::Ready, 1).await;
    let entered = stream.next_change(SOON).await.unwrap();
    assert_eq!(entered.type_, "ADDED", "it now matches phase=Ready");
    write_status(&api, "alpha", Phase::Degraded, 1).await;
    let left = stream.next_change(SOON).await.unwrap();
    assert_eq!(left.type_, "DELETED", "it no longer matches");
    assert_eq!(left.object["status"]["phase"], "Degraded");
}

/// Every change seen by a watch from `from` until `count` changes arrived.
async fn collect(stream: &mut WatchStream, count: usize) -> Vec<Received> {
    let mut seen = Vec::new();
    while seen.len() < count {
        seen.push(stream.next_change(SOON).await.expect("the stream goes on"));
    }
    seen
}

#[tokio::test]
async fn resuming_gets_exactly_the_later_changes_with_concurrent_writers() {
    resuming_gets_exactly_the_later_changes_with_concurrent_writers_on(&spawn_api().await).await;
}

/// [`resuming_gets_exactly_the_later_changes_with_concurrent_writers`] on a given API (also run through a transaction pooler).
pub(crate) async fn resuming_gets_exactly_the_later_changes_with_concurrent_writers_on(
    api: &TestApi,
) {
    let names: Vec<String> = (0..6).map(|i| format!("inst-{i}")).collect();
    for name in &names {
        api.put(name, &minimal("c1")).await;
    }
    let from = list_version(api).await;
    let mut stream = watch(api, &format!("resourceVersion={from}")).await;
    // Six writers, each with transactions held open for a while after their write, so commits
    // land out of version order.
    let writers = names.iter().enumerate().map(|(i, name)| {
        let pool = api.db.clone();
        let name = name.clone();
        async move {
            for round in 0..20 {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(
                    "UPDATE instances SET status = jsonb_build_object('observedGeneration', $2::int) \
                     WHERE name = $1",
                )
                    .bind(&name)
                    .bind(round)
                    .execute(&mut tx)
                    .await
                    .unwrap();
                sqlx::query("SELECT pg_sleep($1)")
                    .bind(((i as i32 * 7 + round * 3) % 11) as f64 / 1000.0)
                    .execute(&mut tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
    });
    join_all(writers).await;
    let seen = collect(&mut stream, 120).await;
    let versions: Vec<i64> = seen.iter().map(|e| e.version().unwrap()).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "in version order, none twice"
    );
    let logged: Vec<i64> = sqlx::query_scalar(
        "SELECT resource_version FROM instance_changes WHERE resource_version > $1 ORDER BY 1",
    )
    .bind(from)
    .fetch_all(&api.pool)
    .await
    .unwrap();
    assert_eq!(versions, logged, "none lost");
    for name in &names {
        let last = seen.iter().rev().find(|e| e.name() == Some(name)).unwrap();
        assert_eq!(last.object["status"]["observedGeneration"], 19);
    }

    // From any version of the stream: exactly what came after it.
    for cut in [0, 37, 119] {
        let mut resumed = watch(api, &format!("resourceVersion={}", versions[cut])).await;
        let again = collect(&mut resumed, 119 - cut).await;
        let expected: Vec<Value> = seen[cut + 1..].iter().map(|e| e.object.clone()).collect();
        let got: Vec<Value> = again.iter().map(|e| e.object.clone()).collect();
        assert_eq!(got, expected);
        assert!(resumed
            .quiet_for(Duration::from_millis(300))
            .await
            .is_none());
    }
}

#[tokio::test]
async fn a_change_committed_early_waits_for_an_older_one_still_in_flight() {
    a_change_committed_early_waits_for_an_older_one_still_in_flight_on(&spawn_api().await).await;
}

/// [`a_change_committed_early_waits_for_an_older_one_still_in_flight`] on a given API (also run through a transaction pooler).
pub(crate) async fn a_change_committed_early_waits_for_an_older_one_still_in_flight_on(
    api: &TestApi,
) {
    api.put("early", &minimal("c1")).await;
    api.put("late", &minimal("c1")).await;
    let from = list_version(api).await;
    let mut stream = watch(api, &format!("resourceVersion={from}")).await;
    let mut slow = api.db.begin().await.unwrap();
    sqlx::query("UPDATE instances SET status = '{\"slow\": true}' WHERE name = 'late'")
        .execute(&mut slow)
        .await
        .unwrap();
    sqlx::query("UPDATE instances SET status = '{\"fast\": true}' WHERE name = 'early'")
        .execute(&api.db)
        .await
        .unwrap();
    assert!(
        stream.quiet_for(Duration::from_secs(1)).await.is_none(),
        "nothing passes a version still being committed"
    );
    slow.commit().await.unwrap();
    let first = stream.next_change(SOON).await.unwrap();
    let second = stream.next_change(SOON).await.unwrap();
    assert_eq!(first.name(), Some("late"));
    assert_eq!(second.name(), Some("early"));
    assert!(first.version() < second.version());
}

#[tokio::test]
async fn a_pruned_version_is_gone_with_the_current_one() {
    a_pruned_version_is_gone_with_the_current_one_on(&spawn_api().await).await;
}

/// [`a_pruned_version_is_gone_with_the_current_one`] on a given API (also run through a transaction pooler).
pub(crate) async fn a_pruned_version_is_gone_with_the_current_one_on(api: &TestApi) {
    let created = api.put("alpha", &minimal("c1")).await;
    api.patch("alpha", &json!({"metadata": {"labels": {"a": "b"}}}))
        .await;
    let old = version_of(&created.json);
    assert!(open(api, &format!("resourceVersion={old}"), false)
        .await
        .is_ok());
    let mut conn = api.db.acquire().await.unwrap();
    let through = changes::prune(&mut conn, chrono::Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert!(through > old);
    let (status, body) = open(api, &format!("resourceVersion={old}"), false)
        .await
        .err()
        .expect("410");
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"]["code"], "gone");
    let current: i64 = body["error"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(current, list_version(api).await);
    // Watching from the current version works, and sees what comes next.
    let mut stream = watch(api, &format!("resourceVersion={current}")).await;
    api.patch("alpha", &json!({"metadata": {"labels": {"a": "c"}}}))
        .await;
    assert_eq!(stream.next_change(SOON).await.unwrap().type_, "MODIFIED");
    let (status, _) = open(api, "resourceVersion=999999999", false)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::GONE, "never issued");
}

#[tokio::test]
async fn server_sent_events_are_named_and_carry_ids() {
    let api = spawn_api_watching(WatchSettings {
        bookmark_interval: Duration::from_millis(200),
        ..WatchSettings::default()
    })
    .await;
    api.put("alpha", &minimal("c1")).await;
    let mut stream = open(&api, "", true).await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(stream.headers()["cache-control"], "no-store");
    let added = stream.next(SOON).await.unwrap();
    assert_eq!(added.sse_event.as_deref(), Some("ADDED"));
    assert_eq!(added.id, None, "no id before the list is complete");
    let bookmark = stream.next(SOON).await.unwrap();
    assert_eq!(bookmark.sse_event.as_deref(), Some("BOOKMARK"));
    let patched = api.patch("alpha", &json!({"spec": {"paused": true}})).await;
    let modified = stream.next_change(SOON).await.unwrap();
    assert_eq!(modified.sse_event.as_deref(), Some("MODIFIED"));
    assert_eq!(
        modified.id,
        patched.json["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned)
    );

    // A browser's EventSource resumes with Last-Event-ID.
    api.patch("alpha", &json!({"spec": {"paused": false}}))
        .await;
    let resumed = api
        .http
        .get(format!("{}/v1/instances?watch=true", api.base))
        .bearer_auth(WRITER)
        .header("accept", "text/event-stream")
        .header("last-event-id", modified.id.clone().unwrap())
        .send()
        .await
        .unwrap();
    let mut chunk = String::new();
    let mut resumed = resumed;
    while !chunk.contains("\n\n") {
        let bytes = tokio::time::timeout(SOON, resumed.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        chunk.push_str(std::str::from_utf8(&bytes).unwrap());
    }
    assert!(chunk.starts_with("event: MODIFIED\n"), "{chunk}");
    assert!(chunk.contains("\"paused\":false"), "{chunk}");
}

#[tokio::test]
async fn without_bookmarks_heartbeats_keep_the_stream_open() {
    let api = spawn_api_watching(WatchSettings {
        bookmark_interval: Duration::from_millis(100),
        ..WatchSettings::default()
    })
    .await;
    let mut stream = watch(&api, "allowWatchBookmarks=false").await;
    for _ in 0..2 {
        match stream.next_frame(SOON).await {
            Ok(Some(Frame::Heartbeat)) => {}
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_watch_ends_at_its_timeout_and_at_shutdown() {
    let api = spawn_api().await;
    let mut timed = watch(&api, "timeoutSeconds=1").await;
    assert!(timed.next_change(SOON).await.is_none(), "the stream ended");
    let mut open_ended = watch(&api, "").await;
    api.stop.cancel();
    assert!(
        open_ended.next_change(SOON).await.is_none(),
        "shutdown ends the stream"
    );
}

#[tokio::test]
async fn watch_parameters_are_checked() {
    let api = spawn_api().await;
    for (query, field) in [
        ("watch=maybe", "watch"),
        ("watch=true&timeoutSeconds=0", "timeoutSeconds"),
        ("watch=true&timeoutSeconds=3601", "timeoutSeconds"),
        ("watch=true&resourceVersion=abc", "resourceVersion"),
        (
            "watch=true&allowWatchBookmarks=sometimes",
            "allowWatchBookmarks",
        ),
        ("watch=true&limit=5", "limit"),
    ] {
        let reply = api.get(&format!("/v1/instances?{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            reply.text
        );
        assert_eq!(reply.field_paths(), [field], "{query}");
    }
    // Selectors are the list's: one that cannot be parsed is a 400 before any stream opens.
    for query in [
        "watch=true&labelSelector=%2C",
        "watch=true&fieldSelector=metadata.name%3Dx",
    ] {
        let reply = api.get(&format!("/v1/instances?{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
    }
    let plain = api.get("/v1/instances?watch=false").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.json["items"].is_array());
}

async fn reconcile(api: &TestApi, name: &str) {
    let path = format!("/v1/instances/{name}/reconcile");
    let reply = api.send(Method::POST, &path, Some(WRITER), None, &[]).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn one_instances_events_are_watched() {
    one_instances_events_are_watched_on(&spawn_api().await).await;
}

/// [`one_instances_events_are_watched`] on a given API (also run through a transaction pooler).
pub(crate) async fn one_instances_events_are_watched_on(api: &TestApi) {
    api.put("alpha", &minimal("c1")).await;
    api.put("bravo", &minimal("c1")).await;
    let url = format!("{}/v1/instances/alpha/events?watch=true", api.base);
    let mut stream = WatchStream::open(&api.http, &url, WRITER, false)
        .await
        .unwrap();
    let created = stream.next(SOON).await.unwrap();
    assert_eq!(created.type_, "ADDED");
    assert_eq!(created.object["reason"], "Created");
    reconcile(api, "bravo").await;
    reconcile(api, "alpha").await;
    let requested = stream.next_change(SOON).await.unwrap();
    assert_eq!(requested.object["reason"], "ReconcileRequested");
    assert_eq!(requested.object["instanceName"], "alpha");

    // Resuming from the first event's id sends only the later one.
    let first = created.object["id"].as_i64().unwrap();
    let url = format!("{url}&resourceVersion={first}");
    let mut resumed = WatchStream::open(&api.http, &url, WRITER, false)
        .await
        .unwrap();
    let again = resumed.next_change(SOON).await.unwrap();
    assert_eq!(again.object, requested.object);
    assert!(resumed
        .quiet_for(Duration::from_millis(300))
        .await
        .is_none());

    let missing = api.get("/v1/instances/nobody/events?watch=true").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// A support console session cookie for the reader.
async fn console_cookie(api: &TestApi) -> String {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(format!("{}/support/login", api.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", openclaws_testkit::api::READER))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_support_console_pages_follow_a_watch() {
    let api = spawn_api().await;
    api.put("alpha", &minimal("c1")).await;
    api.put("bravo", &minimal("c1")).await;
    let cookie = console_cookie(&api).await;
    let version = list_version(&api).await;
    let fleet = api
        .send(
            Method::GET,
            "/support/instances",
            None,
            None,
            &[("cookie", &cookie)],
        )
        .await;
    assert!(fleet
        .text
        .contains("<script src=\"/support/live.js\" defer></script>"));
    let watch_url = format!("/support/watch?resourceVersion={version}");
    assert!(
        fleet.text.contains(&format!("data-watch=\"{watch_url}\"")),
        "{}",
        fleet.text
    );
    let csp = fleet.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let page = api
        .send(
            Method::GET,
            "/support/instances/alpha",
            None,
            None,
            &[("cookie", &cookie)],
        )
        .await;
    assert!(page
        .text
        .contains("data-watch=\"/support/watch?name=alpha&amp;resourceVersion="));

    let script = api.get("/support/live.js").await;
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.text.contains("new EventSource"));
    assert!(
        !script.text.contains("innerHTML"),
        "event data never becomes markup"
    );

    // The instance page's watch: Server-Sent Events of that instance only, for the session.
    let url = format!(
        "{}/support/watch?name=alpha&resourceVersion={version}",
        api.base
    );
    let response = api
        .http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    write_status(&api, "bravo", Phase::Ready, 1).await;
    write_status(&api, "alpha", Phase::Ready, 1).await;
    let mut body = response;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(SOON, body.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.starts_with("event: MODIFIED\n"), "{text}");
    assert!(text.contains("\"name\":\"alpha\""), "{text}");
    let signed_out = api.http.get(&url).send().await.unwrap();
    assert_eq!(signed_out.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_openapi_document_describes_watches() {
    let api = spawn_api().await;
    let document = api.get("/openapi.json").await.json;
    for path in ["/v1/instances", "/v1/instances/{name}/events"] {
        let operation = &document["paths"][path]["get"];
        let schema_of = |name: &str| {
            operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path} documents {name}"))["schema"]
                .clone()
        };
        assert_eq!(schema_of("watch")["type"], "boolean");
        assert_eq!(schema_of("allowWatchBookmarks")["type"], "boolean");
        assert_eq!(schema_of("timeoutSeconds")["maximum"], 3600);
        assert_eq!(schema_of("resourceVersion")["type"], "string");
        let content = &operation["responses"]["200"]["content"];
        for media in [
            "application/json",
            "application/x-ndjson",
            "text/event-stream",
        ] {
            assert!(content.get(media).is_some(), "{path}: {media}");
        }
    }
    let list = &document["paths"]["/v1/instances"]["get"];
    assert!(list["responses"]["410"].is_object());
    assert!(list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "labelSelector"));
    let event = &document["components"]["schemas"]["WatchEvent"];
    assert!(event["properties"]["object"].is_object());
    let types = &document["components"]["schemas"]["WatchEventType"]["enum"];
    assert_eq!(
        types,
        &json!(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"])
    );
    let detail = &document["components"]["schemas"]["ErrorDetail"]["properties"];
    assert!(detail["resourceVersion"].is_object());
}

#[tokio::test]
async fn a_bulk_update_takes_one_ticket_and_rolled_back_versions_do_not_hold_the_horizon() {
    let api = spawn_api().await;
    // More rows than the lock table has room for, were each to take a ticket of its own.
    sqlx::query(
        "INSERT INTO instances (uid, name, customer_id, spec) \
         SELECT gen_random_uuid(), 'bulk-' || g, 'c', '{}' FROM generate_series(1, 20000) g",
    )
    .execute(&api.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE instances SET status = '{\"observedGeneration\": 1}'")
        .execute(&api.pool)
        .await
        .unwrap();
    let mut tx = api.pool.begin().await.unwrap();
    sqlx::query("UPDATE instances SET phase = 'Ready' WHERE name = 'bulk-1'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let horizons = changes::horizons(&api.pool).await.unwrap();
    let newest: i64 = sqlx::query_scalar("SELECT max(resource_version) FROM instance_changes")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(newest, 40_000);
    assert_eq!(
        horizons.instances, 40_001,
        "the rolled-back version is settled too"
    );
}
