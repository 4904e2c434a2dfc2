//! What a request costs PostgreSQL, counted on the wire by a proxy in front of the API's
//! database (issue 16): a read is one statement and one round trip (it runs on a read lane,
//! which is not pinged), a `PATCH` that changes nothing is that read, one that changes the spec
//! is that read and one statement (shared with the patches waiting beside it) that writes the
//! row, its work and its event, and taking a connection from the pool sends no ping (sqlx still
//! pings each connection once when it goes back to the pool, after the answer).

use openclaws_testkit::api::{minimal, spawn_api_counted};
use openclaws_testkit::db::eventually;
use openclaws_testkit::pgwire::{Counted, WireCounts};
use reqwest::StatusCode;
use serde_json::json;
use std::future::Future;
use std::time::Duration;

const REQUESTS: u64 = 10;

/// What `REQUESTS` requests sent one after another cost, once `pings` pings of the connections
/// they returned to the pool (sent after each answer) have arrived.
async fn cost<F, Fut>(counts: &WireCounts, pings: u64, mut request: F) -> Counted
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StatusCode>,
{
    let before = counts.snapshot();
    for _ in 0..REQUESTS {
        assert_eq!(request().await, StatusCode::OK);
    }
    eventually(Duration::from_secs(10), "the release pings", || async {
        let spent = counts.snapshot() - before;
        (spent.pings >= pings).then_some(spent)
    })
    .await
}

