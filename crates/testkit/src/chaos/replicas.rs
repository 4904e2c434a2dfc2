//! The controller replicas of a chaos run: real `openclaws-controller serve` processes on one
//! database and one simulator, killed, restarted, frozen and resumed as the schedule says. Every
//! start is an incarnation with its own lease owner (`chaos-r{replica}-…`, read from its first
//! log line), so the request log and the lease log name exactly which process did what.

use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Utc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::stack::{FLY_TOKEN, ORG, READER, WRITER};

/// What every replica runs with.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// The controllers' database.
    pub database_url: String,
    /// The simulator (Fly and DNS).
    pub sim_url: String,
    /// Work lease length (`OPENCLAWS_LEASE_SECONDS`).
    pub lease_seconds: u64,
    /// Fleet watch interval (`OPENCLAWS_WATCH_SECONDS`).
    pub watch_seconds: u64,
    /// Where each incarnation's log goes.
    pub log_dir: PathBuf,
}

/// Whether a replica can answer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Running.
    Up,
    /// SIGSTOPped.
    Frozen,
    /// Killed and not started again yet.
    Down,
}

/// One process of a replica, from its start to its death.
#[derive(Debug, Clone)]
pub struct Incarnation {
    /// Which replica.
    pub replica: usize,
    /// Its process id.
    pub pid: u32,
    /// Its lease owner name, as in `work.lease_owner` and the `User-Agent` of its Fly calls.
    pub owner: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it was killed (`kill -9`) or stopped at the end of the run.
    pub ended: Option<DateTime<Utc>>,
    /// Whether `ended` was a `kill -9` by the schedule.
    pub killed: bool,
    /// Its SIGSTOP … SIGCONT windows (an open one ends with the process).
    pub freezes: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// Its log file.
    pub log: PathBuf,
}

/// What the other parts of the harness read about the replicas while the run goes on.
#[derive(Debug, Default)]
pub struct Registry {
    /// Every incarnation so far, in start order.
    pub incarnations: Vec<Incarnation>,
    /// Each replica's state now.
    pub states: Vec<ReplicaState>,
    /// Each replica's API address.
    pub api_urls: Vec<String>,
}

impl Registry {
    /// API base URLs of the replicas that are up now.
    pub fn live_apis(&self) -> Vec<String> {
        self.states
            .iter()
            .zip(&self.api_urls)
            .filter(|(s, _)| **s == ReplicaState::Up)
            .map(|(_, url)| url.clone())
            .collect()
    }

    /// Process ids of every incarnation (to find who opened a connection).
    pub fn pids(&self) -> Vec<u32> {
        self.incarnations.iter().map(|i| i.pid).collect()
    }

    /// The incarnation whose lease owner is `owner`.
    pub fn by_owner(&self, owner: &str) -> Option<&Incarnation> {
        self.incarnations.iter().find(|i| i.owner == owner)
    }

    /// The incarnation with process id `pid`.
    pub fn by_pid(&self, pid: u32) -> Option<&Incarnation> {
        self.incarnations.iter().rev().find(|i| i.pid == pid)
    }

    /// SIGSTOP of replica `replica`'s process, if it is up; `false` otherwise.
    pub fn freeze(&mut self, replica: usize) -> bool {
        if self.states.get(replica) != Some(&ReplicaState::Up) {
            return false;
        }
        let Some(inc) = self.current(replica) else {
            return false;
        };
        let _ = kill(Pid::from_raw(inc.pid as i32), Signal::SIGSTOP);
        inc.freezes.push((Utc::now(), None));
        self.states[replica] = ReplicaState::Frozen;
        true
    }

    /// SIGCONT of replica `replica`'s process, if it is frozen.
    pub fn resume(&mut self, replica: usize) {
        if self.states.get(replica) != Some(&ReplicaState::Frozen) {
            return;
        }
        if let Some(inc) = self.current(replica) {
            // The window closes before the signal: once resumed, the process may send at once
            // (an overdue timer), and nothing it sends may look earlier than its resumption.
            close_freeze(inc, Utc::now());
            let _ = kill(Pid::from_raw(inc.pid as i32), Signal::SIGCONT);
        }
        self.states[replica] = ReplicaState::Up;
    }

