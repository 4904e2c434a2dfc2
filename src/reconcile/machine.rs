//! Choosing among our machines, and how long to wait for one in a transient state.

use std::time::Duration;

use crate::fly::types::Machine;

/// The machine the instance keeps: one mounting `volume_id`, preferring a running one, then the
/// newest. `None` when no machine mounts it.
pub fn keeper<'a>(machines: &'a [Machine], volume_id: &str) -> Option<&'a Machine> {
    machines
        .iter()
        .filter(|m| mounts(m, volume_id))
        .max_by_key(|m| (m.state == "started", m.created_at.clone(), m.id.clone()))
}

/// Whether the machine mounts the volume.
pub fn mounts(machine: &Machine, volume_id: &str) -> bool {
    machine
        .config
        .as_ref()
        .is_some_and(|c| c.mounts.iter().any(|m| m.volume == volume_id))
}

/// When a machine in a transient state is expected to have settled (Fly's typical latencies).
pub fn settle_time(state: &str) -> Duration {
    match state {
        "created" | "creating" => Duration::from_millis(1500),
        "starting" | "restarting" => Duration::from_millis(1000),
        "stopping" | "suspending" => Duration::from_millis(1500),
        "replacing" | "updating" => Duration::from_millis(2000),
        "destroying" => Duration::from_millis(2000),
        _ => Duration::from_millis(1000),
    }
}
