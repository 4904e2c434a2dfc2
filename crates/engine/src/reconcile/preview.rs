//! The plan preview: what the next reconcile would do, computed without side effects.
//!
//! The API never calls Fly, so the preview plans from the world the last reconcile recorded
//! (`instances.observed`, written with its status) and the desired state built from the current
//! spec exactly as the engine builds it ([`super::DesiredInputs`], [`SecretsDraft`]), with the
//! same pure planner. Nothing is written: a gateway token or an LLM proxy token the reconcile
//! would create is stood in for, so the preview shows the secrets write it causes.
//!
//! The preview shows the first round of steps: later rounds depend on what those steps return.

use chrono::{DateTime, Utc};
use openclaws_store::Conn;

use super::desired::Desired;
use super::plan::{plan, Plan};
use super::secrets::{DraftInput, SecretsDraft};
use super::world::Observed;
use super::DesiredInputs;
use openclaws_model::secrets::SecretCipher;
use openclaws_store::secrets::{get_all_plaintext, SecretStoreError};
use openclaws_store::status as status_store;
use openclaws_store::{InstanceRecord, StoreError};

/// Errors that stop a preview (the database or the stored secrets; never Fly, never the caller).
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// Reading the row or its snapshot failed, or the stored spec is malformed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored secret could not be read or decrypted.
    #[error(transparent)]
    Secrets(#[from] SecretStoreError),
}

/// What the next reconcile would do, and what the preview is based on.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The plan: actions, a wait or a block.
    pub plan: Plan,
    /// The next reconcile looks at the gateway itself (health, pairing, owned config) before it
    /// decides the gateway-side steps; those shown come from the last recorded look, if any.
    pub look_at_gateway: bool,
    /// When the world planned from was read; `None` without a recorded snapshot.
    pub observed_at: Option<DateTime<Utc>>,
    /// `spec.paused`: the controller makes no change until it is false.
    pub paused: bool,
    /// Deletion was requested: the plan is the teardown.
    pub deleting: bool,
    /// Facts a reader needs to read the plan right (no snapshot yet, values to be created).
    pub notes: Vec<String>,
}

impl Preview {
    /// Nothing to do, nothing to wait for, nothing blocked.
    pub fn converged(&self) -> bool {
        self.plan.is_converged()
    }
}

/// Previews the next reconcile of `record`. Reads the row's secrets and snapshot through `db`
/// (a transaction's connection previews a write before it commits, or instead: a dry run);
/// writes nothing and calls nothing outside the database.
pub async fn preview(
    db: &mut Conn<'_>,
    cipher: &SecretCipher,
    inputs: &DesiredInputs,
    record: &InstanceRecord,
    now: DateTime<Utc>,
) -> Result<Preview, PreviewError> {
    let spec = record.spec()?;
    let deleting = record.deletion_timestamp.is_some();
    let mut notes = Vec::new();
    if spec.paused && deleting {
        notes.push(
            "spec.paused is true, but deletion overrides it: the teardown goes ahead".to_owned(),
        );
    } else if spec.paused {
        notes.push(
            "spec.paused is true: reconciling is suspended and none of this happens until \
             spec.paused is false"
                .to_owned(),
        );
    }
    let mut desired = Desired::from_spec(
        record.uid,
        &record.name,
        record.generation,
        &spec,
        deleting,
        &inputs.settings,
    );
    let adoption = openclaws_store::adoptions::get(&mut *db, record.uid).await?;
    desired.adoption = adoption.and_then(|row| super::adopt::state_of(&row, &desired.app_name));
    if desired.adoption == Some(super::desired::AdoptionState::Claimed) {
        notes.push(format!(
            "app {} is claimed for adoption: the next reconcile checks its layout before \
             changing anything (docs/adoption.md)",
            desired.app_name
        ));
    }
    if !deleting {
        let stored = get_all_plaintext(&mut *db, cipher, record.uid).await?;
        let draft = SecretsDraft::build(
            &stored,
            DraftInput {
                uid: record.uid,
                spec: &spec,
                stored_token_rotation: record.gateway_token_rotation,
                proxy_token: desired.proxy_token,
                inputs,
                now,
            },
        );
        notes.extend(secrets_notes(&draft, spec.gateway_token_rotation));
        desired.set_secrets(draft.finish_preview(cipher));
    }
    let (mut observed, observed_at) = recorded_world(db, record, &mut notes).await?;
    // As the engine does after observing: our bookkeeping of the last secrets write.
    observed.secrets.applied = record
        .fly_secrets_fingerprint
        .clone()
        .zip(record.fly_secrets_version);
    let (plan, look_at_gateway) = plan_from(&desired, observed);
    if plan.finalize {
        notes.push("teardown is complete: the next reconcile removes the instance".to_owned());
    }
    Ok(Preview {
        plan,
        look_at_gateway,
        observed_at,
        paused: spec.paused,
        deleting,
        notes,
    })
}

