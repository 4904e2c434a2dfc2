//! The contract test: the real clients (`FlyClient`, the Cloudflare client) against the real
//! simulator over HTTP, every exchange recorded, then every request the clients sent and every
//! answer they read checked against the published documents vendored in
//! `crates/fly-sim/openapi/` (operation, query, headers, bodies; every object schema closed).
//! What the clients parsed is serialized again and checked too, so a field a client type names
//! differently from the document fails even when the simulator is right.
//!
//! `fly_answers.rs` holds one test per finding of the check against Fly's published sources.

mod allowances;
mod check;
mod fly_answers;
mod harness;

use check::Checker;
use fly_sim::contract::Document;
use harness::Harness;
use openclaws_dns::{ownership_comment, DnsRecord};
use openclaws_fly::types::*;
use std::collections::BTreeMap;
use std::time::Duration;

const APP: &str = "oc-contract";

/// A machine config shaped like the controller's gateway: services, checks, files, mounts.
fn gateway_config(volume: &str) -> MachineConfig {
    let mut config = MachineConfig {
        image: "ghcr.io/openclaw/openclaw:2026.9.6".into(),
        init: Some(MachineInit {
            cmd: Some(vec!["node".into(), "/etc/openclaws/boot.mjs".into()]),
            ..Default::default()
        }),
        env: BTreeMap::from([("NODE_ENV".into(), "production".into())]),
        guest: Some(Guest {
            cpu_kind: "shared".into(),
            cpus: 2,
            memory_mb: 2048,
            extra: Default::default(),
        }),
        mounts: vec![Mount {
            volume: volume.into(),
            path: "/data".into(),
            extra: Default::default(),
        }],
        services: vec![MachineService {
            protocol: "tcp".into(),
            internal_port: 3000,
            ports: vec![ServicePort {
                port: Some(443),
                handlers: vec!["tls".into(), "http".into()],
                force_https: None,
                extra: Default::default(),
            }],
            autostop: Some("off".into()),
            autostart: Some(true),
            min_machines_running: Some(0),
            extra: Default::default(),
        }],
        restart: Some(RestartPolicy {
            policy: "always".into(),
            max_retries: None,
        }),
        files: vec![MachineFile {
            guest_path: "/etc/openclaws/bundle.json".into(),
            raw_value: Some("e30=".into()),
            secret_name: None,
            mode: Some(0o600),
        }],
        metadata: BTreeMap::from([("openclaws_instance_uid".into(), "u1".into())]),
        auto_destroy: Some(false),
        extra: Default::default(),
    };
    config.extra.insert(
        "checks".into(),
        serde_json::json!({"alive": {"type": "tcp", "port": 3000, "interval": "15s", "timeout": "2s", "grace_period": "1s"}}),
    );
    config
}

/// Apps, secrets, IPs and a volume, as the controller sets up an instance.
async fn app_side(h: &Harness, c: &mut Checker) -> Volume {
    let fly = Document::fly();
    assert_eq!(h.fly.get_app(APP).await.unwrap(), None);
    let app = h.fly.create_app(APP, "net-contract").await.unwrap();
    c.typed(fly, "App", "create_app", &app);
    let app = h.fly.get_app(APP).await.unwrap().unwrap();
    c.typed(fly, "App", "get_app", &app);
    let listed = h.fly.list_apps().await.unwrap();
    assert!(listed.iter().any(|a| a.name == APP), "{listed:?}");
    for app in &listed {
        c.typed(fly, "App", "list_apps", app);
    }
    assert!(h.fly.list_secrets(APP).await.unwrap().is_empty());
    let values = BTreeMap::from([
        ("GATEWAY_TOKEN".into(), Some("t".into())),
        ("OLD".into(), None),
    ]);
    h.fly.set_secrets(APP, &values).await.unwrap();
    for s in h.fly.list_secrets(APP).await.unwrap() {
        c.typed(fly, "AppSecret", "list_secrets", &s);
    }
    assert!(h.fly.list_ips(APP).await.unwrap().is_empty());
    h.fly.assign_ip(APP, "v6").await.unwrap();
    h.fly.assign_ip(APP, "shared_v4").await.unwrap();
    for ip in h.fly.list_ips(APP).await.unwrap() {
        c.typed(fly, "IPAssignment", "list_ips", &ip);
    }
    let request = CreateVolumeRequest {
        name: "data".into(),
        region: "iad".into(),
        size_gb: 1,
        encrypted: Some(true),
        require_unique_zone: Some(false),
        compute: Some(Guest {
            cpu_kind: "shared".into(),
            cpus: 2,
            memory_mb: 2048,
            extra: Default::default(),
        }),
        ..Default::default()
    };
    let volume = h.fly.create_volume(APP, &request).await.unwrap();
    c.typed(fly, "Volume", "create_volume", &volume);
    for v in h.fly.list_volumes(APP).await.unwrap() {
        c.typed(fly, "Volume", "list_volumes", &v);
    }
    let got = h.fly.get_volume(APP, &volume.id).await.unwrap().unwrap();
    c.typed(fly, "Volume", "get_volume", &got);
    let extended = h.fly.extend_volume(APP, &volume.id, 2).await.unwrap();
    c.typed(fly, "ExtendVolumeResponse", "extend_volume", &extended);
    volume
}