    /// SIGKILL of replica `replica`'s process, if it has one (the harness reaps it).
    pub fn kill_now(&mut self, replica: usize) -> bool {
        if self.states.get(replica) == Some(&ReplicaState::Down) {
            return false;
        }
        let Some(inc) = self.current(replica) else {
            return false;
        };
        let _ = kill(Pid::from_raw(inc.pid as i32), Signal::SIGKILL);
        let now = Utc::now();
        inc.ended = Some(now);
        inc.killed = true;
        close_freeze(inc, now);
        self.states[replica] = ReplicaState::Down;
        true
    }

    /// The lease owner and process of replica `replica`'s current process.
    pub fn current_of(&self, replica: usize) -> Option<(&str, u32)> {
        self.incarnations
            .iter()
            .rev()
            .find(|i| i.replica == replica)
            .map(|i| (i.owner.as_str(), i.pid))
    }

    fn current(&mut self, replica: usize) -> Option<&mut Incarnation> {
        self.incarnations
            .iter_mut()
            .rev()
            .find(|i| i.replica == replica)
    }
}

/// The replicas' processes and their shared [`Registry`].
pub struct Replicas {
    settings: ReplicaSettings,
    binary: PathBuf,
    children: Vec<Option<Child>>,
    ports: Vec<u16>,
    generations: Vec<u32>,
    registry: Arc<Mutex<Registry>>,
    http: reqwest::Client,
}

/// How long a replica gets to listen (and to find its database) after a start.
const START_DEADLINE: Duration = Duration::from_secs(60);

impl Replicas {
    /// `count` replicas, not started yet.
    pub fn new(settings: ReplicaSettings, count: usize) -> anyhow::Result<Self> {
        let binary = crate::workspace_binary("openclaws-controller")?;
        std::fs::create_dir_all(&settings.log_dir)?;
        let ports: Vec<u16> = (0..count).map(|_| crate::process::free_port()).collect();
        let registry = Registry {
            incarnations: Vec::new(),
            states: vec![ReplicaState::Down; count],
            api_urls: ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
        };
        Ok(Self {
            settings,
            binary,
            children: (0..count).map(|_| None).collect(),
            ports,
            generations: vec![0; count],
            registry: Arc::new(Mutex::new(registry)),
            http: reqwest::Client::new(),
        })
    }

    /// The registry the workload and the request log read.
    pub fn registry(&self) -> Arc<Mutex<Registry>> {
        self.registry.clone()
    }

    /// How many replicas there are.
    pub fn count(&self) -> usize {
        self.children.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts every replica and waits until each answers.
    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for replica in 0..self.count() {
            self.start(replica).await?;
        }
        Ok(())
    }

