//! Processes in tests: the controller binary as a real process (for crash, signal and log
//! tests), free ports for them, and what `/proc` says about the processes a test started.

use base64::Engine;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::stack::{Stack, READER, WRITER};

/// Starts `openclaws-controller serve` as a real process against the stack's database and simulator.
pub fn spawn_controller(stack: &Stack, port: u16) -> ControllerProcess {
    let child = controller_command(stack, port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the controller binary");
    ControllerProcess(child)
}

/// A controller started as a child process, killed when dropped however its test ends (a
/// failed assertion included), so no `serve` outlives its test, frozen or not. Derefs to the
/// [`Child`] for signals, `kill` and `wait`.
#[derive(Debug)]
pub struct ControllerProcess(pub Child);

impl std::ops::Deref for ControllerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ControllerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Like [`spawn_controller`], with extra environment variables and every log line (stdout and
/// stderr) written to `log`.
pub fn spawn_controller_logging_with(
    stack: &Stack,
    port: u16,
    log: &std::path::Path,
    env: &[(&str, &str)],
) -> ControllerProcess {
    let file = std::fs::File::create(log).expect("create the log file");
    let err = file.try_clone().expect("clone the log file handle");
    let child = controller_command(stack, port)
        .envs(env.iter().copied())
        .env(
            "RUST_LOG",
            "debug,sqlx=warn,hyper=info,h2=info,reqwest=info",
        )
        .stdout(file)
        .stderr(err)
        .spawn()
        .expect("start the controller binary");
    ControllerProcess(child)
}

fn controller_command(stack: &Stack, port: u16) -> Command {
    let s = &stack.settings;
    let binary = crate::workspace_binary("openclaws-controller").expect("the controller binary");
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &s.database.database_url)
        .env("OPENCLAWS_LISTEN", format!("127.0.0.1:{port}"))
        .env("OPENCLAWS_API_WRITE_TOKEN", WRITER)
        .env("OPENCLAWS_API_READ_TOKEN", READER)
        .env(
            "OPENCLAWS_SECRET_KEY",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        )
        .env("FLY_API_BASE", &s.fly.fly_api_base)
        .env("FLY_API_TOKEN", &s.fly.fly_api_token)
        .env("FLY_ORG", &s.fly.fly_org)
        .env(
            "OPENCLAWS_GATEWAY_CHECKS",
            s.gateway.gateway_checks.to_string(),
        )
        .env("OPENCLAWS_LEASE_SECONDS", "3")
        .env("OPENCLAWS_POLL_SECONDS", "0.5")
        .env(
            "OPENCLAWS_DB_POOL_MODE",
            s.database.db_pool_mode.to_string(),
        );
    if let Some(url) = &s.database.database_listen_url {
        command.env("DATABASE_LISTEN_URL", url);
    }
    command
}

/// A port free on 127.0.0.1 right now, for a process that needs its address before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the controller at `api` answers `/healthz` (a process takes a moment to listen).
pub async fn wait_api(http: &reqwest::Client, api: &str) {
    crate::db::eventually(
        Duration::from_secs(20),
        "the controller API to answer",
        || async {
            http.get(format!("{api}/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        },
    )
    .await;
}

/// Whether process `pid` is alive: a zombie still has a `/proc` entry, but its state letter is Z.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// The direct children of process `pid` (a machine's boot step and its gateway, for instance).
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
