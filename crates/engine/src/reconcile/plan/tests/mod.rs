//! The planner against a tiny in-memory model of Fly: from any starting world, repeatedly
//! planning and applying must converge, and must never take a forbidden step. This module holds
//! the model (worlds and how each action changes them); the tests are grouped by concern.

mod adoption;
mod channel_properties;
mod gateway_side;
mod machine_side;
mod properties;

use super::*;
use crate::reconcile::desired::{FleetSettings, MACHINE_NAME, VOLUME_NAME};
use crate::reconcile::world::AppObservation;
use openclaws_fly::types::{App, Machine, Volume};
use openclaws_model::{InstanceSpec, RunState};
use uuid::Uuid;

fn desired(run_state: RunState, deleting: bool, memory_mb: u32) -> Desired {
    let mut spec: InstanceSpec =
        serde_json::from_value(serde_json::json!({"customerId": "c", "region": "iad"})).unwrap();
    spec.run_state = run_state;
    spec.guest.memory_mb = memory_mb;
    Desired::from_spec(
        Uuid::from_u128(7),
        "acme",
        3,
        &spec,
        deleting,
        &FleetSettings {
            app_prefix: "oc-".into(),
            base_domain: "openclaws.biz".into(),
            machine_stuck_after: std::time::Duration::from_secs(300),
            manage_dns: false,
            gateway: crate::reconcile::desired::GatewayPlacement::without_checks(),
            public_url: Default::default(),
        },
    )
}

/// A running instance's desired state, for the planners' unit tests elsewhere.
pub(crate) fn desired_for_tests() -> Desired {
    desired(RunState::Running, false, 2048)
}

fn with_token(d: Desired) -> Desired {
    let secrets = crate::reconcile::secrets::DesiredSecrets::new(
        [("OPENCLAW_GATEWAY_TOKEN".to_owned(), "token".to_owned())].into(),
        &openclaws_model::secrets::SecretCipher::from_key([1; 32]),
    );
    d.with_secrets(secrets)
}

/// Our app with its public addresses.
fn ours(d: &Desired) -> Observed {
    Observed {
        app: app(d),
        ips: vec![
            ("v6".into(), "2a09::1".into()),
            ("shared_v4".into(), "1.2.3.4".into()),
        ],
        ..Observed::empty()
    }
}

fn app(d: &Desired) -> AppObservation {
    AppObservation::Ours(App {
        name: d.app_name.clone(),
        network: Some(d.network.clone()),
        ..Default::default()
    })
}

fn volume(id: &str, region: &str, attached: Option<&str>, created: &str) -> Volume {
    Volume {
        id: id.into(),
        name: VOLUME_NAME.into(),
        state: "created".into(),
        size_gb: 1,
        region: region.into(),
        attached_machine_id: attached.map(String::from),
        created_at: created.into(),
        ..Default::default()
    }
}

fn machine(d: &Desired, id: &str, volume: &str, state: &str, drifted: bool) -> Machine {
    let mut config = d.machine_config(volume);
    if drifted {
        config.image = "someone/else:latest".into();
    }
    Machine {
        id: id.into(),
        name: MACHINE_NAME.into(),
        state: state.into(),
        region: "iad".into(),
        instance_id: format!("v-{id}"),
        created_at: format!("2026-01-01T00:00:0{}Z", id.len() % 10),
        config: Some(config),
        ..Default::default()
    }
}

