//! The API's watch against the whole controller: every status write of a reconcile reaches a
//! watcher as `MODIFIED`, in version order, up to `Ready`; deletion ends with `DELETED` once
//! teardown removed the row.

use openclaws_testkit::stack::{Stack, StackOptions, WRITER};
use openclaws_testkit::watch::WatchStream;
use serde_json::json;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_watcher_sees_provisioning_reach_ready_and_deletion_end() {
    let stack = Stack::start(StackOptions::default()).await;
    let url = format!("{}/v1/instances?watch=true", stack.api_url);
    let mut stream = WatchStream::open(&stack.http, &url, WRITER, false)
        .await
        .expect("the watch opens");
    assert_eq!(stream.next(CONVERGE).await.unwrap().type_, "BOOKMARK");
    stack
        .put("watched", json!({"customerId": "c", "region": "iad"}))
        .await;
    let added = stream.next_change(CONVERGE).await.unwrap();
    assert_eq!(added.type_, "ADDED");
    let mut last = added.version().unwrap();
    let mut phases = Vec::new();
    loop {
        let event = stream.next_change(CONVERGE).await.unwrap();
        assert_eq!(event.type_, "MODIFIED");
        let version = event.version().unwrap();
        assert!(version > last, "in version order");
        last = version;
        let phase = event.object["status"]["phase"].as_str().unwrap().to_owned();
        if phases.last() != Some(&phase) {
            phases.push(phase.clone());
        }
        if phase == "Ready" {
            break;
        }
    }
    assert!(phases.contains(&"Provisioning".to_owned()), "{phases:?}");

    assert_eq!(stack.delete("watched").await, reqwest::StatusCode::ACCEPTED);
    let deleted = loop {
        let event = stream.next_change(CONVERGE).await.unwrap();
        assert!(event.version().unwrap() > last);
        last = event.version().unwrap();
        if event.type_ == "DELETED" {
            break event;
        }
        assert_eq!(event.type_, "MODIFIED");
    };
    assert_eq!(deleted.name(), Some("watched"));
    assert!(deleted.object["metadata"]["deletionTimestamp"].is_string());
    let (status, _) = stack.get("watched").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}
