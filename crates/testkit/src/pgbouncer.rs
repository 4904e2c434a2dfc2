//! A throwaway PgBouncer in transaction pool mode, the stand-in for Supabase's transaction
//! pooler (Supavisor on port 6543): between a client and PostgreSQL, it lends a server connection
//! for one transaction at a time, so prepared statements, `LISTEN`, session advisory locks and
//! `SET` do not outlive the transaction that made them. Tests put it in front of their database
//! to show the controller works there (`StackOptions::pooler`).
//!
//! It runs Debian's `pgbouncer` (`make test` installs it: `scripts/ensure-pgbouncer.sh`) on
//! 127.0.0.1 on a free port with its own configuration in a temporary directory, forwards every
//! database name to the same database on the upstream server, and is stopped and deleted when
//! dropped.

use sqlx::{Connection, Executor, Row};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Errors starting or asking PgBouncer.
#[derive(Debug, thiserror::Error)]
pub enum PgBouncerError {
    /// No `pgbouncer` binary on this machine.
    #[error("no pgbouncer binary found (looked at $PGBOUNCER_BIN, PATH and /usr/sbin); install the `pgbouncer` package (make test does: scripts/ensure-pgbouncer.sh)")]
    NotInstalled,
    /// The upstream URL is not one PgBouncer can be pointed at.
    #[error("the upstream URL {0:?} names no host, port or user")]
    Upstream(String),
    /// Running as root without the `postgres` user to run PgBouncer as (it refuses root).
    #[error("running as root needs the `postgres` system user to run pgbouncer as")]
    NoPostgresUser,
    /// A step of setting up or starting PgBouncer failed.
    #[error("{step} failed: {detail}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// PgBouncer did not accept connections in time.
    #[error("pgbouncer did not accept connections within {0:?} (its log: {1})")]
    Timeout(Duration, String),
    /// The admin console answered something unexpected.
    #[error("pgbouncer's admin console: {0}")]
    Admin(#[from] sqlx::Error),
}

/// How a throwaway PgBouncer pools.
#[derive(Debug, Clone)]
pub struct PoolerSettings {
    /// Server connections per database and user (`default_pool_size`): fewer than the clients'
    /// pools hold, so the tests see clients share them.
    pub pool_size: u32,
}

impl Default for PoolerSettings {
    fn default() -> Self {
        Self { pool_size: 4 }
    }
}

/// A running throwaway PgBouncer in transaction pool mode.
pub struct ThrowawayPgBouncer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    user: String,
    settings: PoolerSettings,
}

/// One line of `SHOW POOLS` (the counts the tests look at).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Client connections linked to a server connection or idle (`cl_active`).
    pub clients_active: i64,
    /// Client connections waiting for a server connection (`cl_waiting`).
    pub clients_waiting: i64,
    /// Server connections linked to a client (`sv_active`).
    pub servers_active: i64,
    /// Server connections idle and ready for a client (`sv_idle`).
    pub servers_idle: i64,
    /// Server connections idle but not yet checked (`sv_used`).
    pub servers_used: i64,
}

impl PoolCounts {
    /// Every server connection PgBouncer holds to PostgreSQL for the pool.
    pub fn servers(&self) -> i64 {
        self.servers_active + self.servers_idle + self.servers_used
    }
}

/// The totals of one database in `SHOW STATS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseStats {
    /// Transactions pooled (`total_xact_count`): each one borrowed a server connection.
    pub transactions: i64,
    /// Statements pooled (`total_query_count`).
    pub queries: i64,
}