    /// Starts replica `replica` (again): a new process and lease owner. A start that fails (the
    /// database is down, say) is tried again until [`START_DEADLINE`].
    pub async fn start(&mut self, replica: usize) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            self.generations[replica] += 1;
            let log = self.settings.log_dir.join(format!(
                "replica-{replica}-{}.log",
                self.generations[replica]
            ));
            let started = Utc::now();
            let mut child = self
                .command(replica, &log)?
                .spawn()
                .context("start a replica")?;
            let pid = child.id();
            match self.wait_started(&mut child, replica, &log, deadline).await {
                Ok(owner) => {
                    self.children[replica] = Some(child);
                    let mut registry = self.lock();
                    registry.incarnations.push(Incarnation {
                        replica,
                        pid,
                        owner,
                        started,
                        ended: None,
                        killed: false,
                        freezes: Vec::new(),
                        log,
                    });
                    registry.states[replica] = ReplicaState::Up;
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(replica, error = %e, "replica did not start; starting it again");
                    let _ = child.kill();
                    let _ = child.wait();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e.context(format!("replica {replica} did not start")));
                }
            }
        }
    }

    /// Waits for the process's lease owner in its log and for its API to answer.
    async fn wait_started(
        &self,
        child: &mut Child,
        replica: usize,
        log: &Path,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<String> {
        let api = format!("http://127.0.0.1:{}/healthz", self.ports[replica]);
        let mut owner = None;
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("exited with {status} (log {})", log.display());
            }
            if owner.is_none() {
                owner = owner_in_log(log);
            }
            if let Some(owner) = &owner {
                let healthy = self
                    .http
                    .get(&api)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if healthy {
                    return Ok(owner.clone());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("not listening in time (log {})", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn command(&self, replica: usize, log: &Path) -> anyhow::Result<Command> {
        let s = &self.settings;
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOSTNAME", format!("chaos-r{replica}"))
            .env("RUST_LOG", "info,sqlx=warn")
            .env("OPENCLAWS_LOG_FORMAT", "json")
            .env("DATABASE_URL", &s.database_url)
            .env("OPENCLAWS_DB_MAX_CONNECTIONS", "10")
            .env(
                "OPENCLAWS_LISTEN",
                format!("127.0.0.1:{}", self.ports[replica]),
            )
            .env("OPENCLAWS_API_WRITE_TOKEN", WRITER)
            .env("OPENCLAWS_API_READ_TOKEN", READER)
            .env(
                "OPENCLAWS_SECRET_KEY",
                base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            )
            .env("FLY_API_BASE", &s.sim_url)
            .env("FLY_API_TOKEN", FLY_TOKEN)
            .env("FLY_ORG", ORG)
            .env("OPENCLAWS_DNS_API_BASE", &s.sim_url)
            .env("OPENCLAWS_DNS_API_TOKEN", FLY_TOKEN)
            .env("OPENCLAWS_BASE_DOMAIN", super::DOMAIN)
            .env("OPENCLAWS_GATEWAY_CHECKS", "false")
            .env("OPENCLAWS_LEASE_SECONDS", s.lease_seconds.to_string())
            .env("OPENCLAWS_POLL_SECONDS", "0.5")
            .env("OPENCLAWS_WATCH_SECONDS", s.watch_seconds.to_string())
            .env("OPENCLAWS_SHUTDOWN_GRACE_SECONDS", "2")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                // A harness that dies (Ctrl-C) takes its replicas with it.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        Ok(command)
    }

    /// `kill -9` of replica `replica` (a frozen one too), and its process reaped; the kill
    /// may already have happened ([`Registry::kill_now`] from the request log).
    pub fn kill(&mut self, replica: usize) {
        self.lock().kill_now(replica);
        if let Some(mut child) = self.children[replica].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP of replica `replica`; `false` when it is not up.
    pub fn freeze(&mut self, replica: usize) -> bool {
        self.lock().freeze(replica)
    }

    /// SIGCONT of a frozen replica.
    pub fn resume(&mut self, replica: usize) {
        self.lock().resume(replica);
    }

    /// Whether replica `replica` has a process (up or frozen).
    pub fn is_running(&self, replica: usize) -> bool {
        self.children[replica].is_some()
    }

    /// Stops every replica at the end of the run: SIGTERM (after SIGCONT), then SIGKILL for
    /// one that is still there after its grace.
    pub async fn stop_all(&mut self) {
        for replica in 0..self.count() {
            self.resume(replica);
            if let Some(child) = &self.children[replica] {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for replica in 0..self.count() {
            let Some(mut child) = self.children[replica].take() else {
                continue;
            };
            while child.try_wait().ok().flatten().is_none()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
            let now = Utc::now();
            let mut registry = self.lock();
            registry.states[replica] = ReplicaState::Down;
            if let Some(inc) = registry.current(replica) {
                inc.ended.get_or_insert(now);
            }
        }
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for mut child in self.children.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn close_freeze(inc: &mut Incarnation, now: DateTime<Utc>) {
    if let Some(open) = inc.freezes.last_mut().filter(|(_, end)| end.is_none()) {
        open.1 = Some(now);
    }
}

/// The lease owner the controller names in its `controller started` log line.
fn owner_in_log(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter(|l| l.contains("controller started"))
        .find_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            value["fields"]["owner"]
                .as_str()
                .or_else(|| value["owner"].as_str())
                .map(str::to_owned)
        })
}
