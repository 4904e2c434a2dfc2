//! The watch scenarios of `api_watch` with the API's database behind a throwaway PgBouncer in
//! transaction pool mode (as Supabase's pooler is): versions, the change log's horizon (its
//! tickets are transaction-scoped advisory locks), resumes, 410 Gone and events watches work
//! the same when every statement may land on another server connection.

use crate::api_watch;
use openclaws_testkit::api::{spawn_api_via, TestApi};
use openclaws_testkit::db::eventually;
use std::time::Duration;

/// An API behind a transaction pooler, and how many transactions PgBouncer had counted.
async fn pooled() -> (TestApi, i64) {
    let api = spawn_api_via(true).await;
    let before = transactions(&api).await;
    (api, before)
}

async fn transactions(api: &TestApi) -> i64 {
    let pooler = api.pooler.as_ref().expect("an API behind a pooler");
    let database = api
        .pool
        .connect_options()
        .get_database()
        .unwrap()
        .to_owned();
    pooler.stats(&database).await.unwrap().transactions
}

/// Checks the scenario's statements went through the pooler (PgBouncer's statistics come a
/// second late).
async fn went_through_the_pooler(api: &TestApi, before: i64) {
    let pooled = eventually(Duration::from_secs(10), "PgBouncer to count", || async {
        let now = transactions(api).await;
        (now - before > 10).then_some(now - before)
    })
    .await;
    println!("through PgBouncer: {pooled} transactions");
}

#[tokio::test]
async fn a_status_write_is_seen_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_watch::a_status_write_moves_the_version_and_is_seen_as_modified_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn resuming_with_concurrent_writers_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_watch::resuming_gets_exactly_the_later_changes_with_concurrent_writers_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn an_older_change_in_flight_holds_the_watch_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_watch::a_change_committed_early_waits_for_an_older_one_still_in_flight_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn a_pruned_version_is_gone_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_watch::a_pruned_version_is_gone_with_the_current_one_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn events_are_watched_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_watch::one_instances_events_are_watched_on(&api).await;
    went_through_the_pooler(&api, before).await;
}