/// A machine's life: create, list, wait, lease, update, exec, stop, start, restart.
async fn machine_side(h: &Harness, c: &mut Checker, volume: &Volume) -> Machine {
    let fly = Document::fly();
    let create = CreateMachineRequest {
        name: Some("gateway".into()),
        region: Some("iad".into()),
        config: gateway_config(&volume.id),
        min_secrets_version: Some(1),
        ..Default::default()
    };
    let m = h.fly.create_machine(APP, &create).await.unwrap();
    c.typed(fly, "Machine", "create_machine", &m);
    let listed = h
        .fly
        .list_machines(APP, &[("openclaws_instance_uid", "u1")])
        .await
        .unwrap();
    listed
        .iter()
        .for_each(|m| c.typed(fly, "Machine", "list_machines", m));
    let wait = |state: &'static str| {
        h.fly
            .wait_machine(APP, &m.id, state, Duration::from_secs(5), None)
    };
    let w = wait("started").await.unwrap();
    c.typed(fly, "WaitMachineResponse", "wait_machine", &w);
    let lease = h.fly.acquire_lease(APP, &m.id, "contract").await.unwrap();
    c.typed(fly, "Lease", "acquire_lease", &lease);
    let current = h.fly.get_machine(APP, &m.id).await.unwrap().unwrap();
    c.typed(fly, "Machine", "get_machine", &current);
    let mut config = current.config.clone().unwrap();
    config.env.insert("X".into(), "1".into());
    let update = UpdateMachineRequest {
        config,
        current_version: Some(current.instance_id.clone()),
        min_secrets_version: Some(1),
        ..Default::default()
    };
    let updated = h
        .fly
        .update_machine(APP, &m.id, &update, Some(&lease.nonce))
        .await
        .unwrap();
    c.typed(fly, "Machine", "update_machine", &updated);
    h.fly.release_lease(APP, &m.id, &lease.nonce).await.unwrap();
    wait("started").await.unwrap();
    let out = h
        .fly
        .exec_machine(APP, &m.id, vec!["true".into()], Duration::from_secs(5))
        .await
        .unwrap();
    c.typed(fly, "flydv1.ExecResponse", "exec_machine", &out);
    h.fly.stop_machine(APP, &m.id, None).await.unwrap();
    wait("stopped").await.unwrap();
    h.fly.start_machine(APP, &m.id, None).await.unwrap();
    wait("started").await.unwrap();
    h.fly.restart_machine(APP, &m.id, None).await.unwrap();
    m
}

/// The fleet listing: paged by cursor, then from a time.
async fn org_side(h: &Harness, c: &mut Checker) {
    let fly = Document::fly();
    let first = h.fly.list_org_machines(None, None, 1, true).await.unwrap();
    c.typed(fly, "OrgMachinesResponse", "list_org_machines", &first);
    if let Some(cursor) = first.next_cursor.as_deref() {
        let next = h
            .fly
            .list_org_machines(None, Some(cursor), 1, true)
            .await
            .unwrap();
        c.typed(
            fly,
            "OrgMachinesResponse",
            "list_org_machines(cursor)",
            &next,
        );
    }
    let after = h
        .fly
        .list_org_machines(Some("2000-01-01T00:00:00Z"), None, 1000, false)
        .await
        .unwrap();
    assert!(!after.machines.is_empty());
    c.typed(
        fly,
        "OrgMachinesResponse",
        "list_org_machines(updated_after)",
        &after,
    );
}

