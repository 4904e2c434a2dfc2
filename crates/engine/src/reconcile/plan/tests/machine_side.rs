//! The app, volume and machine, and teardown, step by step.

use super::*;

#[test]
fn fresh_instance_creates_app_then_volume_then_machine() {
    let d = desired(RunState::Running, false, 2048);
    let mut world = Observed::empty();
    let mut steps = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let p = plan(&d, &world);
        if p.is_converged() {
            break;
        }
        for a in &p.actions {
            steps.push(a.step());
            apply(&mut world, &d, a, &mut n);
        }
    }
    assert_eq!(
        steps,
        [
            "CreateApp",
            "AssignIp",
            "AssignIp",
            "CreateVolume",
            "CreateMachine"
        ]
    );
}

#[test]
fn secrets_are_set_before_the_machine_which_waits_for_their_version() {
    let d = with_token(desired(RunState::Running, false, 2048));
    let mut world = Observed::empty();
    let mut n = 0;
    let mut created = None;
    let mut steps = Vec::new();
    for _ in 0..6 {
        let p = plan(&d, &world);
        if p.is_converged() {
            break;
        }
        for a in &p.actions {
            steps.push(a.step());
            if let Action::CreateMachine { request } = a {
                created = Some(request.clone());
            }
            apply(&mut world, &d, a, &mut n);
        }
    }
    assert_eq!(
        steps,
        [
            "CreateApp",
            "SetSecrets",
            "AssignIp",
            "AssignIp",
            "CreateVolume",
            "CreateMachine"
        ]
    );
    let applied = world.secrets.applied.clone().unwrap().1 as u64;
    assert_eq!(created.unwrap().min_secrets_version, Some(applied));
    // A new value rolls the machine onto it.
    let rotated = desired(RunState::Running, false, 2048).with_secrets(
        crate::reconcile::secrets::DesiredSecrets::new(
            [("OPENCLAW_GATEWAY_TOKEN".to_owned(), "rotated".to_owned())].into(),
            &openclaws_model::secrets::SecretCipher::from_key([1; 32]),
        ),
    );
    let p = plan(&rotated, &world);
    assert_eq!(
        p.actions.iter().map(Action::step).collect::<Vec<_>>(),
        ["SetSecrets"]
    );
    apply(&mut world, &rotated, &p.actions[0], &mut n);
    let p = plan(&rotated, &world);
    assert_eq!(
        p.actions.iter().map(Action::step).collect::<Vec<_>>(),
        ["UpdateMachine"]
    );
}

#[test]
fn foreign_app_is_never_touched() {
    for deleting in [false, true] {
        let d = desired(RunState::Running, deleting, 2048);
        let world = Observed {
            app: AppObservation::Foreign {
                reason: "other org".into(),
            },
            ..Observed::empty()
        };
        let p = plan(&d, &world);
        assert!(p.actions.is_empty());
        assert_eq!(p.blocked.is_some(), !deleting);
        assert_eq!(p.finalize, deleting);
    }
}

#[test]
fn settling_machine_means_wait_not_action() {
    let d = desired(RunState::Running, false, 2048);
    let mut world = ours(&d);
    world
        .volumes
        .push(volume("vol_a", "iad", Some("m1"), "2026"));
    world
        .machines
        .push(machine(&d, "m1", "vol_a", "starting", false));
    let p = plan(&d, &world);
    assert!(p.actions.is_empty());
    assert_eq!(
        p.wait.as_ref().map(|w| w.reason.as_str()),
        Some("MachineSettling")
    );
}

#[test]
fn destroyed_machine_is_recreated_on_the_same_volume() {
    let d = desired(RunState::Running, false, 2048);
    let mut world = ours(&d);
    world.volumes.push(volume("vol_a", "iad", None, "2026"));
    let p = plan(&d, &world);
    match p.actions.as_slice() {
        [Action::CreateMachine { request }] => {
            assert_eq!(request.config.mounts[0].volume, "vol_a")
        }
        other => panic!("unexpected plan {other:?}"),
    }
}

