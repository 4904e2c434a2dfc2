//! The pinned OpenClaw for the tests that boot the real gateway.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Installs the pinned OpenClaw (`scripts/install-openclaw.sh`: idempotent, quiet and offline
/// when already installed) and returns its `bin/openclaw` wrapper. The script runs once per test
/// process; every later call gets the same path.
pub fn install_openclaw() -> PathBuf {
    static WRAPPER: OnceLock<PathBuf> = OnceLock::new();
    WRAPPER.get_or_init(run_install_script).clone()
}

fn run_install_script() -> PathBuf {
    let script = crate::workspace_root().join("scripts/install-openclaw.sh");
    let output = Command::new(&script)
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
