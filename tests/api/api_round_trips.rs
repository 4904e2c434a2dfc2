//! What a request costs PostgreSQL, counted on the wire by a proxy in front of the API's
//! database (issue 16): a read is one statement, a `PATCH` that changes nothing is one read, and
//! taking a connection from the pool sends no ping (sqlx still pings each connection once when it
//! goes back to the pool, after the answer).

use openclaws_testkit::api::{minimal, spawn_api_counted};
use openclaws_testkit::db::eventually;
use openclaws_testkit::pgwire::{Counted, WireCounts};
use reqwest::StatusCode;
use serde_json::json;
use std::future::Future;
use std::time::Duration;

const REQUESTS: u64 = 10;

/// What `REQUESTS` requests sent one after another cost, once the pings of the connections they
/// returned to the pool (sent after each answer) have arrived.
async fn cost<F, Fut>(counts: &WireCounts, mut request: F) -> Counted
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
        (spent.pings >= REQUESTS).then_some(spent)
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
    let get = cost(&counts, || async move {
        api.get("/v1/instances/wire").await.status
    })
    .await;
    assert_eq!(get.statements(), REQUESTS, "{get:?}");
    // One release ping per request (plus at most one still on its way from before): a ping on
    // acquire as well would make it twice as many.
    assert!(get.pings <= REQUESTS + 1, "{get:?}");

    let unchanged = &unchanged;
    let patch = cost(&counts, || async move {
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