#[test]
fn volume_in_another_region_blocks_instead_of_moving_data() {
    let d = desired(RunState::Running, false, 2048);
    let mut world = ours(&d);
    world.volumes.push(volume("vol_a", "ams", None, "2026"));
    let p = plan(&d, &world);
    assert!(p.actions.is_empty());
    assert_eq!(
        p.blocked.map(|b| b.reason.as_str()),
        Some("RegionChangeUnsupported")
    );
}

#[test]
fn teardown_order_is_machine_volume_app() {
    let d = desired(RunState::Running, true, 2048);
    let mut world = ours(&d);
    world
        .volumes
        .push(volume("vol_a", "iad", Some("m1"), "2026"));
    world
        .machines
        .push(machine(&d, "m1", "vol_a", "started", false));
    let mut steps = Vec::new();
    let mut n = 0;
    for _ in 0..6 {
        let p = plan(&d, &world);
        if p.finalize {
            break;
        }
        for a in &p.actions {
            steps.push(a.step());
            apply(&mut world, &d, a, &mut n);
        }
    }
    assert_eq!(steps, ["DestroyMachine", "DeleteVolume", "DeleteApp"]);
}

/// A machine as Fly shows it while its host is unreachable: no config, metadata only in
/// `incomplete_config`.
fn unreachable(d: &Desired, id: &str) -> Machine {
    let mut m = machine(d, id, "vol_a", "started", false);
    let config = m.config.take().unwrap();
    m.incomplete_config = Some(serde_json::json!({"metadata": config.metadata}));
    m.host_status = Some("unreachable".into());
    m
}

#[test]
fn an_unreachable_host_is_waited_for_never_replaced() {
    for deleting in [false, true] {
        let d = with_token(desired(RunState::Running, deleting, 4096));
        let mut world = ours(&d);
        world
            .volumes
            .push(volume("vol_a", "iad", Some("m1"), "2026"));
        world.machines.push(unreachable(&d, "m1"));
        world.secrets.names = d.secrets.names().into_iter().map(String::from).collect();
        world.secrets.applied = Some((d.secrets.fingerprint().to_owned(), 1));
        let p = plan(&d, &world);
        assert!(p.actions.is_empty(), "deleting={deleting}: {p:?}");
        assert_eq!(p.wait.map(|w| w.reason.as_str()), Some("HostUnreachable"));
    }
}

#[test]
fn a_crash_loop_is_reported_but_a_new_config_still_applied() {
    let exit = openclaws_fly::types::MachineEvent {
        id: None,
        type_: "exit".into(),
        status: "stopped".into(),
        source: "flyd".into(),
        timestamp: 0,
        request: Some(serde_json::json!({"exit_event": {"exit_code": 1}})),
    };
    let d = desired(RunState::Running, false, 2048);
    let mut world = ours(&d);
    world
        .volumes
        .push(volume("vol_a", "iad", Some("m1"), "2026"));
    let mut m = machine(&d, "m1", "vol_a", "starting", false);
    m.events = vec![exit.clone(), exit];
    world.machines.push(m);
    let p = plan(&d, &world);
    assert!(p.actions.is_empty());
    assert_eq!(p.wait.map(|w| w.reason.as_str()), Some("CrashLooping"));
    let grown = desired(RunState::Running, false, 4096);
    let p = plan(&grown, &world);
    assert!(
        matches!(p.actions.as_slice(), [Action::UpdateMachine { .. }]),
        "{p:?}"
    );
}

#[test]
fn teardown_without_the_app_still_removes_our_dns_record() {
    let d = desired(RunState::Running, true, 2048);
    let mark = openclaws_dns::ownership_comment(&d.uid.to_string());
    let mut world = Observed::empty();
    world.dns_records.push(openclaws_dns::DnsRecord {
        id: "r1".into(),
        type_: "CNAME".into(),
        name: d.hostname.clone(),
        content: format!("{}.fly.dev", d.app_name),
        comment: Some(mark),
    });
    let p = plan(&d, &world);
    assert!(
        matches!(p.actions.as_slice(), [Action::DeleteDnsRecord { id, .. }] if id == "r1"),
        "{p:?}"
    );
    world.dns_records[0].comment = None;
    assert!(plan(&d, &world).finalize, "someone else's record stays");
}
