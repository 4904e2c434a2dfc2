//! Choosing among our machines, and how long to wait for one in a transient state.

use std::time::Duration;

use openclaws_fly::types::Machine;

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

/// A machine whose process keeps exiting: how many exits since it was last created or updated
/// (events are newest first), and the last exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct CrashLoop {
    /// Exits not asked for since the last launch or update.
    pub exits: usize,
    /// The newest exit's code, when Fly reported one.
    pub last_exit_code: Option<i64>,
}

/// Whether the machine is crash-looping: not running, and its process exited on its own at
/// least twice since its last launch or update. Fly's restart policy brings it back each time,
/// so there is nothing to do but report it (recreating it would not fix an image or config).
pub fn crash_loop(machine: &Machine) -> Option<CrashLoop> {
    if machine.state == "started" {
        return None;
    }
    let mut exits = 0;
    let mut last_exit_code = None;
    for event in &machine.events {
        if matches!(event.type_.as_str(), "launch" | "update") {
            break;
        }
        let exit = event
            .request
            .as_ref()
            .and_then(|r| r.get("exit_event"))
            .filter(|e| e.get("requested_stop").and_then(|v| v.as_bool()) != Some(true));
        if event.type_ == "exit" && exit.is_some() {
            exits += 1;
            if last_exit_code.is_none() {
                last_exit_code = exit
                    .and_then(|e| e.get("exit_code"))
                    .and_then(|c| c.as_i64());
            }
        }
    }
    (exits >= 2).then_some(CrashLoop {
        exits,
        last_exit_code,
    })
}

/// A sentence for status and events about a crash-looping machine.
pub fn describe_crash_loop(id: &str, crash: &CrashLoop) -> String {
    let code = crash
        .last_exit_code
        .map_or_else(|| "unknown".to_owned(), |c| c.to_string());
    format!(
        "machine {id} keeps crashing: its process exited {} times since it was last deployed (last exit code {code}); Fly restarts it",
        crash.exits
    )
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

    fn exit(code: i64) -> openclaws_fly::types::MachineEvent {
        openclaws_fly::types::MachineEvent {
            id: None,
            type_: "exit".into(),
            status: "stopped".into(),
            source: "flyd".into(),
            timestamp: 0,
            request: Some(serde_json::json!({
                "exit_event": {"exit_code": code, "requested_stop": false}
            })),
        }
    }

    fn event(type_: &str) -> openclaws_fly::types::MachineEvent {
        openclaws_fly::types::MachineEvent {
            id: None,
            type_: type_.into(),
            status: "started".into(),
            source: "user".into(),
            timestamp: 0,
            request: None,
        }
    }

    #[test]
    fn repeated_exits_since_the_last_deploy_are_a_crash_loop() {
        let mut m = machine("starting", "2026-01-01T00:00:00Z");
        m.events = vec![exit(3), event("start"), exit(1), event("launch"), exit(9)];
        let crash = crash_loop(&m).expect("a crash loop");
        assert_eq!(crash.exits, 2, "only exits since the launch count");
        assert_eq!(crash.last_exit_code, Some(3), "the newest exit");
        assert!(describe_crash_loop("m", &crash).contains("exited 2 times"));
        m.state = "started".into();
        assert_eq!(crash_loop(&m), None, "running again");
        let mut once = machine("starting", "2026-01-01T00:00:00Z");
        once.events = vec![exit(1), event("update"), exit(1)];
        assert_eq!(crash_loop(&once), None, "one crash is not a loop");
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
