//! Choosing among our machines, and how long to wait for one in a transient state.

use std::time::Duration;

use crate::fly::types::Machine;

/// The machine the instance keeps: one mounting `volume_id` and not being destroyed, preferring
/// a running one, then the newest. `None` when no such machine exists.
pub fn keeper<'a>(machines: &'a [Machine], volume_id: &str) -> Option<&'a Machine> {
    machines
        .iter()
        .filter(|m| mounts(m, volume_id) && m.state != "destroying")
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

/// How long the machine has been in its transient state, when that is past the point where Fly
/// considers it wedged (`base` for start/stop/destroy, twice that for updates). `None` when it
/// is settled, not yet overdue, or its age is unknown.
pub fn stuck_for(
    machine: &Machine,
    now: Option<chrono::DateTime<chrono::Utc>>,
    base: Duration,
) -> Option<Duration> {
    if !machine.is_transient() {
        return None;
    }
    let since = chrono::DateTime::parse_from_rfc3339(&machine.updated_at).ok()?;
    let age = (now? - since.with_timezone(&chrono::Utc)).to_std().ok()?;
    let threshold = match machine.state.as_str() {
        "replacing" | "updating" => base * 2,
        _ => base,
    };
    (age > threshold).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(state: &str, updated_at: &str) -> Machine {
        Machine {
            id: "m".into(),
            state: state.into(),
            updated_at: updated_at.into(),
            ..Default::default()
        }
    }

    #[test]
    fn stuck_only_past_the_threshold_of_its_state() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let base = Duration::from_secs(300);
        let six_min_ago = "2026-01-01T00:04:00Z";
        assert!(stuck_for(&machine("starting", six_min_ago), Some(now), base).is_some());
        assert!(stuck_for(&machine("replacing", six_min_ago), Some(now), base).is_none());
        assert!(stuck_for(
            &machine("replacing", "2025-12-31T23:59:00Z"),
            Some(now),
            base
        )
        .is_some());
        assert!(stuck_for(&machine("started", six_min_ago), Some(now), base).is_none());
        assert!(stuck_for(&machine("starting", "not a time"), Some(now), base).is_none());
        assert!(stuck_for(&machine("starting", six_min_ago), None, base).is_none());
    }
}
