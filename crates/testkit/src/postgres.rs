//! A throwaway PostgreSQL server from the system's binaries, for `dev` and the test suite.
//! It lives in a temporary directory, listens on 127.0.0.1 on a free port, and is stopped and
//! deleted when dropped.

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

/// A running throwaway server.
pub struct ThrowawayPostgres {
    child: Child,
    dir: PathBuf,
    url: String,
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
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_owner(&mut postgres, owner);
        let child = postgres.spawn().map_err(|e| step("start postgres", e))?;
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let server = Self { child, dir, url };
        server.wait_ready(Duration::from_secs(30)).await?;
        Ok(server)
    }

    /// `postgres://…` URL of the `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
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
        // SIGINT is PostgreSQL's "fast shutdown".
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
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