impl ThrowawayPgBouncer {
    /// Starts PgBouncer in front of the server at `upstream` (a `postgres://user@host:port/…`
    /// URL whose server trusts the user, as the test servers do) and waits until it accepts
    /// connections.
    pub async fn start(upstream: &str, settings: PoolerSettings) -> Result<Self, PgBouncerError> {
        let bin = find_pgbouncer().ok_or(PgBouncerError::NotInstalled)?;
        let url =
            url::Url::parse(upstream).map_err(|_| PgBouncerError::Upstream(upstream.to_owned()))?;
        let host = url
            .host_str()
            .ok_or_else(|| PgBouncerError::Upstream(upstream.to_owned()))?;
        let user = match url.username() {
            "" => return Err(PgBouncerError::Upstream(upstream.to_owned())),
            user => user.to_owned(),
        };
        let upstream_port = url.port().unwrap_or(5432);
        // PgBouncer refuses to run as root: as root, it runs as the `postgres` system user.
        let owner = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(PgBouncerError::NoPostgresUser)?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!(
            "openclaws-pgbouncer-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| step("create its directory", e))?;
        let port = free_port().map_err(|e| step("find a free port", e))?;
        let config = dir.join("pgbouncer.ini");
        std::fs::write(dir.join("userlist.txt"), format!("\"{user}\" \"\"\n"))
            .map_err(|e| step("write userlist.txt", e))?;
        std::fs::write(
            &config,
            config_text(&dir, host, upstream_port, port, &user, &settings),
        )
        .map_err(|e| step("write pgbouncer.ini", e))?;
        if let Some((uid, gid)) = owner {
            for path in [&dir, &config, &dir.join("userlist.txt")] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| step("chown its directory", e))?;
            }
        }
        let mut command = Command::new(bin);
        command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = owner {
            command.uid(uid).gid(gid).current_dir("/");
        }
        let child = command.spawn().map_err(|e| step("start pgbouncer", e))?;
        let bouncer = Self {
            child: Some(child),
            dir,
            port,
            user,
            settings,
        };
        bouncer.wait_ready(Duration::from_secs(20)).await?;
        Ok(bouncer)
    }

    /// The `postgres://` URL of `database` through PgBouncer.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}",
            self.user, self.port
        )
    }

    /// The URL of PgBouncer's admin console (the `pgbouncer` database; simple queries only).
    pub fn admin_url(&self) -> String {
        self.url("pgbouncer")
    }

    /// How it pools.
    pub fn settings(&self) -> &PoolerSettings {
        &self.settings
    }

    /// `SHOW POOLS` for `database` (all zero before any client used it).
    pub async fn pools(&self, database: &str) -> Result<PoolCounts, PgBouncerError> {
        let rows = self.admin("SHOW POOLS").await?;
        let mut counts = PoolCounts::default();
        for row in rows.iter().filter(|r| column(r, "database") == database) {
            counts.clients_active += number(row, "cl_active");
            counts.clients_waiting += number(row, "cl_waiting");
            counts.servers_active += number(row, "sv_active");
            counts.servers_idle += number(row, "sv_idle");
            counts.servers_used += number(row, "sv_used");
        }
        Ok(counts)
    }

    /// `SHOW STATS` totals of `database` (PgBouncer updates them every second).
    pub async fn stats(&self, database: &str) -> Result<DatabaseStats, PgBouncerError> {
        let rows = self.admin("SHOW STATS").await?;
        Ok(rows
            .iter()
            .find(|r| column(r, "database") == database)
            .map(|row| DatabaseStats {
                transactions: number(row, "total_xact_count"),
                queries: number(row, "total_query_count"),
            })
            .unwrap_or_default())
    }

    /// The PostgreSQL backends of PgBouncer's server connections to `database` (`SHOW
    /// SERVERS`): a session whose pid is not among them did not come through PgBouncer.
    pub async fn server_pids(&self, database: &str) -> Result<Vec<i32>, PgBouncerError> {
        let rows = self.admin("SHOW SERVERS").await?;
        Ok(rows
            .iter()
            .filter(|r| column(r, "database") == database)
            .map(|r| number(r, "remote_pid") as i32)
            .collect())
    }

    /// Client connections to `database` (`SHOW CLIENTS`), whatever their state.
    pub async fn clients(&self, database: &str) -> Result<usize, PgBouncerError> {
        let rows = self.admin("SHOW CLIENTS").await?;
        Ok(rows
            .iter()
            .filter(|r| column(r, "database") == database)
            .count())
    }

    /// Runs an admin console command (text results: the console speaks the simple protocol).
    async fn admin(&self, command: &str) -> Result<Vec<sqlx::postgres::PgRow>, PgBouncerError> {
        let mut conn = admin_connection(&self.admin_url()).await?;
        let rows = conn.fetch_all(command).await?;
        let _ = conn.close().await;
        Ok(rows)
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), PgBouncerError> {
        let started = Instant::now();
        loop {
            if let Ok(conn) = admin_connection(&self.admin_url()).await {
                let _ = conn.close().await;
                return Ok(());
            }
            if started.elapsed() > timeout {
                let log =
                    std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default();
                return Err(PgBouncerError::Timeout(timeout, log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ThrowawayPgBouncer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL: a throwaway has nothing to save. PgBouncer's own shutdowns wait for
            // clients (1.18's SIGINT waits for every server connection to be released, newer
            // versions changed which signal does what), and a client of this process stopped
            // mid-transaction (its runtime blocked in this drop) would never let it go.
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The configuration: transaction pooling of every database name on the upstream server, trust
/// authentication of `user` (the upstream trusts it too), no Unix socket, `user` as the admin,
/// statistics every second. No `ignore_startup_parameters`: the controller's connections must
/// not need it (sqlx's default `extra_float_digits` would be refused).
fn config_text(
    dir: &std::path::Path,
    host: &str,
    upstream_port: u16,
    port: u16,
    user: &str,
    settings: &PoolerSettings,
) -> String {
    let dir = dir.display();
    format!(
        "[databases]\n\
         * = host={host} port={upstream_port}\n\
         \n\
         [pgbouncer]\n\
         pool_mode = transaction\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {dir}/userlist.txt\n\
         admin_users = {user}\n\
         default_pool_size = {pool}\n\
         min_pool_size = 0\n\
         reserve_pool_size = 0\n\
         max_client_conn = 1000\n\
         stats_period = 1\n\
         logfile = {dir}/pgbouncer.log\n\
         log_connections = 0\n\
         log_disconnections = 0\n",
        pool = settings.pool_size,
    )
}

/// A connection to the admin console, without the start-up parameter PgBouncer does not know.
async fn admin_connection(url: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    let options = url
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .extra_float_digits(None);
    sqlx::PgConnection::connect_with(&options).await
}

/// A column of the admin console as its text (the console answers in text, with types that
/// vary between PgBouncer versions: `numeric` for counts in 1.18).
fn column(row: &sqlx::postgres::PgRow, name: &str) -> String {
    row.try_get_unchecked::<Option<String>, _>(name)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// A count of the admin console (0 when empty).
fn number(row: &sqlx::postgres::PgRow, name: &str) -> i64 {
    column(row, name).trim().parse().unwrap_or(0)
}

fn step(step: &'static str, e: impl std::fmt::Display) -> PgBouncerError {
    PgBouncerError::Step {
        step,
        detail: e.to_string(),
    }
}

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The `pgbouncer` binary: `$PGBOUNCER_BIN`, PATH, or Debian's `/usr/sbin/pgbouncer`.
pub fn find_pgbouncer() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("PGBOUNCER_BIN").map(PathBuf::from) {
        if bin.is_file() {
            return Some(bin);
        }
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("pgbouncer"))
                .find(|p| p.is_file())
        })
        .or_else(|| {
            let debian = PathBuf::from("/usr/sbin/pgbouncer");
            debian.is_file().then_some(debian)
        })
}
