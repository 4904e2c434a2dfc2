//! Resources that are not the controller's: an app another organization owns, a look-alike app
//! in our organization (our naming scheme, not our mark) with a volume and a machine, and a
//! bystander app with a volume and a machine. They are made before the replicas start and
//! compared at the end: the controller must not have changed anything about them.

use anyhow::Context;
use serde_json::{json, Value};

use super::recorder::HARNESS_AGENT;
use super::schedule::ForeignPlan;
use crate::stack::{FLY_TOKEN, ORG};

/// Makes the resources of `plan` at the simulator.
pub async fn create(
    http: &reqwest::Client,
    sim_url: &str,
    plan: &ForeignPlan,
) -> anyhow::Result<()> {
    let resp = http
        .post(format!("{sim_url}/_sim/foreign-apps"))
        .json(&json!({"name": plan.foreign_org_app}))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "foreign app: {}", resp.status());
    for app in [&plan.unmarked_app, &plan.bystander_app] {
        fly(
            http,
            sim_url,
            "/v1/apps",
            json!({"app_name": app, "org_slug": ORG, "network": "hand-made"}),
        )
        .await?;
        let volume = fly(
            http,
            sim_url,
            &format!("/v1/apps/{app}/volumes"),
            json!({"name": "data", "region": "iad", "size_gb": 1}),
        )
        .await?;
        fly(
            http,
            sim_url,
            &format!("/v1/apps/{app}/machines"),
            json!({"region": "iad", "config": {"image": "nginx",
                "metadata": {"owner": "someone else"},
                "mounts": [{"volume": volume["id"], "path": "/data"}]}}),
        )
        .await?;
    }
    Ok(())
}

async fn fly(
    http: &reqwest::Client,
    sim_url: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http
        .post(format!("{sim_url}{path}"))
        .bearer_auth(FLY_TOKEN)
        .header(reqwest::header::USER_AGENT, HARNESS_AGENT)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
    Ok(body)
}

/// The apps of `plan` in the simulator's state, with their machines and volumes, reduced to
/// what the controller could have changed (ids, states, versions, configs, sizes, leases).
pub fn snapshot(state: &Value, plan: &ForeignPlan) -> Value {
    let names = [
        &plan.foreign_org_app,
        &plan.unmarked_app,
        &plan.bystander_app,
    ];
    let list = |key: &str| state[key].as_array().cloned().unwrap_or_default();
    let apps: Vec<Value> = list("apps")
        .into_iter()
        .filter(|a| names.iter().any(|n| a["name"] == n.as_str()))
        .collect();
    let app_ids: Vec<&Value> = apps.iter().map(|a| &a["id"]).collect();
    let machines: Vec<Value> = list("machines")
        .into_iter()
        .filter(|m| names.iter().any(|n| m["app_name"] == n.as_str()))
        .map(|m| {
            json!({"id": m["id"], "app": m["app_name"], "state": m["state"],
                   "version": m["instance_id"], "config": m["config"], "lease": m["lease"]})
        })
        .collect();
    let volumes: Vec<Value> = list("volumes")
        .into_iter()
        .filter(|v| app_ids.contains(&&v["app_id"]))
        .map(|v| json!({"id": v["id"], "state": v["state"], "size_gb": v["size_gb"]}))
        .collect();
    let apps: Vec<Value> = apps
        .iter()
        .map(|a| {
            json!({"name": a["name"], "id": a["id"], "org": a["org"], "network": a["network"],
                   "deleting": a["deleting_at"], "secrets": a["secrets"], "ips": a["ips"],
                   "certificates": a["certificates"]})
        })
        .collect();
    json!({"apps": apps, "machines": machines, "volumes": volumes})
}

/// Whether `app` is one of the resources that are not ours.
pub fn is_foreign(plan: &ForeignPlan, app: &str) -> bool {
    [
        &plan.foreign_org_app,
        &plan.unmarked_app,
        &plan.bystander_app,
    ]
    .iter()
    .any(|n| n.as_str() == app)
}
