//! A throwaway PostgreSQL server from the system's binaries, for `dev`, the test suite and the
//! chaos harness. It lives in a temporary directory, listens on 127.0.0.1 on a free port, can be
//! stopped and started again on the same port and data (the chaos harness takes the database
//! away from running controllers), and is stopped and deleted when dropped.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// No `initdb` and `postgres` binaries on this machine.
    #[error("no PostgreSQL server binaries found (looked in $PG_BIN, /usr/lib/postgresql/*/bin and PATH); install the `postgresql` package (make does this)")]
    NotInstalled,
    /// Running as root without the `postgres` user to run the server as.
    #[error(
        "running as root needs the `postgres` system user (the postgresql package creates it)"
    )]
    NoPostgresUser,
    /// A step of setting up or starting the server failed.
    #[error("{step} failed: {detail}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// The server did not accept connections in time.
    #[error("PostgreSQL did not accept connections within {0:?}")]
    Timeout(Duration),
}

/// A throwaway server (running unless [`ThrowawayPostgres::stop`] stopped it).
pub struct ThrowawayPostgres {
    child: Option<Child>,
    dir: PathBuf,
    url: String,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
}

/// How [`ThrowawayPostgres::stop`] stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// SIGINT, PostgreSQL's "fast shutdown": clients are disconnected, the cluster is checkpointed.
    Fast,
    /// SIGQUIT, "immediate shutdown": every process exits at once and the next start recovers
    /// from the write-ahead log, as after a crash.
    Immediate,
}

impl ThrowawayPostgres {
    /// Initialises a cluster in a new temporary directory and starts it.
    pub async fn start() -> Result<Self, PostgresError> {
        let bin = find_bin_dir().ok_or(PostgresError::NotInstalled)?;
        let owner = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(PostgresError::NoPostgresUser)?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let dir =
            std::env::temp_dir().join(format!("openclaws-pg-{}", uuid::Uuid::new_v4().simple()));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).map_err(|e| step("create data dir", e))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| step("chown data dir", e))?;
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_owner(&mut initdb, owner);
        let out = initdb.output().map_err(|e| step("initdb", e))?;
        if !out.status.success() {
            return Err(step("initdb", String::from_utf8_lossy(&out.stderr)));
        }
        let port = free_port().map_err(|e| step("find a free port", e))?;
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let mut server = Self {
            child: None,
            dir,
            url,
            bin,
            port,
            owner,
        };
        server.start_again().await?;
        Ok(server)
    }

    /// `postgres://…` URL of the `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the server is running (not stopped by [`ThrowawayPostgres::stop`]).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server and waits for it to exit; the data directory and port stay for
    /// [`ThrowawayPostgres::start_again`]. A stopped server stays stopped.
    pub fn stop(&mut self, mode: StopMode) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let signal = match mode {
            StopMode::Fast => nix::sys::signal::Signal::SIGINT,
            StopMode::Immediate => nix::sys::signal::Signal::SIGQUIT,
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        let _ = child.wait();
    }

    /// Starts the server (again) on its port and data directory and waits until it accepts
    /// connections; a running server is left as it is.
    pub async fn start_again(&mut self) -> Result<(), PostgresError> {
        if self.child.is_some() {
            return Ok(());
        }
        let data = self.dir.join("data");
        let mut postgres = Command::new(self.bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                // Fast but not lossy where tests look: without fsync a commit survives any stop of
                // the server (the OS keeps the WAL), but it must be written before it is
                // acknowledged (synchronous_commit stays on), or an immediate stop (SIGQUIT, as
                // the chaos harness does) loses acknowledged writes (seen: chaos seed 12).
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_owner(&mut postgres, self.owner);
        self.child = Some(postgres.spawn().map_err(|e| step("start postgres", e))?);
        self.wait_ready(Duration::from_secs(30)).await
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), PostgresError> {
        let started = Instant::now();
        loop {
            if let Ok(pool) = sqlx::PgPool::connect(&self.url).await {
                pool.close().await;
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(PostgresError::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        self.stop(StopMode::Fast);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn step(step: &'static str, e: impl std::fmt::Display) -> PostgresError {
    PostgresError::Step {
        step,
        detail: e.to_string(),
    }
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
        // Children must not inherit root's HOME/working dir restrictions.
        cmd.current_dir("/");
    }
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The directory holding `initdb` and `postgres`: `$PG_BIN`, the newest Debian version, or PATH.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").exists() && d.join("postgres").exists())
    })
}
