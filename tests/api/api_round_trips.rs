//! What a request costs PostgreSQL, counted on the wire by a proxy in front of the API's
//! database (issue 16): a read is one statement and one round trip (it runs on a read lane,
//! which is not pinged), a `PATCH` that changes nothing is one read, and taking a connection
//! from the pool sends no ping (sqlx still pings each connection once when it goes back to the
//! pool, after the answer).

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
async fn a_read_and_a_patch_that_changes_nothing_cost_one_statement_and_no_acquire_ping() {
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
    let patch = cost(&counts, REQUESTS, || async move {
        api.patch("wire", unchanged).await.status
    })
    .await;
    assert_eq!(
        patch.statements(),
        REQUESTS,
        "one read per no-op PATCH: {patch:?}"
    );
    assert!(patch.pings <= REQUESTS + 1, "{patch:?}");
    let after = api.get("/v1/instances/wire").await;
    assert_eq!(
        after.json["metadata"]["resourceVersion"],
        created.json["metadata"]["resourceVersion"]
    );
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