/// Applies an action the way Fly would, with transient states settled at once.
fn apply(world: &mut Observed, d: &Desired, action: &Action, next_id: &mut u32) {
    *next_id += 1;
    let id = format!("n{next_id}");
    match action {
        Action::RestartMachine { .. }
        | Action::PatchGatewayConfig { .. }
        | Action::DeliverProxyToken { .. }
        | Action::DeliverChannelSecret { .. }
        | Action::ConfigureChannels { .. }
        | Action::RemoveChannel { .. }
        | Action::PairController { .. }
        | Action::ApprovePairing { .. }
        | Action::ExpireApproval { .. }
        | Action::DecideChannelPairing(_) => {
            unreachable!("these worlds have no gateway checks: {action:?}")
        }
        Action::CreateApp { .. } => world.app = app(d),
        Action::AssignIp { kind } => world.ips.push((kind.clone(), id.clone())),
        Action::AddCertificate { hostname } => {
            world.certificate = Some(openclaws_fly::types::CertificateDetail {
                hostname: hostname.clone(),
                status: "active".into(),
                ..Default::default()
            })
        }
        Action::DeleteCertificate { .. } => world.certificate = None,
        Action::CreateDnsRecord { record } => world.dns_records.push(openclaws_dns::DnsRecord {
            id: id.clone(),
            ..record.clone()
        }),
        Action::UpdateDnsRecord { id, record } => world
            .dns_records
            .iter_mut()
            .filter(|r| &r.id == id)
            .for_each(|r| r.content = record.content.clone()),
        Action::DeleteDnsRecord { id, .. } => world.dns_records.retain(|r| &r.id != id),
        Action::ReleaseIp { ip } => world.ips.retain(|(_, i)| i != ip),
        Action::SetSecrets { write } => {
            for (k, v) in &write.values {
                if v.is_some() {
                    world.secrets.names.insert(k.clone());
                } else {
                    world.secrets.names.remove(k);
                }
            }
            world.secrets.applied = Some((write.fingerprint.clone(), *next_id as i64));
        }
        Action::CreateVolume { request } => world.volumes.push(Volume {
            size_gb: request.size_gb,
            ..volume(&format!("vol_{id}"), &request.region, None, "2026-02-01")
        }),
        Action::ExtendVolume { id, size_gb } => world
            .volumes
            .iter_mut()
            .filter(|v| &v.id == id)
            .for_each(|v| v.size_gb = *size_gb),
        Action::CreateMachine { request } => {
            let vol = request.config.mounts[0].volume.clone();
            assert!(
                world.volumes.iter().any(|v| v.id == vol),
                "machine on a missing volume"
            );
            let state = if request.skip_launch == Some(true) {
                "stopped"
            } else {
                "started"
            };
            let mut m = machine(d, &id, &vol, state, false);
            m.config = Some(request.config.clone());
            world
                .volumes
                .iter_mut()
                .filter(|v| v.id == vol)
                .for_each(|v| v.attached_machine_id = Some(id.clone()));
            world.machines.push(m);
        }
        Action::UpdateMachine { id, request, .. } => {
            for m in world.machines.iter_mut().filter(|m| &m.id == id) {
                m.config = Some(request.config.clone());
                m.state = if request.skip_launch == Some(true) {
                    "stopped"
                } else {
                    "started"
                }
                .into();
            }
        }
        Action::StartMachine { id } => world
            .machines
            .iter_mut()
            .filter(|m| &m.id == id)
            .for_each(|m| m.state = "started".into()),
        Action::StopMachine { id } => world
            .machines
            .iter_mut()
            .filter(|m| &m.id == id)
            .for_each(|m| m.state = "stopped".into()),
        Action::DestroyMachine { id, .. } | Action::RecoverStuckMachine { id, .. } => {
            world.machines.retain(|m| &m.id != id);
            world
                .volumes
                .iter_mut()
                .filter(|v| v.attached_machine_id.as_ref() == Some(id))
                .for_each(|v| v.attached_machine_id = None);
        }
        Action::DeleteVolume { id } => {
            let v = world
                .volumes
                .iter()
                .find(|v| &v.id == id)
                .expect("deleting a volume that exists");
            assert!(
                v.attached_machine_id.is_none() || d.deleting,
                "deleted an attached volume outside teardown"
            );
            world.volumes.retain(|v| &v.id != id);
        }
        Action::DeleteApp { .. } => {
            assert!(
                world.machines.is_empty() && world.volumes.is_empty(),
                "app deleted before its contents"
            );
            *world = Observed::empty();
        }
    }
}

/// Settles transient machine states, as time passing would.
fn settle(world: &mut Observed) {
    for m in &mut world.machines {
        m.state = match m.state.as_str() {
            "created" | "starting" | "replacing" => "started",
            "stopping" => "stopped",
            other => other,
        }
        .into();
    }
    let gone: Vec<String> = world
        .machines
        .iter()
        .filter(|m| m.state == "destroying")
        .map(|m| m.id.clone())
        .collect();
    world.machines.retain(|m| m.state != "destroying");
    for v in &mut world.volumes {
        if v.attached_machine_id
            .as_ref()
            .is_some_and(|id| gone.contains(id))
        {
            v.attached_machine_id = None;
        }
    }
}
