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

/// A machine whose process the kernel killed for running out of memory: not running, and the
/// newest exit since its last launch or update carries Fly's `exit_event.oom_killed`. Reported
/// on the first kill (not only once it loops): more memory is the only fix, so the sooner the
/// customer reads it the better.
#[derive(Debug, Clone, PartialEq)]
pub struct OomKill {
    /// Out-of-memory kills since the last launch or update.
    pub kills: usize,
    /// The machine's memory, from its config.
    pub memory_mb: Option<u32>,
}

/// Whether the machine's process was last stopped by the out-of-memory killer (see [`OomKill`]).
pub fn oom_kill(machine: &Machine) -> Option<OomKill> {
    if machine.state == "started" {
        return None;
    }
    let exits: Vec<&serde_json::Value> = machine
        .events
        .iter()
        .take_while(|e| !matches!(e.type_.as_str(), "launch" | "update"))
        .filter(|e| e.type_ == "exit")
        .filter_map(|e| e.request.as_ref().and_then(|r| r.get("exit_event")))
        .collect();
    let oom = |e: &serde_json::Value| e.get("oom_killed").and_then(|v| v.as_bool()) == Some(true);
    if !exits.first().is_some_and(|e| oom(e)) {
        return None;
    }
    Some(OomKill {
        kills: exits.iter().filter(|e| oom(e)).count(),
        memory_mb: machine
            .config
            .as_ref()
            .and_then(|c| c.guest.as_ref())
            .map(|g| g.memory_mb),
    })
}

/// A sentence for status and events about a machine killed for running out of memory.
pub fn describe_oom_kill(id: &str, oom: &OomKill) -> String {
    let memory = oom
        .memory_mb
        .map_or_else(|| "its memory".to_owned(), |mb| format!("its {mb} MB"));
    format!(
        "machine {id} ran out of memory: the kernel killed the gateway {} time(s) since it was last deployed for using more than {memory}; raise spec.guest.memoryMb (OpenClaw recommends 2048)",
        oom.kills
    )
}

/// Why a machine that is not running keeps failing, with a sentence for status and events:
/// out of memory (its own reason) before a generic crash loop.
pub fn failing(machine: &Machine) -> Option<(openclaws_model::conditions::Reason, String)> {
    if let Some(oom) = oom_kill(machine) {
        return Some((
            openclaws_model::conditions::Reason::OutOfMemory,
            describe_oom_kill(&machine.id, &oom),
        ));
    }
    crash_loop(machine).map(|crash| {
        (
            openclaws_model::conditions::Reason::CrashLooping,
            describe_crash_loop(&machine.id, &crash),
        )
    })
}

/// Environment variable that points the gateway at a config file elsewhere than its state
/// directory.
const CONFIG_PATH_ENV: &str = "OPENCLAW_CONFIG_PATH";

