//! The pinned OpenClaw for the tests that boot the real gateway.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};

/// Installs the pinned OpenClaw (`scripts/install-openclaw.sh`: idempotent, quiet and offline
/// when already installed) and returns its `bin/openclaw` wrapper. The script runs once per test
/// process; every later call gets the same path.
pub fn install_openclaw() -> PathBuf {
    static WRAPPER: OnceLock<PathBuf> = OnceLock::new();
    WRAPPER.get_or_init(|| run_install_script(None)).clone()
}

/// The pinned OpenClaw's wrapper when it is installed already (`scripts/install-openclaw.sh
/// --check`: installs nothing), for benches that skip rather than download it.
pub fn installed_openclaw() -> Option<PathBuf> {
    let script = crate::workspace_root().join("scripts/install-openclaw.sh");
    let output = Command::new(&script)
        .arg("--check")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// The previous OpenClaw release `make openclaw` also installs: what upgrade tests start from
/// (the simulator runs an image tagged with it on this install).
pub const PREVIOUS_OPENCLAW_VERSION: &str = "2026.9.5";

/// Installs OpenClaw `version` beside the pinned one (same script and cache) and returns its
/// wrapper; once per version and test process.
pub fn install_openclaw_version(version: &str) -> PathBuf {
    static WRAPPERS: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut wrappers = WRAPPERS.lock().unwrap_or_else(|e| e.into_inner());
    wrappers
        .entry(version.to_owned())
        .or_insert_with(|| run_install_script(Some(version)))
        .clone()
}

fn run_install_script(version: Option<&str>) -> PathBuf {
    let script = crate::workspace_root().join("scripts/install-openclaw.sh");
    let mut command = Command::new(&script);
    if let Some(version) = version {
        command.env("OPENCLAWS_OPENCLAW_VERSION", version);
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/install-openclaw.sh");
    assert!(
        output.status.success(),
        "scripts/install-openclaw.sh failed ({}); see its messages above",
        output.status
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Real gateways one test process boots and drives at once. Each takes about 1 GB and most of a
/// core while it boots, so on a 2-core machine a third would only slow the others past their
/// deadlines; the tests that only wait on the simulator meanwhile run many at a time.
const GATEWAYS_AT_ONCE: usize = 2;

/// Gateways running now in this process, guarded for [`gateway_slot`].
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Leave to run one real gateway: waits (blocking the calling test's thread, before it starts
/// anything) while [`GATEWAYS_AT_ONCE`] are running. Hold it for as long as the gateway runs.
#[must_use = "the slot is given back when it is dropped"]
pub fn gateway_slot() -> GatewaySlot {
    let (count, freed) = &RUNNING;
    let mut running = count.lock().unwrap_or_else(|e| e.into_inner());
    while *running >= GATEWAYS_AT_ONCE {
        running = freed.wait(running).unwrap_or_else(|e| e.into_inner());
    }
    *running += 1;
    GatewaySlot(())
}

/// A running gateway's place among [`GATEWAYS_AT_ONCE`]; given back when dropped.
#[derive(Debug)]
pub struct GatewaySlot(());

impl Drop for GatewaySlot {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        *count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}
