//! Scenarios of the other API modules with the API's database behind a throwaway PgBouncer in
//! transaction pool mode (as Supabase's pooler is), where every statement may land on another
//! server connection: watches (versions, the change log's horizon, whose tickets are
//! transaction-scoped advisory locks, resumes, 410 Gone, events), field ownership and apply
//! (row locks and retries of concurrent creates), selectors and paging, dry runs (rolled-back
//! transactions) and the audit trail.

use crate::{api_apply, api_audit, api_dry_run, api_selectors, api_watch};
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
/// second late). PgBouncer counts each of sqlx's pings as a transaction; since the pool stopped
/// pinging on acquire (issue 16) the smallest scenario (a dry-run create) counts 10.
async fn went_through_the_pooler(api: &TestApi, before: i64) {
    let pooled = eventually(Duration::from_secs(30), "PgBouncer to count", || async {
        let now = transactions(api).await;
        (now - before > 5).then_some(now - before)
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

#[tokio::test]
async fn a_put_keeps_other_managers_fields_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_apply::a_dashboard_put_keeps_supports_pause_and_recorded_approvals_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn apply_conflicts_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_apply::an_apply_over_another_managers_field_conflicts_unless_forced_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn concurrent_applies_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_apply::concurrent_applies_of_a_new_name_create_it_once_and_never_conflict_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn label_selectors_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_selectors::each_kind_of_label_requirement_selects_exactly_the_matching_instances_on(&api)
        .await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn paging_a_filtered_list_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_selectors::paging_a_filtered_list_returns_every_match_exactly_once_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn field_selectors_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_selectors::field_selectors_filter_on_phase_and_customer_id_and_combine_with_the_other_filters_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn a_dry_run_create_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_dry_run::a_dry_run_create_answers_the_object_and_its_plan_and_stores_nothing_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn dry_run_changes_and_deletes_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_dry_run::dry_run_changes_and_deletes_leave_the_stored_instance_alone_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn the_audit_trail_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_audit::put_patch_apply_and_delete_record_actor_manager_and_changed_fields_on(&api).await;
    went_through_the_pooler(&api, before).await;
}

#[tokio::test]
async fn dry_runs_record_nothing_through_a_transaction_pooler() {
    let (api, before) = pooled().await;
    api_audit::dry_runs_record_nothing_on(&api).await;
    went_through_the_pooler(&api, before).await;
}
