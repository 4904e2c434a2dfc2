//! Merge patches written in shared statements (`openclaws_store::desired`): one statement
//! writes only the changes still valid (at their version, not being deleted), changes that wait for the writer share one statement, and a change the server
//! refuses fails alone.

use axum::http::StatusCode;
use openclaws_store::desired::{self, DesiredWriter, QueuedChange};
use openclaws_store::events::Audit;
use openclaws_store::{instances, InstanceRecord};
use openclaws_testkit::api::{minimal, spawn_api, TestApi};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

async fn created(api: &TestApi, name: &str) -> InstanceRecord {
    let reply = api.put(name, &minimal(&format!("c-{name}"))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    instances::get(&api.pool, name).await.unwrap().unwrap()
}

/// A new spec for `record` (a display name), against its current version.
fn renamed(record: &InstanceRecord, display: &str) -> QueuedChange {
    let mut spec = record.spec.0.clone();
    spec["identity"] = json!({"displayName": display});
    QueuedChange {
        uid: record.uid,
        name: record.name.clone(),
        expected_version: record.resource_version,
        labels: record.labels.0.clone(),
        spec,
        spec_changed: true,
        managed: record.managed_fields.0.clone(),
        reason: "SpecUpdated",
        message: format!("renamed {display}"),
        generation: record.generation + 1,
        audit: Audit {
            actor: "writer".to_owned(),
            field_manager: Some("api".to_owned()),
            changed_fields: Some(vec!["/spec/identity/displayName".to_owned()]),
        },
    }
}

async fn display_name(api: &TestApi, uid: Uuid) -> Value {
    let name: Option<Value> =
        sqlx::query_scalar("SELECT spec #> '{identity,displayName}' FROM instances WHERE uid = $1")
            .bind(uid)
            .fetch_one(&api.pool)
            .await
            .unwrap();
    name.unwrap_or(Value::Null)
}

async fn events_named(api: &TestApi, message: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE message = $1")
        .bind(message)
        .fetch_one(&api.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn one_statement_writes_only_the_changes_still_valid() {
    let api = spawn_api().await;
    let [a, b, c, d] = [
        created(&api, "ins-a").await,
        created(&api, "ins-b").await,
        created(&api, "ins-c").await,
        created(&api, "ins-d").await,
    ];
    assert_eq!(d.deletion_timestamp, None);
    assert!(api.delete("ins-d").await.status.is_success());
    let d = instances::get(&api.pool, "ins-d").await.unwrap().unwrap();
    let mut stale = renamed(&b, "B");
    stale.expected_version -= 1;
    let mut unaudited = renamed(&c, "C");
    unaudited.audit.changed_fields = None;
    sqlx::query("DELETE FROM work")
        .execute(&api.pool)
        .await
        .unwrap();

    let changes = [renamed(&a, "A"), stale, unaudited, renamed(&d, "D")];
    let refs: Vec<&QueuedChange> = changes.iter().collect();
    let moved = desired::write_many(&api.pool, &refs).await.unwrap();

    let written: Vec<bool> = moved.iter().map(Option::is_some).collect();
    assert_eq!(written, [true, false, true, false]);
    for (record, change) in [(&a, &changes[0]), (&c, &changes[2])] {
        let m = moved[if record.uid == a.uid { 0 } else { 2 }].unwrap();
        assert!(m.resource_version > record.resource_version);
        assert_eq!(m.generation, record.generation + 1);
        assert_eq!(events_named(&api, &change.message).await, 1);
    }
    assert_eq!(display_name(&api, a.uid).await, json!("A"));
    assert_eq!(display_name(&api, c.uid).await, json!("C"));
    for (record, message) in [(&b, "renamed B"), (&d, "renamed D")] {
        assert_eq!(display_name(&api, record.uid).await, Value::Null);
        assert_eq!(events_named(&api, message).await, 0);
    }
    let queued: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT instance_uid, reason FROM work ORDER BY instance_uid")
            .fetch_all(&api.pool)
            .await
            .unwrap();
    let mut expected = vec![
        (a.uid, "SpecUpdated".to_owned()),
        (c.uid, "SpecUpdated".to_owned()),
    ];
    expected.sort();
    assert_eq!(queued, expected);
    let audits: Vec<Option<Vec<String>>> = sqlx::query_scalar(
        "SELECT changed_fields FROM events WHERE message IN ('renamed A', 'renamed C') \
         ORDER BY message",
    )
    .fetch_all(&api.pool)
    .await
    .unwrap();
    assert_eq!(
        audits,
        [Some(vec!["/spec/identity/displayName".to_owned()]), None]
    );
}

/// Holds the work row of `uid` locked in an open transaction, so that a write queuing work for
/// it waits; returns once the writer's statement is seen waiting for that lock.
async fn hold_work_row(api: &TestApi, uid: Uuid) -> sqlx::Transaction<'static, sqlx::Postgres> {
    sqlx::query("INSERT INTO work (instance_uid) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(uid)
        .execute(&api.pool)
        .await
        .unwrap();
    let mut holder = api.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM work WHERE instance_uid = $1 FOR UPDATE")
        .bind(uid)
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

async fn until_a_write_waits_for_a_lock(api: &TestApi) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&api.pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the first write never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn until_waiting(writer: &DesiredWriter, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while writer.waiting() < count {
        assert!(
            Instant::now() < deadline,
            "{} changes waiting",
            writer.waiting()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn xmin(api: &TestApi, uid: Uuid) -> String {
    sqlx::query_scalar("SELECT xmin::text FROM instances WHERE uid = $1")
        .bind(uid)
        .fetch_one(&api.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn changes_that_wait_for_the_writer_share_one_statement() {
    let api = spawn_api().await;
    let writer = DesiredWriter::start(api.pool.clone().into(), Duration::from_secs(5));
    let first = created(&api, "first").await;
    let mut others = Vec::new();
    for i in 0..10 {
        others.push(created(&api, &format!("other-{i}")).await);
    }
    let holder = hold_work_row(&api, first.uid).await;
    let blocked = tokio::spawn({
        let (writer, change) = (writer.clone(), renamed(&first, "first"));
        async move { writer.write(change).await }
    });
    until_a_write_waits_for_a_lock(&api).await;
    // Ten changes of ten instances, and a second change of the first of them: it waits for
    // the next statement (one change per instance in a statement), where its version is stale.
    let mut queued = Vec::new();
    for (i, record) in others.iter().enumerate() {
        let (writer, change) = (writer.clone(), renamed(record, &format!("other {i}")));
        queued.push(tokio::spawn(async move { writer.write(change).await }));
    }
    until_waiting(&writer, 10).await;
    let again = {
        let (writer, change) = (writer.clone(), renamed(&others[0], "again"));
        tokio::spawn(async move { writer.write(change).await })
    };
    until_waiting(&writer, 11).await;
    holder.commit().await.unwrap();

    assert!(blocked.await.unwrap().unwrap().is_some());
    for write in queued {
        let (moved, change) = write.await.unwrap().unwrap().expect("written");
        assert_eq!(moved.generation, 2, "{}", change.name);
    }
    assert!(
        again.await.unwrap().unwrap().is_none(),
        "a stale second change"
    );
    let mut transactions = Vec::new();
    for record in &others {
        transactions.push(xmin(&api, record.uid).await);
    }
    transactions.dedup();
    assert_eq!(
        transactions.len(),
        1,
        "one statement for the ten: {transactions:?}"
    );
    assert_ne!(transactions[0], xmin(&api, first.uid).await);
    assert_eq!(display_name(&api, others[0].uid).await, json!("other 0"));
}

#[tokio::test]
async fn a_change_the_server_refuses_fails_alone() {
    let api = spawn_api().await;
    let writer = DesiredWriter::start(api.pool.clone().into(), Duration::from_secs(5));
    let first = created(&api, "first").await;
    let [good, bad, also] = [
        created(&api, "good").await,
        created(&api, "bad").await,
        created(&api, "also").await,
    ];
    let holder = hold_work_row(&api, first.uid).await;
    let blocked = tokio::spawn({
        let (writer, change) = (writer.clone(), renamed(&first, "first"));
        async move { writer.write(change).await }
    });
    until_a_write_waits_for_a_lock(&api).await;
    // PostgreSQL's jsonb has no NUL character: the statement carrying this change fails.
    let refused = renamed(&bad, "nul \u{0} inside");
    let mut writes = Vec::new();
    for change in [renamed(&good, "good"), refused, renamed(&also, "also")] {
        let sender = writer.clone();
        writes.push(tokio::spawn(async move { sender.write(change).await }));
        until_waiting(&writer, writes.len()).await;
    }
    holder.commit().await.unwrap();

    assert!(blocked.await.unwrap().unwrap().is_some());
    let mut answers = Vec::new();
    for write in writes {
        answers.push(write.await.unwrap());
    }
    assert!(matches!(answers[0], Ok(Some(_))), "{:?}", answers[0]);
    assert!(answers[1].is_err(), "{:?}", answers[1]);
    assert!(matches!(answers[2], Ok(Some(_))), "{:?}", answers[2]);
    assert_eq!(display_name(&api, good.uid).await, json!("good"));
    assert_eq!(display_name(&api, also.uid).await, json!("also"));
    assert_eq!(display_name(&api, bad.uid).await, Value::Null);
}
