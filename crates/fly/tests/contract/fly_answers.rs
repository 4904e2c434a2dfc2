//! One test per finding of the check against Fly's published document and fly-go: the
//! simulator answers as Fly does, and the client reads it.

use super::harness::{self, Harness};
use openclaws_fly::types::{CreateMachineRequest, MachineConfig};
use openclaws_fly::FlyError;
use serde_json::json;
use std::time::Duration;

async fn app(h: &Harness, name: &str) {
    h.fly.create_app(name, "net").await.unwrap();
}

async fn machine(h: &Harness, app: &str, image: &str) -> openclaws_fly::types::Machine {
    let req = CreateMachineRequest {
        config: MachineConfig {
            image: image.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let m = h.fly.create_machine(app, &req).await.unwrap();
    h.fly
        .wait_machine(app, &m.id, "started", Duration::from_secs(5), None)
        .await
        .unwrap();
    m
}

#[tokio::test]
async fn lists_fly_sends_as_null_read_as_empty() {
    let h = Harness::start(harness::config()).await;
    app(&h, "oc-nulls").await;
    assert!(h.fly.list_ips("oc-nulls").await.unwrap().is_empty());
    assert_eq!(
        h.last_answer("GET", "/ip_assignments"),
        json!({"ips": null})
    );
    assert!(h.fly.list_secrets("oc-nulls").await.unwrap().is_empty());
    assert_eq!(h.last_answer("GET", "/secrets"), json!({"secrets": null}));
    h.fly
        .add_certificate("oc-nulls", "gw-nulls.openclaws.biz")
        .await
        .unwrap();
    let cert = h
        .fly
        .get_certificate("oc-nulls", "gw-nulls.openclaws.biz")
        .await
        .unwrap()
        .unwrap();
    let requirements = cert.dns_requirements.unwrap();
    assert!(requirements.a.is_empty() && requirements.aaaa.is_empty());
    let raw = h.last_answer("GET", "/certificates/gw-nulls.openclaws.biz");
    assert!(raw["dns_requirements"]["a"].is_null() && raw["dns_requirements"]["aaaa"].is_null());
    let page = h
        .fly
        .list_org_machines(Some("2100-01-01T00:00:00Z"), None, 10, false)
        .await
        .unwrap();
    assert!(page.machines.is_empty());
    assert!(h.last_answer("GET", "/machines")["machines"].is_null());
}

#[tokio::test]
async fn app_create_is_answered_with_id_and_created_at_only() {
    let h = Harness::start(harness::config()).await;
    let created = h.fly.create_app("oc-created", "net-c").await.unwrap();
    let raw = h.last_answer("POST", "/v1/apps");
    let keys: Vec<&String> = raw.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_at", "id"], "{raw}");
    assert!(raw["created_at"].is_i64(), "{raw}");
    assert_eq!(created.id, raw["id"].as_str().unwrap());
    assert_eq!(created.name, "oc-created");
    assert_eq!(created.network.as_deref(), Some("net-c"));
}

#[tokio::test]
async fn ip_kinds_follow_from_family_shared_and_egress() {
    let h = Harness::start(harness::config()).await;
    app(&h, "oc-kinds").await;
    let kinds = [
        "v6",
        "shared_v4",
        "v4",
        "private_v6",
        "egress_v4",
        "egress_v6",
    ];
    for kind in kinds {
        h.fly.assign_ip("oc-kinds", kind).await.unwrap();
    }
    let listed = h.fly.list_ips("oc-kinds").await.unwrap();
    let seen: Vec<String> = listed.iter().map(|i| i.kind()).collect();
    assert_eq!(seen, kinds);
    let raw = h.last_answer("GET", "/ip_assignments");
    assert!(
        raw["ips"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.get("type").is_none()),
        "{raw}"
    );
    h.fly.assign_ip("oc-kinds", "egress_pair").await.unwrap();
    let pair = h.last_answer("POST", "/ip_assignments");
    assert!(
        pair["ip_pair"]["v4"].is_string() && pair.get("ip").is_none(),
        "{pair}"
    );
}

#[tokio::test]
async fn a_wait_for_stopped_names_the_version_and_times_out_as_fly_does() {
    let h = Harness::start(harness::config()).await;
    app(&h, "oc-waits").await;
    let m = machine(&h, "oc-waits", "img:1").await;
    let path = format!("/v1/apps/oc-waits/machines/{}/wait", m.id);
    let (status, body) = h.raw_get(&format!("{path}?state=stopped&timeout=1")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = h.raw_get(&format!("{path}?state=started&timeout=1s")).await;
    assert_eq!(status, 400, "timeout is whole seconds");
    let (status, _) = h
        .raw_get(&format!(
            "{path}?state=stopped&timeout=1&version={}",
            m.instance_id
        ))
        .await;
    assert_eq!(status, 408);
    h.fly.stop_machine("oc-waits", &m.id, None).await.unwrap();
    let w = h
        .fly
        .wait_machine("oc-waits", &m.id, "stopped", Duration::from_secs(5), None)
        .await
        .unwrap();
    assert_eq!(w.state, "stopped");
    let sent = h
        .exchanges()
        .into_iter()
        .rev()
        .find(|e| e.path == path)
        .unwrap();
    assert!(
        sent.query
            .contains(&("version".into(), m.instance_id.clone())),
        "{:?}",
        sent.query
    );
}

#[tokio::test]
async fn secrets_not_yet_replicated_are_a_transient_412() {
    let h = Harness::start(harness::config()).await;
    app(&h, "oc-lag").await;
    let req = CreateMachineRequest {
        config: MachineConfig {
            image: "img:1".into(),
            ..Default::default()
        },
        min_secrets_version: Some(3),
        ..Default::default()
    };
    match h.fly.create_machine("oc-lag", &req).await {
        Err(
            e @ FlyError::Transient {
                status: Some(412), ..
            },
        ) => {
            assert!(e.is_retryable() && !e.is_terminal());
            assert!(
                e.to_string()
                    .contains("min_secrets_version 3 is not yet available on this app"),
                "{e}"
            );
        }
        other => panic!("expected a transient 412, got {other:?}"),
    }
}

#[tokio::test]
async fn machines_report_the_digest_of_their_image() {
    let h = Harness::start(harness::config()).await;
    app(&h, "oc-digest").await;
    let a = machine(&h, "oc-digest", "ghcr.io/openclaw/openclaw:2026.9.6").await;
    let b = machine(&h, "oc-digest", "ghcr.io/openclaw/openclaw:2026.9.6").await;
    let c = machine(&h, "oc-digest", "ghcr.io/openclaw/openclaw:main").await;
    let image_ref = a.image_ref.clone().expect("image_ref");
    assert_eq!(image_ref.registry, "ghcr.io");
    assert_eq!(image_ref.repository, "openclaw/openclaw");
    assert_eq!(image_ref.tag, "2026.9.6");
    assert!(a.image_digest().unwrap().starts_with("sha256:"));
    assert_eq!(a.image_digest(), b.image_digest());
    assert_ne!(a.image_digest(), c.image_digest());
}

#[tokio::test]
async fn a_partial_org_listing_names_its_missing_regions() {
    let h = Harness::start(harness::config()).await;
    app(&h, "oc-partial").await;
    machine(&h, "oc-partial", "img:1").await;
    let full = h
        .fly
        .list_org_machines(None, None, 100, false)
        .await
        .unwrap();
    assert!(!full.is_partial() && full.machines.len() == 1);
    h.fault(json!({"kind": "partial_listing", "regions": ["iad"], "count": 1}))
        .await;
    let partial = h
        .fly
        .list_org_machines(None, None, 100, false)
        .await
        .unwrap();
    assert!(partial.is_partial());
    assert_eq!(partial.error_regions, ["iad"]);
    assert!(partial.machines.is_empty(), "missing, not gone");
}

#[tokio::test]
async fn exec_as_octet_stream_and_bare_leases_are_read() {
    let mut config = harness::config();
    config.exec_octet_stream = true;
    config.lease_envelope = false;
    let h = Harness::start(config).await;
    app(&h, "oc-shapes").await;
    let m = machine(&h, "oc-shapes", "img:1").await;
    let out = h
        .fly
        .exec_machine(
            "oc-shapes",
            &m.id,
            vec!["true".into()],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    let exec = h
        .exchanges()
        .into_iter()
        .rev()
        .find(|e| e.path.ends_with("/exec"))
        .unwrap();
    assert_eq!(exec.content_type, "application/octet-stream");
    let lease = h
        .fly
        .acquire_lease("oc-shapes", &m.id, "bare")
        .await
        .unwrap();
    assert_eq!(lease.nonce.len(), 12);
    assert!(
        h.last_answer("POST", "/lease").get("data").is_none(),
        "bare lease"
    );
}
