//! The public endpoint: a CNAME for `{slug}.{domain}` through the Cloudflare API and a Fly
//! certificate validated by it; both repaired after out-of-band removal, left alone when someone
//! else owns the name, and removed on delete.

use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{condition, Stack, StackOptions, FLY_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(90);

/// The id of the simulated `openclaws.test` zone.
async fn zone_id(stack: &Stack) -> String {
    let (_, zones) = stack
        .fly(Method::GET, "/client/v4/zones?name=openclaws.test", None)
        .await;
    zones["result"][0]["id"].as_str().unwrap().to_owned()
}

async fn records(stack: &Stack, name: &str) -> Vec<Value> {
    let zone = zone_id(stack).await;
    let resp = stack
        .http
        .get(format!(
            "{}/client/v4/zones/{zone}/dns_records",
            stack.sim_url
        ))
        .query(&[("name", name)])
        .bearer_auth(FLY_TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["result"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_and_certificate_are_created_repaired_and_removed() {
    let stack = Stack::start(StackOptions::default()).await;
    stack
        .put("site", json!({"customerId": "c", "region": "iad"}))
        .await;
    let ready = stack.wait_ready("site", CONVERGE).await;
    assert_eq!(condition(&ready, "DnsReady")["status"], "True", "{ready}");
    assert_eq!(
        condition(&ready, "CertificateReady")["status"],
        "True",
        "{ready}"
    );
    let recs = records(&stack, "site.openclaws.test").await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["type"], "CNAME");
    assert_eq!(recs[0]["content"], "oc-site.fly.dev");
    let (code, cert) = stack
        .fly(
            Method::GET,
            "/v1/apps/oc-site/certificates/site.openclaws.test",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(cert["status"], "active", "{cert}");

    // The record deleted out of band comes back.
    let zone = zone_id(&stack).await;
    let status = stack
        .http
        .delete(format!(
            "{}/client/v4/zones/{zone}/dns_records/{}",
            stack.sim_url,
            recs[0]["id"].as_str().unwrap()
        ))
        .bearer_auth(FLY_TOKEN)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    // And so does the certificate.
    let (code, _) = stack
        .fly(
            Method::DELETE,
            "/v1/apps/oc-site/certificates/site.openclaws.test",
            None,
        )
        .await;
    assert!(code.is_success());
    stack.reconcile_now("site").await;
    eventually(CONVERGE, "record and certificate to be back", || async {
        let recs = records(&stack, "site.openclaws.test").await;
        let (code, cert) = stack
            .fly(
                Method::GET,
                "/v1/apps/oc-site/certificates/site.openclaws.test",
                None,
            )
            .await;
        (recs.len() == 1 && code == StatusCode::OK && cert["status"] == "active").then_some(())
    })
    .await;
    stack.wait_ready("site", CONVERGE).await;

    // Delete removes both.
    assert_eq!(stack.delete("site").await, StatusCode::ACCEPTED);
    eventually(CONVERGE, "the instance to be gone", || async {
        (stack.get("site").await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert!(records(&stack, "site.openclaws.test").await.is_empty());
    let (_, orphans) = stack.fly(Method::GET, "/_sim/orphans", None).await;
    assert_eq!(orphans["count"], 0, "{orphans}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_someone_else_made_is_left_alone() {
    let stack = Stack::start(StackOptions::default()).await;
    // Someone created the name in our zone by hand (no ownership comment).
    let zone = zone_id(&stack).await;
    let status = stack
        .http
        .post(format!(
            "{}/client/v4/zones/{zone}/dns_records",
            stack.sim_url
        ))
        .bearer_auth(FLY_TOKEN)
        .json(&json!({"type": "A", "name": "taken.openclaws.test", "content": "192.0.2.7"}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    stack
        .put("taken", json!({"customerId": "c", "region": "iad"}))
        .await;
    let seen = stack
        .wait_for("taken", "DnsReady=False RecordNotOurs", CONVERGE, |b| {
            condition(b, "DnsReady")["reason"] == "RecordNotOurs"
        })
        .await;
    assert_ne!(seen["status"]["phase"], "Ready");
    // The gateway itself is still provisioned.
    stack
        .wait_for("taken", "the machine to run", CONVERGE, |b| {
            condition(b, "MachineReady")["status"] == "True"
        })
        .await;
    let recs = records(&stack, "taken.openclaws.test").await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["content"], "192.0.2.7", "untouched");
}