/// Why a machine's gateway would keep its state (or read its config) off the data volume: its
/// `OPENCLAW_STATE_DIR` missing (the gateway then uses `~/.openclaw` on the machine's root
/// filesystem) or not under a mount, or an `OPENCLAW_CONFIG_PATH` not under a mount. OpenClaw's
/// Fly guide: "State not persisting … the state dir is writing to the container filesystem
/// instead of the volume". `None` when the state is on a volume. Pure.
pub fn state_dir_problem(config: &openclaws_fly::types::MachineConfig) -> Option<String> {
    let on_volume = |dir: &str| {
        let dir = std::path::Path::new(dir);
        config
            .mounts
            .iter()
            .any(|m| dir.is_absolute() && dir.starts_with(&m.path))
    };
    let volume = config.mounts.first().map_or_else(
        || "no volume is mounted".to_owned(),
        |m| format!("the data volume is mounted at {}", m.path),
    );
    match config.env.get(openclaws_gateway::bundle::STATE_DIR_ENV) {
        None => {
            return Some(format!(
                "OPENCLAW_STATE_DIR is not set, so the gateway keeps its state in ~/.openclaw on the machine's own disk ({volume}); it is lost on every restart"
            ))
        }
        Some(dir) if !on_volume(dir) => {
            return Some(format!(
                "OPENCLAW_STATE_DIR is {dir}, not on the data volume ({volume}); the gateway's state is lost on every restart"
            ))
        }
        Some(_) => {}
    }
    config
        .env
        .get(CONFIG_PATH_ENV)
        .filter(|path| !on_volume(path))
        .map(|path| {
            format!("OPENCLAW_CONFIG_PATH is {path}, not on the data volume ({volume}); the gateway reads a config the controller does not seed")
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

    fn oom_exit() -> openclaws_fly::types::MachineEvent {
        let mut e = exit(137);
        e.request = Some(serde_json::json!({
            "exit_event": {"exit_code": 137, "oom_killed": true, "requested_stop": false}
        }));
        e
    }

    #[test]
    fn an_oom_kill_is_its_own_reason_with_the_memory_size() {
        let mut m = machine("starting", "2026-01-01T00:00:00Z");
        m.config = Some(openclaws_fly::types::MachineConfig {
            guest: Some(openclaws_fly::types::Guest {
                cpu_kind: "shared".into(),
                cpus: 2,
                memory_mb: 2048,
                extra: Default::default(),
            }),
            ..Default::default()
        });
        m.events = vec![oom_exit(), event("launch"), oom_exit()];
        let oom = oom_kill(&m).expect("an OOM kill");
        assert_eq!((oom.kills, oom.memory_mb), (1, Some(2048)));
        let (reason, message) = failing(&m).expect("failing");
        assert_eq!(reason, openclaws_model::conditions::Reason::OutOfMemory);
        assert!(message.contains("2048 MB"), "{message}");
        m.events = vec![oom_exit(), exit(1), oom_exit()];
        assert_eq!(
            failing(&m).map(|f| f.0),
            Some(openclaws_model::conditions::Reason::OutOfMemory)
        );
        m.events = vec![exit(1), oom_exit(), exit(1)];
        assert_eq!(oom_kill(&m), None, "the newest exit was not an OOM kill");
        assert_eq!(
            failing(&m).map(|f| f.0),
            Some(openclaws_model::conditions::Reason::CrashLooping)
        );
        m.events = vec![oom_exit()];
        m.state = "started".into();
        assert_eq!(failing(&m), None, "running again");
    }

    #[test]
    fn a_state_dir_off_the_volume_is_named() {
        use openclaws_fly::types::{MachineConfig, Mount};
        let mut config = MachineConfig {
            mounts: vec![Mount {
                volume: "vol_1".into(),
                path: "/data".into(),
                extra: Default::default(),
            }],
            ..Default::default()
        };
        let problem = state_dir_problem(&config).expect("unset is a problem");
        assert!(problem.contains("~/.openclaw"), "{problem}");
        config
            .env
            .insert("OPENCLAW_STATE_DIR".into(), "/data".into());
        assert_eq!(state_dir_problem(&config), None);
        config
            .env
            .insert("OPENCLAW_STATE_DIR".into(), "/data/state".into());
        assert_eq!(state_dir_problem(&config), None);
        config
            .env
            .insert("OPENCLAW_STATE_DIR".into(), "/database".into());
        let problem = state_dir_problem(&config).expect("a sibling path is not under /data");
        assert!(
            problem.contains("/database") && problem.contains("mounted at /data"),
            "{problem}"
        );
        config
            .env
            .insert("OPENCLAW_STATE_DIR".into(), "/data".into());
        config
            .env
            .insert("OPENCLAW_CONFIG_PATH".into(), "/root/openclaw.json".into());
        let problem = state_dir_problem(&config).expect("config off the volume");
        assert!(problem.contains("OPENCLAW_CONFIG_PATH"), "{problem}");
        config
            .env
            .insert("OPENCLAW_CONFIG_PATH".into(), "/data/openclaw.json".into());
        assert_eq!(state_dir_problem(&config), None);
        config.mounts.clear();
        assert!(state_dir_problem(&config).is_some(), "no volume at all");
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