/// What the reconcile would create that the preview only stands in for.
fn secrets_notes(draft: &SecretsDraft, rotation: u32) -> Vec<String> {
    let mut notes = Vec::new();
    if draft.gateway_token_missing {
        notes.push(format!(
            "no gateway token is stored for gatewayTokenRotation {rotation}: the reconcile \
             generates one and sets the app secrets"
        ));
    }
    if draft.proxy_token_missing {
        notes.push(
            "no current LLM proxy token is stored: the reconcile mints one and puts it into \
             the gateway's secret store (no restart)"
                .to_owned(),
        );
    }
    notes
}

/// The world the last reconcile recorded, or an empty one (with a note saying why).
async fn recorded_world(
    db: &mut Conn<'_>,
    record: &InstanceRecord,
    notes: &mut Vec<String>,
) -> Result<(Observed, Option<DateTime<Utc>>), PreviewError> {
    let Some(snapshot) = status_store::load_snapshot(&mut *db, record.uid).await? else {
        notes.push(
            "no reconcile has recorded what it observed yet: planned from an empty world \
             (as if nothing existed at Fly)"
                .to_owned(),
        );
        return Ok((Observed::empty(), None));
    };
    match serde_json::from_value::<Observed>(snapshot.world) {
        Ok(world) => Ok((world, Some(snapshot.at))),
        Err(e) => {
            tracing::warn!(instance = %record.name, error = %e, "unreadable observed snapshot");
            notes.push(
                "the recorded observation could not be read (written by another version?): \
                 planned from an empty world; the next reconcile records a new one"
                    .to_owned(),
            );
            Ok((Observed::empty(), None))
        }
    }
}

