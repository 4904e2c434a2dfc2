//! Reads reuse the body an instance was last rendered to while its `resourceVersion` is current
//! (`crates/api/src/rendered.rs`): whatever writes the row (this API, the controller, another
//! replica), the next GET and list show the row as it is now.

use openclaws_testkit::api::{minimal, spawn_api};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().expect("a name"))
        .collect()
}

#[tokio::test]
async fn reads_show_every_change_whoever_wrote_it() {
    let api = spawn_api().await;
    for name in ["rc-a", "rc-b", "rc-c"] {
        let created = api.put(name, &minimal("c-render")).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    let first = api.get("/v1/instances/rc-a").await;
    assert_eq!(first.status, StatusCode::OK);
    let list = api.get("/v1/instances?limit=2").await;
    assert_eq!(names(&list.json), ["rc-a", "rc-b"]);
    assert_eq!(
        list.json["items"][0], first.json,
        "a list item is what GET shows"
    );
    assert!(list.json["metadata"]["continue"].is_string());

    // Another writer (the controller, another replica) changes the row behind this API.
    sqlx::query(
        "UPDATE instances SET status = '{\"phase\": \"Ready\", \"endpoint\": \"https://elsewhere\"}' \
         WHERE name = 'rc-a'",
    )
    .execute(&api.pool)
    .await
    .unwrap();
    let after = api.get("/v1/instances/rc-a").await;
    assert_eq!(after.json["status"]["endpoint"], "https://elsewhere");
    assert_eq!(after.json["status"]["phase"], "Ready");
    assert_ne!(
        after.json["metadata"]["resourceVersion"],
        first.json["metadata"]["resourceVersion"]
    );
    let etag = after.headers["etag"].to_str().unwrap();
    assert_eq!(
        etag,
        format!(
            "\"{}\"",
            after.json["metadata"]["resourceVersion"].as_str().unwrap()
        )
    );
    let list = api.get("/v1/instances").await;
    assert_eq!(names(&list.json), ["rc-a", "rc-b", "rc-c"]);
    assert_eq!(list.json["items"][0], after.json);

    // A write through the API shows at once, in GET and in the list.
    let patched = api
        .patch("rc-b", &json!({"metadata": {"labels": {"tier": "gold"}}}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let list = api.get("/v1/instances?labelSelector=tier%3Dgold").await;
    assert_eq!(names(&list.json), ["rc-b"]);
    assert_eq!(list.json["items"][0], patched.json);
    assert_eq!(api.get("/v1/instances/rc-b").await.json, patched.json);

    // A row removed behind the API (the controller finishing a teardown) is gone from both,
    // and a new instance of the same name is shown as itself, not as the old one.
    let old_uid = api.get("/v1/instances/rc-c").await.json["metadata"]["uid"].clone();
    sqlx::query("DELETE FROM instances WHERE name = 'rc-c'")
        .execute(&api.pool)
        .await
        .unwrap();
    assert_eq!(
        api.get("/v1/instances/rc-c").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        names(&api.get("/v1/instances").await.json),
        ["rc-a", "rc-b"]
    );
    let again = api.put("rc-c", &minimal("c-other")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    let shown = api.get("/v1/instances/rc-c").await.json;
    assert_ne!(shown["metadata"]["uid"], old_uid);
    assert_eq!(shown["spec"]["customerId"], "c-other");
}
