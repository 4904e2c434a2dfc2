//! What an instance runs, as observed: the status carries the `image_ref` Fly reports (the digest
//! identifies the image) and the OpenClaw version its tag names; the support console's fleet
//! page and the `openclaws_instances_by_openclaw_version` gauge count the fleet by version, and
//! both follow an image change.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions, READER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const IMAGE: &str = "ghcr.io/openclaw/openclaw";

/// A support session's cookie for the reader token.
async fn support_cookie(stack: &Stack) -> String {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(format!("{}/support/login", stack.api_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={READER}"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// The fleet page's version table as `(version, text of its count cell)`.
async fn versions_on_the_fleet_page(stack: &Stack, cookie: &str) -> Vec<(String, String)> {
    let page = stack
        .http
        .get(format!("{}/support/instances", stack.api_url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let Some(start) = html.find("<table id=\"openclaw-versions\">") else {
        return Vec::new();
    };
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    table
        .split("<tr data-version=\"")
        .skip(1)
        .map(|row| {
            let version = row.split('"').next().unwrap().to_owned();
            let cells: Vec<&str> = row
                .split("<td")
                .skip(1)
                .map(|c| c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()].trim())
                .collect();
            assert_eq!(cells[0], version, "{row}");
            (version, cells[1].to_owned())
        })
        .collect()
}

fn strings(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_records_the_running_image_and_the_fleet_counts_versions() {
    let stack = Stack::start(StackOptions::default()).await;
    for (name, image) in [
        ("old", Some(format!("{IMAGE}:2026.9.5"))),
        ("new", Some(format!("{IMAGE}:2026.9.6"))),
        ("tip", None),
    ] {
        let mut spec = json!({"customerId": format!("cust-{name}"), "region": "iad"});
        if let Some(image) = image {
            spec["image"] = json!(image);
        }
        let (code, body) = stack.put(name, spec).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let mut digests = Vec::new();
    for (name, tag, version) in [
        ("old", "2026.9.5", json!("2026.9.5")),
        ("new", "2026.9.6", json!("2026.9.6")),
        ("tip", "main", Value::Null),
    ] {
        let ready = stack.wait_ready(name, READY_TIMEOUT).await;
        let fly = &ready["status"]["fly"];
        let image_ref = &fly["imageRef"];
        assert_eq!(image_ref["registry"], "ghcr.io", "{fly}");
        assert_eq!(image_ref["repository"], "openclaw/openclaw", "{fly}");
        assert_eq!(image_ref["tag"], tag, "{fly}");
        let digest = image_ref["digest"].as_str().unwrap().to_owned();
        assert!(digest.starts_with("sha256:") && digest.len() == 71, "{fly}");
        let machine = format!(
            "/v1/apps/oc-{name}/machines/{}",
            fly["machineId"].as_str().unwrap()
        );
        let (code, at_fly) = stack.fly(Method::GET, &machine, None).await;
        assert_eq!(code, StatusCode::OK, "{at_fly}");
        assert_eq!(at_fly["image_ref"]["digest"], digest.as_str());
        assert_eq!(fly["openclawVersion"], version, "{fly}");
        assert_eq!(fly.get("openclawVersion").is_some(), !version.is_null());
        digests.push(digest);
    }
    let distinct: std::collections::BTreeSet<&String> = digests.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "each tag has its own digest: {digests:?}"
    );

    let cookie = support_cookie(&stack).await;
    assert_eq!(
        versions_on_the_fleet_page(&stack, &cookie).await,
        strings(&[
            ("2026.9.5", "1 instance"),
            ("2026.9.6", "1 instance"),
            ("unknown", "1 instance"),
        ])
    );
    let gauge = "openclaws_instances_by_openclaw_version";
    eventually(Duration::from_secs(30), "the version gauge", || async {
        let old = stack.metric(gauge, "version=\"2026.9.5\"").await;
        let new = stack.metric(gauge, "version=\"2026.9.6\"").await;
        let unknown = stack.metric(gauge, "version=\"unknown\"").await;
        (old == 1.0 && new == 1.0 && unknown == 1.0).then_some(())
    })
    .await;

    // The old instance moves to 2026.9.6: its status, the page and the gauge follow.
    let (code, body) = stack
        .patch(
            "old",
            json!({"spec": {"image": format!("{IMAGE}:2026.9.6")}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let moved = stack
        .wait_for("old", "old to run 2026.9.6", READY_TIMEOUT, |b| {
            b["status"]["fly"]["openclawVersion"] == "2026.9.6"
        })
        .await;
    assert_ne!(
        moved["status"]["fly"]["imageRef"]["digest"].as_str(),
        Some(digests[0].as_str())
    );
    assert_eq!(
        versions_on_the_fleet_page(&stack, &cookie).await,
        strings(&[("2026.9.6", "2 instances"), ("unknown", "1 instance")])
    );
    eventually(
        Duration::from_secs(30),
        "the gauge after the move",
        || async {
            let old = stack.metric(gauge, "version=\"2026.9.5\"").await;
            let new = stack.metric(gauge, "version=\"2026.9.6\"").await;
            (old == 0.0 && new == 2.0).then_some(())
        },
    )
    .await;
    let text = stack
        .http
        .get(format!("{}/metrics", stack.api_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in text.lines().filter(|l| l.starts_with(gauge)) {
        let labels = &line[line.find('{').unwrap()..line.find('}').unwrap() + 1];
        assert!(
            labels.starts_with("{version=\"") && labels.matches('=').count() == 1,
            "the gauge carries only the version: {line}"
        );
    }
}