/// The engine's first round, without acting: plan from the Fly side of the world; when that asks
/// for a look at the gateway, plan again with the recorded look (the engine would take a fresh
/// one). The second value says whether a look was asked for.
pub fn plan_from(desired: &Desired, mut observed: Observed) -> (Plan, bool) {
    let recorded_look = observed.gateway.take();
    let first = plan(desired, &observed);
    if !first.look_at_gateway {
        return (first, false);
    }
    match recorded_look {
        Some(look) => {
            observed.gateway = Some(look);
            (plan(desired, &observed), true)
        }
        None => (first, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::desired::{FleetSettings, GatewayPlacement, VOLUME_NAME};
    use crate::reconcile::plan::Action;
    use crate::reconcile::world::{
        AppObservation, ControllerAccess, GatewayHealth, GatewayObservation, LiveConfig,
    };
    use openclaws_fly::types::{App, Machine, Volume};
    use openclaws_model::InstanceSpec;
    use uuid::Uuid;

    fn desired(memory_mb: u32, checks: bool) -> Desired {
        let mut spec: InstanceSpec =
            serde_json::from_value(serde_json::json!({"customerId": "c", "region": "iad"}))
                .unwrap();
        spec.guest.memory_mb = memory_mb;
        let mut gateway = GatewayPlacement::without_checks();
        gateway.checks = checks;
        let d = Desired::from_spec(
            Uuid::from_u128(7),
            "acme",
            3,
            &spec,
            false,
            &FleetSettings {
                app_prefix: "oc-".into(),
                base_domain: "openclaws.test".into(),
                machine_stuck_after: std::time::Duration::from_secs(300),
                manage_dns: false,
                gateway,
                public_url: Default::default(),
            },
        );
        d.with_secrets(crate::reconcile::secrets::DesiredSecrets::new(
            [("OPENCLAW_GATEWAY_TOKEN".to_owned(), "token".to_owned())].into(),
            &SecretCipher::from_key([1; 32]),
        ))
    }

    /// A converged world for `d`: app, addresses, secrets, volume and a started machine.
    fn world(d: &Desired) -> Observed {
        let now = Utc::now();
        let mut config = d.machine_config("vol_1");
        config
            .metadata
            .insert("fly_platform_version".into(), "v2".into());
        Observed {
            app: AppObservation::Ours(App {
                name: d.app_name.clone(),
                network: Some(d.network.clone()),
                ..Default::default()
            }),
            volumes: vec![Volume {
                id: "vol_1".into(),
                name: VOLUME_NAME.into(),
                state: "created".into(),
                size_gb: 1,
                region: "iad".into(),
                attached_machine_id: Some("m1".into()),
                ..Default::default()
            }],
            machines: vec![Machine {
                id: "m1".into(),
                name: "gateway".into(),
                state: "started".into(),
                region: "iad".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                config: Some(config),
                ..Default::default()
            }],
            observed_at: Some(now),
            secrets: crate::reconcile::world::ObservedSecrets {
                names: ["OPENCLAW_GATEWAY_TOKEN".to_owned()].into(),
                applied: Some((d.secrets.fingerprint().to_owned(), 1)),
            },
            ips: vec![
                ("v6".into(), "2a09::1".into()),
                ("shared_v4".into(), "1.2.3.4".into()),
            ],
            ..Observed::empty()
        }
    }

    fn look(pending: Vec<openclaws_gateway::protocol::PendingRequest>) -> GatewayObservation {
        GatewayObservation {
            health: GatewayHealth::Healthy,
            access: ControllerAccess::Paired,
            pending,
            channel_pairing: None,
            config: LiveConfig::Drifted(vec!["gateway.trustedProxies".into()]),
            proxy_token: Default::default(),
            channels: Default::default(),
            at: Utc::now(),
        }
    }

    #[test]
    fn a_snapshot_round_trips() {
        let d = desired(2048, true);
        let mut w = world(&d);
        w.gateway = Some(look(vec![openclaws_gateway::protocol::PendingRequest {
            request_id: "r1".into(),
            device_id: "dev".into(),
            display_name: Some("phone".into()),
            platform: None,
            client_id: None,
            client_mode: None,
            role: None,
            roles: vec![],
            scopes: vec!["operator.read".into()],
            remote_ip: None,
            is_repair: false,
            ts: 1,
        }]));
        w.app = AppObservation::Foreign {
            reason: "elsewhere".into(),
        };
        let json = serde_json::to_value(&w).unwrap();
        let back: Observed = serde_json::from_value(json).unwrap();
        assert_eq!(back, w);
        // Fields added later read as their empty value.
        let old: Observed = serde_json::from_value(serde_json::json!({"app": "Absent"})).unwrap();
        assert_eq!(old, Observed::empty());
    }

    #[test]
    fn a_spec_change_shows_the_update_and_nothing_else() {
        let before = desired(2048, false);
        let (p, look) = plan_from(&before, world(&before));
        assert!(p.is_converged() && !look, "{p:?}");
        let after = desired(4096, false);
        let (p, _) = plan_from(&after, world(&before));
        let steps: Vec<&str> = p.actions.iter().map(Action::step).collect();
        assert_eq!(steps, ["UpdateMachine"]);
    }

    #[test]
    fn gateway_steps_come_from_the_recorded_look() {
        let d = desired(2048, true);
        let without = world(&d);
        let (p, look_wanted) = plan_from(&d, without.clone());
        assert!(look_wanted && p.look_at_gateway && p.actions.is_empty());
        let mut with = without;
        with.gateway = Some(look(Vec::new()));
        let (p, look_wanted) = plan_from(&d, with);
        assert!(look_wanted && !p.look_at_gateway);
        let steps: Vec<&str> = p.actions.iter().map(Action::step).collect();
        assert_eq!(steps, ["PatchGatewayConfig"], "{p:?}");
    }
}
