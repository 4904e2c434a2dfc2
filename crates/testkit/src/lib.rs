//! The test kit: a throwaway PostgreSQL, the workspace's binaries, and the whole system
//! (database, Fly simulator, controller) started for tests, the fleet bench and `make run`, with
//! the clients the tests drive it through, and the seeded chaos harness (`make chaos`). Only
//! tests, benches and development tools depend on it; nothing in the production binary does.

#![warn(missing_docs)]

pub mod anthropic;
pub mod api;
pub mod chaos;
pub mod composio;
pub mod db;
pub mod dev;
pub mod devices;
pub mod ingest;
pub mod legacy;
pub mod load;
pub mod openclaw;
pub mod pgbouncer;
pub mod pgwire;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod releases;
pub mod sim;
pub mod stack;
pub mod telegram;
pub mod watch;
pub mod webhooks;

use std::path::{Path, PathBuf};

/// The workspace's root (holding `scripts/`, `dashboards/`, `crds/`), found from this crate's
/// manifest directory (`crates/testkit`): the kit's helpers resolve the same files whichever
/// package's tests call them.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit sits two levels below the workspace root")
        .to_path_buf()
}

/// Cargo's temporary directory for tests (`<target>/tmp`, what `CARGO_TARGET_TMPDIR` names for
/// integration tests, which a library does not get), found from the running executable: the
/// nearest ancestor holding cargo's `CACHEDIR.TAG` is the target directory, wherever
/// `CARGO_TARGET_DIR` put it.
pub fn target_tmp_dir() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join("tmp");
    std::fs::create_dir_all(&dir).expect("create the target's tmp directory");
    dir
}

/// The path of a binary built in this workspace (`openclaws-controller`, `fly-sim`), found next
/// to the running executable: tests run from `target/<profile>/deps`, tools from
/// `target/<profile>`. `make run` and `make test` build every binary first.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .collect();
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{name} is not built (looked at {candidates:?}); run `cargo build --workspace --bins` \
                 (make run and make test do)"
            )
        })
}
