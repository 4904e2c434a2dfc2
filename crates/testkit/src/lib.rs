//! The test kit: a throwaway PostgreSQL, the workspace's binaries, and the whole system
//! (database, Fly simulator, controller) started for tests and for `make run`. Only tests and
//! development tools depend on it; nothing in the production binary does.

pub mod dev;
pub mod postgres;

use std::path::PathBuf;

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
