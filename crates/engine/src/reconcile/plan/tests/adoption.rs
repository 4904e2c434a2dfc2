//! Adopted apps (`docs/adoption.md`): one machine update takes the web app's machine over on its
//! volume; a refused app is never touched; the web app's CNAME is kept and marked, not replaced.

use super::*;
use crate::reconcile::adopt::LEGACY_VOLUME_NAME;
use crate::reconcile::desired::AdoptionState;
use openclaws_dns::DnsRecord;

fn adopted(d: Desired) -> Desired {
    Desired {
        adoption: Some(AdoptionState::Adopted {
            volume_id: "vol_legacy".into(),
            machine_id: "m_legacy".into(),
        }),
        ..d
    }
}

/// The web app's machine on its volume, with the secrets already in place.
fn legacy_world(d: &Desired) -> Observed {
    let mut m = machine(d, "m_legacy", "vol_legacy", "started", true);
    if let Some(c) = m.config.as_mut() {
        c.metadata.clear();
        c.init = None;
    }
    let mut w = ours(d);
    w.volumes = vec![Volume {
        name: LEGACY_VOLUME_NAME.into(),
        ..volume("vol_legacy", "iad", Some("m_legacy"), "2025-01-01")
    }];
    w.machines = vec![m];
    w.secrets.names.insert("OPENCLAW_GATEWAY_TOKEN".into());
    w.secrets.applied = Some((d.secrets.fingerprint().to_owned(), 2));
    w
}

#[test]
fn the_web_apps_machine_is_taken_over_with_one_update_on_its_volume() {
    let d = adopted(with_token(desired(RunState::Running, false, 2048)));
    let p = plan(&d, &legacy_world(&d));
    assert_eq!(p.actions.len(), 1, "{:?}", p.actions);
    let Action::UpdateMachine { id, request, .. } = &p.actions[0] else {
        panic!("expected one machine update, got {:?}", p.actions);
    };
    assert_eq!(id, "m_legacy");
    assert_eq!(request.config, d.machine_config("vol_legacy"));
    let mut world = legacy_world(&d);
    world.machines[0].config = Some(request.config.clone());
    assert!(plan(&d, &world).is_converged(), "{:?}", plan(&d, &world));
}

#[test]
fn a_refused_app_is_blocked_and_never_touched() {
    let d = adopted(with_token(desired(RunState::Running, false, 2048)));
    let world = Observed {
        app: AppObservation::Refused {
            reason: "the app has 2 machines; the web app's layout has one".into(),
        },
        ..Observed::empty()
    };
    let p = plan(&d, &world);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let blocked = p.blocked.expect("blocked");
    assert_eq!(blocked.reason, Reason::AdoptionRefused);
    assert!(
        blocked.message.contains("2 machines"),
        "{}",
        blocked.message
    );
    let teardown = plan(
        &Desired {
            deleting: true,
            ..d
        },
        &world,
    );
    assert!(teardown.finalize && teardown.actions.is_empty());
}

fn public(d: Desired) -> Desired {
    Desired {
        endpoint_wanted: true,
        ..d
    }
}

fn web_app_record(d: &Desired) -> DnsRecord {
    DnsRecord {
        id: "rec_1".into(),
        type_: "CNAME".into(),
        name: d.hostname.clone(),
        content: format!("{}.fly.dev", d.app_name),
        comment: None,
    }
}

fn with_endpoint(d: &Desired, record: DnsRecord) -> Observed {
    let mut w = legacy_world(d);
    w.machines[0].config = Some(d.machine_config("vol_legacy"));
    w.certificate = Some(openclaws_fly::types::CertificateDetail {
        hostname: d.hostname.clone(),
        status: "active".into(),
        ..Default::default()
    });
    w.dns_records = vec![record];
    w
}

#[test]
fn the_web_apps_cname_is_kept_and_marked_not_replaced() {
    let d = public(adopted(with_token(desired(RunState::Running, false, 2048))));
    let p = plan(&d, &with_endpoint(&d, web_app_record(&d)));
    let [Action::UpdateDnsRecord { id, record }] = p.actions.as_slice() else {
        panic!("expected the record to be marked, got {:?}", p.actions);
    };
    assert_eq!(id, "rec_1");
    assert_eq!(record.content, web_app_record(&d).content);
    let mark = openclaws_dns::ownership_comment(&d.uid.to_string());
    assert_eq!(record.comment.as_deref(), Some(mark.as_str()));
    let marked = DnsRecord {
        comment: Some(mark),
        ..web_app_record(&d)
    };
    assert!(plan(&d, &with_endpoint(&d, marked)).is_converged());
}

#[test]
fn without_adoption_the_same_record_is_someone_elses() {
    let d = public(with_token(desired(RunState::Running, false, 2048)));
    let mut world = with_endpoint(&d, web_app_record(&d));
    world.volumes[0].name = VOLUME_NAME.into();
    world.machines[0].config = Some(d.machine_config("vol_legacy"));
    let p = plan(&d, &world);
    assert!(
        !p.actions.iter().any(|a| matches!(
            a,
            Action::UpdateDnsRecord { .. } | Action::DeleteDnsRecord { .. }
        )),
        "{:?}",
        p.actions
    );
}
