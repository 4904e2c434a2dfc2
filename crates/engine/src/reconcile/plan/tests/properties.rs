//! Properties over arbitrary worlds: planning and applying converges and never takes a
//! forbidden step.

use super::*;
use crate::reconcile::desired::{config_matches, META_INSTANCE_UID};
use proptest::prelude::*;

fn arb_world() -> impl Strategy<Value = (RunState, bool, u32, Observed)> {
    let states = prop::sample::select(vec![
        "started",
        "stopped",
        "created",
        "starting",
        "stopping",
        "replacing",
        "failed",
        "suspended",
        "destroying",
    ]);
    (
        prop::bool::ANY,
        prop::bool::ANY,
        prop::sample::select(vec![1024u32, 2048, 4096]),
        0..3usize,
        0..3usize,
        prop::collection::vec((0..3usize, states, prop::bool::ANY), 0..3),
    )
        .prop_map(
            |(stopped, deleting, memory, app_kind, volume_count, machines)| {
                let run_state = if stopped {
                    RunState::Stopped
                } else {
                    RunState::Running
                };
                let d = desired(run_state, deleting, memory);
                let mut world = Observed::empty();
                if app_kind > 0 {
                    world.app = app(&d);
                    for i in 0..volume_count {
                        world.volumes.push(volume(
                            &format!("vol_{i}"),
                            "iad",
                            None,
                            &format!("2026-01-0{i}"),
                        ));
                    }
                    for (i, (vol, state, drifted)) in machines.iter().enumerate() {
                        let vol_id = if world.volumes.is_empty() {
                            "vol_gone".to_owned()
                        } else {
                            world.volumes[vol % world.volumes.len()].id.clone()
                        };
                        let id = format!("m{i}");
                        if let Some(v) = world
                            .volumes
                            .iter_mut()
                            .find(|v| v.id == vol_id && v.attached_machine_id.is_none())
                        {
                            v.attached_machine_id = Some(id.clone());
                        }
                        world
                            .machines
                            .push(machine(&d, &id, &vol_id, state, *drifted));
                    }
                }
                (run_state, deleting, memory, world)
            },
        )
}

proptest! {
    #[test]
    fn converges_from_any_world((run_state, deleting, memory, world) in arb_world(), secrets in prop::bool::ANY) {
        let d = desired(run_state, deleting, memory);
        let d = if secrets { with_token(d) } else { d };
        let mut world = world;
        let mut next_id = 0;
        let mut converged = false;
        for _ in 0..30 {
            let p = plan(&d, &world);
            if p.finalize {
                prop_assert!(deleting);
                prop_assert!(p.actions.is_empty());
                converged = true;
                break;
            }
            if p.is_converged() {
                prop_assert!(!deleting);
                converged = true;
                break;
            }
            prop_assert!(p.blocked.is_none(), "blocked: {:?}", p.blocked);
            for a in &p.actions {
                apply(&mut world, &d, a, &mut next_id);
            }
            settle(&mut world);
        }
        prop_assert!(converged, "did not converge: {world:?}");
        if !deleting {
            prop_assert_eq!(world.machines.len(), 1);
            let m = &world.machines[0];
            let vol = &m.config.as_ref().unwrap().mounts[0].volume;
            prop_assert!(world.volumes.iter().any(|v| &v.id == vol));
            prop_assert_eq!(world.volumes.len(), 1, "extra volumes left: {:?}", world.volumes);
            prop_assert!(config_matches(m.config.as_ref().unwrap(), &d.machine_config(vol)));
            if run_state == RunState::Stopped {
                prop_assert!(["stopped", "suspended", "failed"].contains(&m.state.as_str()), "{}", m.state);
            } else {
                prop_assert_eq!(m.state.as_str(), "started");
            }
            prop_assert_eq!(m.metadata().unwrap().get(META_INSTANCE_UID), Some(&d.uid.to_string()));
            prop_assert!(crate::reconcile::secrets::in_sync(&d.secrets, &world.secrets));
            let mut kinds: Vec<&str> = world.ips.iter().map(|(k, _)| k.as_str()).collect();
            kinds.sort();
            prop_assert_eq!(kinds, ["shared_v4", "v6"]);
        }
    }
}