#[tokio::test]
async fn a_read_and_a_patch_that_changes_nothing_cost_one_statement_and_no_ping() {
    let (api, counts) = spawn_api_counted().await;
    let created = api.put("wire", &minimal("c-wire")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let unchanged = json!({"spec": {"region": "iad"}});
    // Once each first, so their statements are prepared on the pool's connection.
    assert_eq!(api.get("/v1/instances/wire").await.status, StatusCode::OK);
    assert_eq!(api.patch("wire", &unchanged).await.status, StatusCode::OK);

    let api = &api;
    let get = cost(&counts, 0, || async move {
        api.get("/v1/instances/wire").await.status
    })
    .await;
    assert_eq!(get.statements(), REQUESTS, "{get:?}");
    // No ping at all (at most one still on its way from the PATCH before): a read on a pooled
    // connection would add one per request.
    assert!(get.pings <= 1, "{get:?}");
    assert!(get.round_trips() <= REQUESTS + 1, "{get:?}");

    let unchanged = &unchanged;
    let patch = cost(&counts, 0, || async move {
        api.patch("wire", unchanged).await.status
    })
    .await;
    assert_eq!(
        patch.statements(),
        REQUESTS,
        "one read per no-op PATCH: {patch:?}"
    );
    // The read runs on a lane too: no ping either.
    assert!(patch.pings <= 1, "{patch:?}");
    assert!(patch.round_trips() <= REQUESTS + 1, "{patch:?}");
    let after = api.get("/v1/instances/wire").await;
    assert_eq!(
        after.json["metadata"]["resourceVersion"],
        created.json["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn a_patch_that_changes_the_spec_is_one_read_and_one_write_that_queues_and_records() {
    let (api, counts) = spawn_api_counted().await;
    let created = api.put("wire", &minimal("c-wire")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let uid: uuid::Uuid = created.json["metadata"]["uid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let name = |n: u64| json!({"spec": {"identity": {"displayName": format!("Wire {n}")}}});
    // Once first, so its statements are prepared on the pool's connection.
    assert_eq!(api.patch("wire", &name(0)).await.status, StatusCode::OK);
    let mut listener = work_listener(&api.pool).await;
    sqlx::query("DELETE FROM work")
        .execute(&api.pool)
        .await
        .unwrap();

    let api = &api;
    let mut n = 0;
    let patch = cost(&counts, REQUESTS, || {
        n += 1;
        let body = name(n);
        async move { api.patch("wire", &body).await.status }
    })
    .await;
    // Two statements per PATCH on its connection, plus the workers' wake-ups: a notification
    // of its own, sent outside the write's transaction and shared by the writes of 10 ms (one
    // per PATCH at most when they come one at a time, as here).
    let wakeups = patch.statements() - 2 * REQUESTS;
    assert!(
        patch.statements() >= 2 * REQUESTS && wakeups <= REQUESTS,
        "a read and one write per PATCH: {patch:?}"
    );
    // A wake-up is its statement and the release ping, and a ping first on a pooled connection
    // that sat idle 5 s.
    assert!(
        patch.round_trips() <= 3 * REQUESTS + 3 * wakeups + 1,
        "{patch:?}"
    );

    tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("the workers are woken")
        .unwrap();
    let after = api.get("/v1/instances/wire").await;
    assert_eq!(after.json["spec"]["identity"]["displayName"], "Wire 10");
    let generation = after.json["metadata"]["generation"].as_i64().unwrap();
    assert_eq!(generation, 12, "one generation per PATCH after the first");
    let queued: (String, i32) =
        sqlx::query_as("SELECT reason, attempts FROM work WHERE instance_uid = $1")
            .bind(uid)
            .fetch_one(&api.pool)
            .await
            .unwrap();
    assert_eq!(queued, ("SpecUpdated".to_owned(), 0));
    let recorded: (String, Option<i64>, Option<String>, Option<Vec<String>>) = sqlx::query_as(
        "SELECT message, generation, field_manager, changed_fields FROM events \
         WHERE instance_uid = $1 AND reason = 'SpecUpdated' ORDER BY id DESC LIMIT 1",
    )
    .bind(uid)
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(
        recorded,
        (
            format!("spec changed; generation is now {generation}"),
            Some(generation),
            Some("api".to_owned()),
            Some(vec!["/spec/identity/displayName".to_owned()]),
        )
    );
    // The answer is built from the row as read and the change as written, not read back: it
    // is exactly what a read of the new version shows.
    let patched = api.patch("wire", &name(11)).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let read = api.get("/v1/instances/wire").await;
    assert_eq!(patched.json, read.json);
    assert_eq!(patched.json["metadata"]["generation"], generation + 1);
}

/// The one-statement write is guarded by the version it was planned against: against a row
/// that moved, it writes nothing at all (no row change, no work, no event).
#[tokio::test]
async fn a_one_statement_write_against_a_moved_row_writes_nothing() {
    let (api, _counts) = spawn_api_counted().await;
    let created = api.put("guard", &minimal("c-guard")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let record = openclaws_store::instances::get(&api.pool, "guard")
        .await
        .unwrap()
        .unwrap();
    sqlx::query("DELETE FROM work")
        .execute(&api.pool)
        .await
        .unwrap();
    let events = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&api.pool)
            .await
            .unwrap()
    };
    let before = events().await;
    let change = |version| openclaws_store::desired::QueuedChange {
        uid: record.uid,
        name: "guard".to_owned(),
        expected_version: version,
        labels: record.labels.0.clone(),
        spec: json!({"customerId": "c-guard", "region": "ord"}),
        spec_changed: true,
        managed: record.managed_fields.0.clone(),
        reason: "SpecUpdated",
        message: "spec changed".to_owned(),
        generation: 2,
        audit: openclaws_store::events::Audit {
            actor: "writer".to_owned(),
            field_manager: Some("api".to_owned()),
            changed_fields: Some(vec!["/spec/region".to_owned()]),
        },
    };
    let write = |version| {
        let (api, change) = (&api, change(version));
        async move {
            let changes = [&change];
            let written = openclaws_store::desired::write_many(&api.pool, &changes);
            written.await.unwrap().remove(0)
        }
    };
    assert!(write(record.resource_version - 1).await.is_none());
    assert_eq!(events().await, before);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM work")
        .fetch_one(&api.pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);
    let written = write(record.resource_version)
        .await
        .expect("at its version");
    assert_eq!(written.generation, 2);
    assert!(written.resource_version > record.resource_version);
    assert_eq!(events().await, before + 1);
}

/// A burst of wake-up requests costs one notification at once and at most one more after the
/// spacing; a request after a quiet spell is notified again.
#[tokio::test]
async fn a_burst_of_wake_ups_is_one_or_two_notifications() {
    let test = openclaws_testkit::db::fresh_database().await;
    let wake = openclaws_store::wake::WorkWake::start(test.pool.clone().into());
    let mut listener = work_listener(&test.pool).await;
    for _ in 0..1000 {
        wake.wake();
    }
    assert!(next(&mut listener, Duration::from_secs(10)).await.is_some());
    let spacing = openclaws_store::wake::MIN_SPACING;
    let mut more = 0;
    while next(&mut listener, spacing * 20).await.is_some() {
        more += 1;
    }
    assert!(more <= 1, "{more} more notifications for one burst");
    wake.wake();
    assert!(next(&mut listener, Duration::from_secs(10)).await.is_some());
}

/// A listener on the channel the workers are woken on.
async fn work_listener(pool: &sqlx::PgPool) -> sqlx::postgres::PgListener {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool)
        .await
        .unwrap();
    listener
        .listen(openclaws_store::WORK_CHANNEL)
        .await
        .unwrap();
    listener
}

/// The next notification within `within`, if one comes.
async fn next(
    listener: &mut sqlx::postgres::PgListener,
    within: Duration,
) -> Option<sqlx::postgres::PgNotification> {
    let recv = tokio::time::timeout(within, listener.recv()).await;
    recv.ok().map(Result::unwrap)
}

/// `SELECT 42` on a read lane of `db`, marked done when it answered.
async fn answer(db: &openclaws_store::Db) -> Result<i32, sqlx::Error> {
    let mut conn = db.read().await?;
    let value = sqlx::query_scalar("SELECT 42").fetch_one(&mut conn).await?;
    conn.done();
    Ok(value)
}

#[tokio::test]
async fn a_read_lane_recovers_from_a_cut_off_read_and_from_a_killed_connection() {
    let test = openclaws_testkit::db::fresh_database().await;
    let db = openclaws_store::Db::from(test.pool.clone());

    // A read cut off mid-statement (a client that hung up): its answer must not reach the next
    // read on the lane.
    let mut conn = db.read().await.unwrap();
    let slow = sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(1)").fetch_one(&mut conn);
    assert!(tokio::time::timeout(Duration::from_millis(100), slow)
        .await
        .is_err());
    drop(conn);
    assert_eq!(answer(&db).await.unwrap(), 42);

    // The lane's server connection killed between two reads: at most the first read after it
    // fails (nothing pings a lane whose last read ended clean a moment ago), then the lane
    // reconnects.
    let mut conn = db.read().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.done();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&test.pool)
        .await
        .unwrap();
    assert!(killed);
    let first = answer(&db).await;
    assert!(matches!(first, Ok(42) | Err(_)), "{first:?}");
    assert_eq!(answer(&db).await.unwrap(), 42);
    let mut conn = db.read().await.unwrap();
    let now: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_ne!(now, pid, "a new server connection");
}