/// Certificate and DNS record of the instance's hostname.
async fn endpoint_side(h: &Harness, c: &mut Checker) {
    let host = "gw-contract.openclaws.biz";
    assert_eq!(h.fly.get_certificate(APP, host).await.unwrap(), None);
    h.fly.add_certificate(APP, host).await.unwrap();
    let cert = h.fly.get_certificate(APP, host).await.unwrap().unwrap();
    c.typed(
        Document::fly(),
        "CertificateDetail",
        "get_certificate",
        &cert,
    );
    let cf = Document::cloudflare();
    assert!(h.dns.list(host).await.unwrap().is_empty());
    let record = DnsRecord {
        id: String::new(),
        type_: "CNAME".into(),
        name: host.into(),
        content: format!("{APP}.fly.dev"),
        comment: Some(ownership_comment("u1")),
    };
    let created = h.dns.create(&record).await.unwrap();
    c.typed(cf, "dns-records_dns-record", "dns.create", &created);
    let changed = DnsRecord {
        content: "other.fly.dev".into(),
        ..record
    };
    h.dns.update(&created.id, &changed).await.unwrap();
    for r in h.dns.list(host).await.unwrap() {
        c.typed(cf, "dns-records_dns-record", "dns.list", &r);
    }
    h.dns.delete(&created.id).await.unwrap();
    h.dns
        .delete(&created.id)
        .await
        .expect("deleting twice is fine");
    h.fly.delete_certificate(APP, host).await.unwrap();
}

/// Teardown in the controller's order.
async fn teardown(h: &Harness, m: &Machine, volume: &Volume) {
    for ip in h.fly.list_ips(APP).await.unwrap() {
        h.fly.release_ip(APP, &ip.ip).await.unwrap();
    }
    h.fly.delete_machine(APP, &m.id, true, None).await.unwrap();
    h.fly
        .wait_machine(APP, &m.id, "destroyed", Duration::from_secs(5), None)
        .await
        .unwrap();
    h.fly.delete_volume(APP, &volume.id).await.unwrap();
    h.fly.delete_app(APP, true).await.unwrap();
}

/// The operations the controller's clients use; the scenario must have exercised each.
const USED: [&str; 31] = [
    "GET /v1/apps/{app_name}",
    "GET /v1/apps",
    "POST /v1/apps",
    "DELETE /v1/apps/{app_name}",
    "GET /v1/apps/{app_name}/secrets",
    "POST /v1/apps/{app_name}/secrets",
    "GET /v1/apps/{app_name}/ip_assignments",
    "POST /v1/apps/{app_name}/ip_assignments",
    "DELETE /v1/apps/{app_name}/ip_assignments/{ip}",
    "POST /v1/apps/{app_name}/volumes",
    "GET /v1/apps/{app_name}/volumes",
    "GET /v1/apps/{app_name}/volumes/{volume_id}",
    "PUT /v1/apps/{app_name}/volumes/{volume_id}/extend",
    "DELETE /v1/apps/{app_name}/volumes/{volume_id}",
    "POST /v1/apps/{app_name}/machines",
    "GET /v1/apps/{app_name}/machines",
    "GET /v1/apps/{app_name}/machines/{machine_id}",
    "POST /v1/apps/{app_name}/machines/{machine_id}",
    "DELETE /v1/apps/{app_name}/machines/{machine_id}",
    "GET /v1/apps/{app_name}/machines/{machine_id}/wait",
    "POST /v1/apps/{app_name}/machines/{machine_id}/lease",
    "DELETE /v1/apps/{app_name}/machines/{machine_id}/lease",
    "POST /v1/apps/{app_name}/machines/{machine_id}/exec",
    "POST /v1/apps/{app_name}/machines/{machine_id}/stop",
    "POST /v1/apps/{app_name}/machines/{machine_id}/start",
    "POST /v1/apps/{app_name}/machines/{machine_id}/restart",
    "GET /v1/orgs/{org_slug}/machines",
    "POST /v1/apps/{app_name}/certificates/acme",
    "GET /v1/apps/{app_name}/certificates/{hostname}",
    "DELETE /v1/apps/{app_name}/certificates/{hostname}",
    "POST /zones/{zone_id}/dns_records",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_and_answer_of_the_clients_matches_the_published_documents() {
    let h = Harness::start(harness::config()).await;
    let mut c = Checker::default();
    let volume = app_side(&h, &mut c).await;
    let m = machine_side(&h, &mut c, &volume).await;
    org_side(&h, &mut c).await;
    endpoint_side(&h, &mut c).await;
    teardown(&h, &m, &volume).await;
    for e in h.exchanges() {
        c.exchange(&e);
    }
    let missing: Vec<&str> = USED
        .iter()
        .filter(|op| !c.seen.iter().any(|s| s == *op))
        .copied()
        .collect();
    assert!(missing.is_empty(), "not exercised: {missing:?}");
    for op in [
        "GET /zones",
        "GET /zones/{zone_id}/dns_records",
        "PUT /zones/{zone_id}/dns_records/{dns_record_id}",
        "DELETE /zones/{zone_id}/dns_records/{dns_record_id}",
    ] {
        assert!(c.seen.iter().any(|s| s == op), "not exercised: {op}");
    }
    assert!(
        c.problems.is_empty(),
        "{} contract problems:\n{}",
        c.problems.len(),
        c.problems.join("\n")
    );
}
