//! Choosing among our volumes: which one the instance keeps, which are leftovers of a crash.

use openclaws_fly::types::{Machine, Volume};

/// The volume the instance keeps: the one our machine mounts, else the oldest in the region.
/// `None` when no volume of ours exists in the desired region.
pub fn keeper<'a>(volumes: &'a [Volume], machines: &[Machine], region: &str) -> Option<&'a Volume> {
    let mounted: Vec<&str> = machines
        .iter()
        .filter_map(|m| m.config.as_ref())
        .flat_map(|c| c.mounts.iter().map(|mnt| mnt.volume.as_str()))
        .collect();
    volumes
        .iter()
        .filter(|v| v.region == region)
        .min_by_key(|v| {
            (
                !mounted.contains(&v.id.as_str()),
                v.attached_machine_id.is_none(),
                v.created_at.clone(),
                v.id.clone(),
            )
        })
}

/// Extra volumes safe to delete: ours, in the region, not the keeper, attached to nothing.
/// Volumes elsewhere are never deleted outside teardown (they may hold a customer's data).
pub fn extras<'a>(volumes: &'a [Volume], keeper: &Volume) -> Vec<&'a Volume> {
    volumes
        .iter()
        .filter(|v| {
            v.id != keeper.id && v.region == keeper.region && v.attached_machine_id.is_none()
        })
        .collect()
}
