//! The Fly client against the simulator over real HTTP: every call it makes, and every error
//! class it reports.

use openclaws_fly::types::{
    CreateMachineRequest, CreateVolumeRequest, MachineConfig, Mount, UpdateMachineRequest,
};
use openclaws_fly::{FlyClient, FlyError};
use openclaws_telemetry::Metrics;
use openclaws_testkit::db::eventually;
use openclaws_testkit::stack::{Stack, StackOptions, FLY_TOKEN};
use std::sync::Arc;
use std::time::Duration;

fn client(stack: &Stack, token: &str) -> FlyClient {
    FlyClient::new(&stack.sim_url, token, "personal", Arc::new(Metrics::new()))
}

fn machine_request(volume: &str) -> CreateMachineRequest {
    CreateMachineRequest {
        name: Some("gateway".into()),
        region: Some("iad".into()),
        config: MachineConfig {
            image: "ghcr.io/openclaw/openclaw:main".into(),
            mounts: vec![Mount {
                volume: volume.into(),
                path: "/data".into(),
                extra: Default::default(),
            }],
            metadata: [("openclaws_instance_uid".to_owned(), "u1".to_owned())].into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_and_error_class_against_the_simulator() {
    let stack = Stack::start_without_controller(StackOptions {
        latency_scale: 0.2,
        ..StackOptions::default()
    })
    .await;
    let fly = client(&stack, FLY_TOKEN);

    // Apps: absent, created, readable; a second create of the name is rejected as name_taken.
    assert_eq!(fly.get_app("oc-client").await.unwrap(), None);
    let app = fly.create_app("oc-client", "net-1").await.unwrap();
    assert_eq!(app.name, "oc-client");
    let read = fly.get_app("oc-client").await.unwrap().unwrap();
    assert_eq!(read.network.as_deref(), Some("net-1"));
    match fly.create_app("oc-client", "net-1").await {
        Err(FlyError::Rejected {
            status: 422, code, ..
        }) => {
            assert_eq!(code.as_deref(), Some("name_taken"))
        }
        other => panic!("expected name_taken, got {other:?}"),
    }

    // Volumes.
    let volume = fly
        .create_volume(
            "oc-client",
            &CreateVolumeRequest {
                name: "data".into(),
                region: "iad".into(),
                size_gb: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(fly.list_volumes("oc-client").await.unwrap().len(), 1);
    let extended = fly.extend_volume("oc-client", &volume.id, 2).await.unwrap();
    assert_eq!(extended.volume.size_gb, 2);

    // Machines: create, list by metadata, wait, update, stop, start, delete.
    let m = fly
        .create_machine("oc-client", &machine_request(&volume.id))
        .await
        .unwrap();
    let found = fly
        .list_machines("oc-client", &[("openclaws_instance_uid", "u1")])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(fly
        .list_machines("oc-client", &[("openclaws_instance_uid", "other")])
        .await
        .unwrap()
        .is_empty());
    let started = fly
        .wait_machine("oc-client", &m.id, "started", Duration::from_secs(10), None)
        .await
        .unwrap();
    assert_eq!(started.state, "started");

    // Starting a machine that is being replaced is a precondition failure (412).
    let mut config = m.config.clone().unwrap();
    config.env.insert("X".into(), "1".into());
    let updated = fly
        .update_machine(
            "oc-client",
            &m.id,
            &UpdateMachineRequest {
                config: config.clone(),
                current_version: Some(m.instance_id.clone()),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_ne!(updated.instance_id, m.instance_id);
    // A stale current_version is a conflict (409).
    match fly
        .update_machine(
            "oc-client",
            &m.id,
            &UpdateMachineRequest {
                config,
                current_version: Some(m.instance_id.clone()),
                ..Default::default()
            },
            None,
        )
        .await
    {
        Err(FlyError::Conflict { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    fly.wait_machine("oc-client", &m.id, "started", Duration::from_secs(10), None)
        .await
        .unwrap();
    fly.stop_machine("oc-client", &m.id, None).await.unwrap();
    fly.wait_machine("oc-client", &m.id, "stopped", Duration::from_secs(10), None)
        .await
        .unwrap();
    // Right after a stop Fly may still refuse a start (412 "machine still active"): a
    // precondition, retried until the machine is reaped.
    eventually(
        Duration::from_secs(10),
        "a start to be accepted",
        || async {
            match fly.start_machine("oc-client", &m.id, None).await {
                Ok(()) => Some(()),
                Err(FlyError::Precondition { .. }) => None,
                Err(e) => panic!("unexpected start failure {e:?}"),
            }
        },
    )
    .await;
    fly.wait_machine("oc-client", &m.id, "started", Duration::from_secs(10), None)
        .await
        .unwrap();

    // Deleting the volume of a running machine is refused (412 precondition).
    match fly.delete_volume("oc-client", &volume.id).await {
        Err(FlyError::Precondition { message }) => assert!(message.contains("bound"), "{message}"),
        other => panic!("expected a precondition failure, got {other:?}"),
    }
    // Destroying a running machine without force is refused; with force it goes.
    assert!(matches!(
        fly.delete_machine("oc-client", &m.id, false, None).await,
        Err(FlyError::Precondition { .. })
    ));
    fly.delete_machine("oc-client", &m.id, true, None)
        .await
        .unwrap();
    fly.wait_machine(
        "oc-client",
        &m.id,
        "destroyed",
        Duration::from_secs(10),
        None,
    )
    .await
    .unwrap();
    assert_eq!(fly.get_machine("oc-client", &m.id).await.unwrap(), None);

    // The org-wide listing sees machines of every app.
    let page = fly.list_org_machines(None, None, 100, false).await.unwrap();
    assert!(page.machines.iter().all(|m| m.app_name == "oc-client"));

    // A wrong token is unauthorized; another org's app is forbidden.
    let intruder = client(&stack, "not-the-token");
    assert!(matches!(
        intruder.get_app("oc-client").await,
        Err(FlyError::Unauthorized { .. })
    ));
    let (code, _) = stack
        .fly(
            reqwest::Method::POST,
            "/_sim/foreign-apps",
            Some(serde_json::json!({"name": "oc-taken"})),
        )
        .await;
    assert!(code.is_success());
    assert!(matches!(
        fly.get_app("oc-taken").await,
        Err(FlyError::Forbidden { .. })
    ));

    // A server that is not there is a transient failure, not a panic.
    let nowhere = FlyClient::new("http://127.0.0.1:9", "t", "o", Arc::new(Metrics::new()));
    match nowhere.get_app("x").await {
        Err(e @ FlyError::Transient { status: None, .. }) => assert!(e.is_retryable()),
        other => panic!("expected a transport failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_guard_mutations_and_report_their_expiry() {
    let stack = Stack::start_without_controller(StackOptions {
        latency_scale: 0.1,
        ..StackOptions::default()
    })
    .await;
    let fly = client(&stack, FLY_TOKEN);
    fly.create_app("oc-leased", "net-l").await.unwrap();
    let volume = fly
        .create_volume(
            "oc-leased",
            &CreateVolumeRequest {
                name: "data".into(),
                region: "iad".into(),
                size_gb: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let m = fly
        .create_machine("oc-leased", &machine_request(&volume.id))
        .await
        .unwrap();
    fly.wait_machine("oc-leased", &m.id, "started", Duration::from_secs(10), None)
        .await
        .unwrap();

    // Ours: the envelope decodes, and a second acquire by this process refreshes (same nonce).
    let lease = fly.acquire_lease("oc-leased", &m.id, "test").await.unwrap();
    assert_eq!(lease.nonce.len(), 12, "{lease:?}");
    let again = fly.acquire_lease("oc-leased", &m.id, "test").await.unwrap();
    assert_eq!(again.nonce, lease.nonce, "refreshed, not a new lease");

    // Another holder (a second process, no nonce) is refused with the expiry.
    let other = client(&stack, FLY_TOKEN);
    let held = other.acquire_lease("oc-leased", &m.id, "other").await;
    match &held {
        Err(
            e @ FlyError::LeaseHeld {
                expires_at: Some(at),
                ..
            },
        ) => {
            assert_eq!(e.reason(), "LeaseHeld");
            let left = (*at - chrono::Utc::now()).num_seconds();
            assert!((20..=31).contains(&left), "expires in {left}s");
            assert!(e.retry_after().unwrap() >= Duration::from_secs(20));
        }
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    assert!(matches!(
        other.stop_machine("oc-leased", &m.id, None).await,
        Err(FlyError::LeaseHeld { .. })
    ));
    // With the nonce the mutation goes through; once released anyone may lease again.
    fly.stop_machine("oc-leased", &m.id, Some(&lease.nonce))
        .await
        .unwrap();
    fly.release_lease("oc-leased", &m.id, &lease.nonce)
        .await
        .unwrap();
    fly.release_lease("oc-leased", &m.id, &lease.nonce)
        .await
        .expect("releasing twice is fine");
    // (Both processes draw from the machine's one lease bucket at Fly: a 429 means "again".)
    let theirs = eventually(Duration::from_secs(5), "their lease", || async {
        match other.acquire_lease("oc-leased", &m.id, "other").await {
            Ok(l) => Some(l),
            Err(FlyError::RateLimited { .. } | FlyError::Throttled { .. }) => None,
            Err(e) => panic!("expected the lease to be free, got {e:?}"),
        }
    })
    .await;
    assert_ne!(theirs.nonce, lease.nonce);
}
