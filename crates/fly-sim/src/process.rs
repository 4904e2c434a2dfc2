//! Process mode: a simulated machine that reaches `started` runs its command as a real child
//! process (the real OpenClaw gateway through the boot step), with its volume as a directory.
//!
//! The state machine stays the inert one ([`super::records::machine`]); a driver task follows it:
//! after every change (and at every scheduled transition) it settles all machines and tells one
//! supervisor task per machine what should run. A machine whose state is `started` runs one
//! process per boot (a boot is its `instance_id` plus the time it entered `started`, so a
//! restart or an update is a new boot); any other state stops it (the stop signal, then
//! SIGKILL to its process group after the stop timeout); `destroyed` also removes the machine's
//! directory; a destroyed volume's directory is removed. A process that exits on its own is a
//! crash as on Fly: an `exit` event and the restart policy ([`MachRec::crash`]).
//!
//! Images ([`super::images`]): an image registered as broken (`PUT /_sim/images`) runs a
//! process that exits at boot with its code (a crash loop under the restart policy); an image
//! whose tag is a version (`ghcr.io/openclaw/openclaw:2026.9.5`, any registry and repository)
//! runs the install of that version from the installer's cache
//! (`<cache>/openclaw-<version>/bin/openclaw`, cache as in [`OpenclawInstall::cache_dir`]), and
//! the machine fails, as with a bad image, when that version is not installed; any other tag
//! (`:main`, `:latest`) runs the default install (`ProcessSettings::openclaw_bin`). An OpenClaw
//! image (repository `…/openclaw`) brings the image's layout: WORKDIR `/app` (mapped to the
//! install's package directory, with `dist/index.js` and `openclaw.mjs`), the pinned `node` on
//! `PATH`, and CMD `node openclaw.mjs gateway` when the config has no command (other images
//! without one fail with [`ProcessError::NoCommand`]). Port/bind mapping: many machines share
//! one host, so a gateway run straight from the image (`node openclaw.mjs|dist/index.js
//! gateway …`) gets `--port` set to the machine's free local port (the one the proxy routes to)
//! and `--bind lan|auto` turned into `loopback`, each added when absent, as the boot step is
//! told through `OPENCLAWS_GATEWAY_PORT` and `OPENCLAWS_GATEWAY_BIND=loopback`.
//!
//! Paths: the machine config is the one sent to Fly, untouched. Guest paths in `files`
//! destinations, in the command's arguments and in environment values (each `:`-separated
//! part) are mapped: under a mount path → the volume's directory
//! (`<root>/volumes/<vol id>/…`); under `/app` of an OpenClaw image → the install's package
//! directory (not for `files`); else, when its first component exists in the machine's root
//! (`<root>/machines/<id>/rootfs`, where non-volume files land) → there; else left as is.
//!
//! Environment of a process (Node and gateway are those of the install the image runs):
//! `PATH` (the pinned Node's directory first, then the simulator's),
//! `HOME` (per machine), `FLY_APP_NAME`, `FLY_MACHINE_ID`, `FLY_REGION`, `FLY_PRIVATE_IP`, the
//! machine's `env` (mapped), the app's secrets (unless booted with `skip_secrets`), and the boot
//! step's contract: `OPENCLAWS_GATEWAY_ENTRY` (the installed gateway), `OPENCLAWS_GATEWAY_PORT`
//! and `OPENCLAW_GATEWAY_PORT` (a free local port per machine, so the CLI in an exec finds the
//! gateway), `OPENCLAWS_GATEWAY_BIND=loopback`.
//!
//! [`MachRec::crash`]: super::records::machine::MachRec::crash

use super::errors::{SimError, SimResult};
use super::images::{is_openclaw_image, BrokenImages, ImageRun, OPENCLAW_CMD, OPENCLAW_WORKDIR};
use super::records::machine::MachRec;
use super::wire::{File, MachineConfig};
use super::Simulator;
use axum::extract::{Path as AxPath, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

/// A command for the launcher thread and where to send the spawned child.
type LaunchRequest = (Command, oneshot::Sender<std::io::Result<Child>>);

/// Stop timeout when the machine config has no `stop_config.timeout` (Fly's default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an exec waits for a started machine's process to be forked.
const LAUNCH_WAIT: Duration = Duration::from_secs(10);
/// The variable the CLI client reads the gateway's port from.
const CLIENT_PORT_ENV: &str = "OPENCLAW_GATEWAY_PORT";

/// Boot-bundle/image contract: the variable naming the installed gateway's entry point, which
/// the boot step runs (the gateway crate's `bundle::ENTRY_ENV`; a test compares the two).
pub const ENTRY_ENV: &str = "OPENCLAWS_GATEWAY_ENTRY";
/// Boot-bundle/image contract: the variable with the port the gateway listens on (the gateway
/// crate's `bundle::PORT_ENV`).
pub const PORT_ENV: &str = "OPENCLAWS_GATEWAY_PORT";
/// Boot-bundle/image contract: the variable with the address the gateway binds (the gateway
/// crate's `bundle::BIND_ENV`).
pub const BIND_ENV: &str = "OPENCLAWS_GATEWAY_BIND";
/// The OpenClaw release the installer puts in place by default (image contract: the gateway
/// crate's `VERIFIED_OPENCLAW_VERSION`), used to find the installed wrapper.
pub const DEFAULT_OPENCLAW_VERSION: &str = "2026.9.6";

/// Errors of process mode.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no runnable openclaw at {0} (run scripts/install-openclaw.sh or set OPENCLAWS_OPENCLAW_BIN)")]
    OpenclawMissing(PathBuf),
    #[error("no pinned node next to {0}")]
    NodeMissing(PathBuf),
    #[error("the machine config has no command (init.exec, init.entrypoint or init.cmd)")]
    NoCommand,
    #[error("image {image} names openclaw {version}, which is not installed at {wrapper} (OPENCLAWS_OPENCLAW_VERSION={version} scripts/install-openclaw.sh)")]
    VersionNotInstalled {
        image: String,
        version: String,
        wrapper: PathBuf,
    },
    #[error("file {guest_path}: {reason}")]
    BadFile { guest_path: String, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcessError {
    let what = what.into();
    move |source| ProcessError::Io { what, source }
}

/// Where the pinned Node and the gateway's entry point are, derived from the installer's
/// `bin/openclaw` wrapper (`scripts/install-openclaw.sh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenclawInstall {
    /// Directory holding the pinned `node`; goes first on the processes' `PATH`.
    pub node_bin_dir: PathBuf,
    /// The gateway's entry point (`lib/node_modules/openclaw/dist/index.js`), as in the image.
    pub gateway_entry: PathBuf,
    /// The package directory (`lib/node_modules/openclaw`), which stands for the image's `/app`.
    pub package_dir: PathBuf,
}

impl OpenclawInstall {
    /// The installer's cache directory: `OPENCLAWS_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/openclaws`, else `~/.cache/openclaws`.
    pub fn cache_dir() -> PathBuf {
        std::env::var_os("OPENCLAWS_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("openclaws"))
            })
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/openclaws")))
            .unwrap_or_else(|| PathBuf::from(".cache/openclaws"))
    }

    /// Where the installer puts the wrapper of `version` in the cache.
    pub fn wrapper_for(version: &str) -> PathBuf {
        Self::cache_dir().join(format!("openclaw-{version}/bin/openclaw"))
    }

    /// The wrapper named by `OPENCLAWS_OPENCLAW_BIN`, else the installer's default location.
    pub fn default_wrapper() -> PathBuf {
        std::env::var_os("OPENCLAWS_OPENCLAW_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| Self::wrapper_for(DEFAULT_OPENCLAW_VERSION))
    }

    /// Reads the layout around an installed wrapper.
    pub fn from_wrapper(wrapper: &Path) -> Result<Self, ProcessError> {
        let root = wrapper
            .canonicalize()
            .ok()
            .and_then(|p| p.parent()?.parent().map(Path::to_path_buf))
            .ok_or_else(|| ProcessError::OpenclawMissing(wrapper.to_path_buf()))?;
        let package_dir = root.join("lib/node_modules/openclaw");
        let gateway_entry = package_dir.join("dist/index.js");
        if !gateway_entry.is_file() {
            return Err(ProcessError::OpenclawMissing(wrapper.to_path_buf()));
        }
        let node_bin_dir = std::fs::read_dir(root.join("node/node_modules"))
            .map_err(|_| ProcessError::NodeMissing(wrapper.to_path_buf()))?
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .find(|bin| bin.join("node").is_file())
            .ok_or_else(|| ProcessError::NodeMissing(wrapper.to_path_buf()))?;
        Ok(Self {
            node_bin_dir,
            gateway_entry,
            package_dir,
        })
    }
}

/// Settings of process mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// Directory holding `volumes/<id>` and `machines/<id>`.
    pub root: PathBuf,
    /// The `bin/openclaw` wrapper of the installed gateway.
    pub openclaw_bin: PathBuf,
}

/// How simulated machines behave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MachineMode {
    /// Records only (tests of the API and the scale bench).
    #[default]
    Inert,
    /// Started machines run their command as real processes.
    Process(ProcessSettings),
}

/// One boot of a machine: a new one for every entry into `started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootKey {
    instance_id: String,
    started_at: Option<DateTime<Utc>>,
}

/// Everything needed to run one boot. No `Debug`: it holds the app's secrets.
#[derive(Clone)]
struct Launch {
    key: BootKey,
    app: String,
    region: String,
    private_ip: String,
    config: MachineConfig,
    secrets: Vec<(String, String)>,
}

#[derive(Clone)]
enum Want {
    Idle,
    Run(Box<Launch>),
    Destroyed,
}

/// A running process as `/_sim/machines/{id}/process` shows it (its environment, which holds
/// the app's secrets, is neither serialised nor debug-printed).
#[derive(Clone, Serialize)]
pub struct RunningInfo {
    /// Pid of the machine's command (also its process group).
    pub pid: u32,
    /// Local port the gateway is told to listen on.
    pub port: u16,
    /// The boot it belongs to.
    pub boot: BootKey,
    /// The machine's directory (`rootfs`, `home`, `console.log`).
    pub machine_dir: PathBuf,
    /// The volume's directory, if a volume is mounted.
    pub volume_dir: Option<PathBuf>,
    /// The package directory of the OpenClaw install the image runs (none for a broken image).
    pub openclaw_dir: Option<PathBuf>,
    /// The process's working directory (the install's package directory for an OpenClaw image,
    /// as its WORKDIR `/app`; else the machine's root).
    pub workdir: PathBuf,
    #[serde(skip)]
    env: BTreeMap<String, String>,
    #[serde(skip)]
    mounts: Vec<(String, PathBuf)>,
    #[serde(skip)]
    rootfs: PathBuf,
}

impl std::fmt::Debug for RunningInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningInfo")
            .field("pid", &self.pid)
            .field("port", &self.port)
            .field("boot", &self.boot)
            .field("machine_dir", &self.machine_dir)
            .field("volume_dir", &self.volume_dir)
            .field("openclaw_dir", &self.openclaw_dir)
            .finish_non_exhaustive()
    }
}

struct Supervisor {
    want: watch::Sender<Want>,
}

/// The process side of a simulator in process mode.
pub struct ProcessHost {
    settings: ProcessSettings,
    install: OpenclawInstall,
    launcher: Mutex<std::sync::mpsc::Sender<LaunchRequest>>,
    running: Mutex<HashMap<String, RunningInfo>>,
    supervisors: Mutex<HashMap<String, Supervisor>>,
    ports: Mutex<HashMap<String, u16>>,
    broken: BrokenImages,
    wake: Notify,
    /// Signalled whenever a process starts: an exec that arrives between a machine entering
    /// `started` and its supervisor forking the command waits for it, as Fly's init answers
    /// an exec as soon as the machine is started.
    launched: Notify,
}

impl std::fmt::Debug for ProcessHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessHost")
            .field("root", &self.settings.root)
            .finish_non_exhaustive()
    }
}

impl ProcessHost {
    /// A host for `settings`; fails when the installed gateway cannot be found.
    pub fn new(settings: ProcessSettings) -> Result<Self, ProcessError> {
        let install = OpenclawInstall::from_wrapper(&settings.openclaw_bin)?;
        std::fs::create_dir_all(&settings.root).map_err(io("creating the process root"))?;
        Ok(Self {
            settings,
            install,
            launcher: Mutex::new(spawn_launcher()),
            running: Mutex::new(HashMap::new()),
            supervisors: Mutex::new(HashMap::new()),
            ports: Mutex::new(HashMap::new()),
            broken: BrokenImages::default(),
            wake: Notify::new(),
            launched: Notify::new(),
        })
    }

    /// The images registered as broken (`PUT /_sim/images`).
    pub fn broken_images(&self) -> &BrokenImages {
        &self.broken
    }

    /// The running process of machine `id`, if any.
    pub fn running(&self, id: &str) -> Option<RunningInfo> {
        lock(&self.running).get(id).cloned()
    }

    fn machine_dir(&self, id: &str) -> PathBuf {
        self.settings.root.join("machines").join(id)
    }

    fn volume_dir(&self, id: &str) -> PathBuf {
        self.settings.root.join("volumes").join(id)
    }

    fn port_for(&self, id: &str) -> Result<u16, ProcessError> {
        if let Some(port) = lock(&self.ports).get(id) {
            return Ok(*port);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(io("finding a free port"))?
            .port();
        lock(&self.ports).insert(id.to_owned(), port);
        Ok(port)
    }

    /// Starts one boot of machine `id`: its directories and files, then its command, forked by
    /// the launcher thread.
    fn spawn(&self, id: &str, launch: &Launch) -> Result<(RunningInfo, Child), ProcessError> {
        let machine_dir = self.machine_dir(id);
        let rootfs = machine_dir.join("rootfs");
        let home = machine_dir.join("home");
        for dir in [&rootfs, &home] {
            create_dir(dir)?;
        }
        let mounts = self.mount_volumes(&launch.config)?;
        write_files(launch, &mounts, &rootfs)?;
        let port = self.port_for(id)?;
        let plan = self.plan(launch, &mounts, &rootfs, port)?;
        let env = environment(id, launch, &plan.install, &home, port, &plan.paths, &rootfs);
        let command = machine_command(&plan.argv, &env, &machine_dir, &plan.workdir)?;
        let child = self.launch(command, &plan.argv[0])?;
        let info = RunningInfo {
            pid: child.id(),
            port,
            boot: launch.key.clone(),
            machine_dir,
            volume_dir: mounts.first().map(|(_, dir)| dir.clone()),
            openclaw_dir: plan.runs_openclaw.then(|| plan.install.package_dir.clone()),
            workdir: plan.workdir,
            env,
            mounts: plan.paths,
            rootfs,
        };
        Ok((info, child))
    }

    /// How boot `launch` runs, from its image (see [`super::images`]): a broken image's exit,
    /// or the command of the config (the OpenClaw image's CMD when it has none) on the install
    /// the image names, with the OpenClaw image's `/app` and the port/bind mapping.
    fn plan(
        &self,
        launch: &Launch,
        mounts: &[(String, PathBuf)],
        rootfs: &Path,
        port: u16,
    ) -> Result<Plan, ProcessError> {
        let image = launch.config.image.as_deref().unwrap_or_default();
        let run = self.broken.run_of(image);
        if let ImageRun::Broken(code) = run {
            return Ok(Plan {
                install: self.install.clone(),
                runs_openclaw: false,
                argv: broken_command(code),
                workdir: rootfs.to_path_buf(),
                paths: mounts.to_vec(),
            });
        }
        let install = self.install_for(image, &run)?;
        let openclaw = is_openclaw_image(image);
        let mut paths = mounts.to_vec();
        let mut workdir = rootfs.to_path_buf();
        if openclaw {
            paths.push((OPENCLAW_WORKDIR.to_owned(), install.package_dir.clone()));
            workdir = install.package_dir.clone();
        }
        let argv = command_line(&launch.config, openclaw, &paths, rootfs)?;
        Ok(Plan {
            install,
            runs_openclaw: true,
            argv: if openclaw {
                gateway_args(argv, port)
            } else {
                argv
            },
            workdir,
            paths,
        })
    }

    /// The install `image` runs: the default one, or the one of the version its tag names (the
    /// default install stands in for its own version when the cache has no copy).
    fn install_for(&self, image: &str, run: &ImageRun) -> Result<OpenclawInstall, ProcessError> {
        let ImageRun::Version(version) = run else {
            return Ok(self.install.clone());
        };
        let wrapper = OpenclawInstall::wrapper_for(version);
        match OpenclawInstall::from_wrapper(&wrapper) {
            Ok(install) => Ok(install),
            Err(_) if version == DEFAULT_OPENCLAW_VERSION => Ok(self.install.clone()),
            Err(_) => Err(ProcessError::VersionNotInstalled {
                image: image.to_owned(),
                version: version.clone(),
                wrapper,
            }),
        }
    }

    /// The config's mounts as `(guest path, volume directory)`, each directory created.
    fn mount_volumes(
        &self,
        config: &MachineConfig,
    ) -> Result<Vec<(String, PathBuf)>, ProcessError> {
        let mut mounts = Vec::new();
        for mount in &config.mounts {
            let (Some(volume), Some(path)) = (&mount.volume, &mount.path) else {
                continue;
            };
            let dir = self.volume_dir(volume);
            create_dir(&dir)?;
            mounts.push((path.trim_end_matches('/').to_owned(), dir));
        }
        Ok(mounts)
    }

    /// Has the launcher thread fork `command` (`program` names it in errors).
    fn launch(&self, command: Command, program: &str) -> Result<Child, ProcessError> {
        let (tx, rx) = oneshot::channel();
        lock(&self.launcher)
            .send((command, tx))
            .map_err(|_| io("spawning")(std::io::Error::other("launcher thread gone")))?;
        rx.blocking_recv()
            .map_err(|_| io("spawning")(std::io::Error::other("launcher thread gone")))?
            .map_err(io(format!("spawning {program}")))
    }

    /// Runs `command` in the environment of machine `id`'s running process (exec).
    pub async fn exec(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> SimResult<(i32, String, String)> {
        let info = self.launched_process(id, timeout.min(LAUNCH_WAIT)).await?;
        let argv: Vec<String> = command
            .iter()
            .map(|a| map_value(a, &info.mounts, &info.rootfs))
            .collect();
        let mut cmd = tokio::process::Command::new(resolve_program(&argv[0], &info.env));
        cmd.args(&argv[1..])
            .env_clear()
            .envs(&info.env)
            .current_dir(&info.workdir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match tokio::time::timeout(timeout, cmd.output()).await {
            Err(_) => Err(SimError::Timeout(
                "deadline_exceeded: exec timed out".into(),
            )),
            Ok(Err(err)) => Ok((127, String::new(), format!("exec failed: {err}"))),
            Ok(Ok(out)) => Ok((
                exit_code(out.status),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )),
        }
    }

    /// The running process of machine `id`, waiting up to `wait` for a started machine's
    /// supervisor to fork it.
    async fn launched_process(&self, id: &str, wait: Duration) -> SimResult<RunningInfo> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let launched = self.launched.notified();
            if let Some(info) = self.running(id) {
                return Ok(info);
            }
            if tokio::time::timeout_at(deadline, launched).await.is_err() {
                return Err(SimError::precondition(format!(
                    "machine {id} has no running process yet"
                )));
            }
        }
    }

    /// Stops every process (simulator shutdown).
    async fn stop_all(&self) {
        let wants: Vec<watch::Sender<Want>> = lock(&self.supervisors)
            .drain()
            .map(|(_, s)| s.want)
            .collect();
        drop(wants);
        let deadline = tokio::time::Instant::now() + DEFAULT_STOP_TIMEOUT * 2;
        while !lock(&self.running).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The process's environment (see the module doc for what goes in and in which order).
fn environment(
    id: &str,
    launch: &Launch,
    install: &OpenclawInstall,
    home: &Path,
    port: u16,
    mounts: &[(String, PathBuf)],
    rootfs: &Path,
) -> BTreeMap<String, String> {
    let host_path = std::env::var("PATH").unwrap_or_default();
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_owned(),
        format!("{}:{host_path}", install.node_bin_dir.display()),
    );
    env.insert("HOME".to_owned(), home.display().to_string());
    env.insert("FLY_APP_NAME".to_owned(), launch.app.clone());
    env.insert("FLY_MACHINE_ID".to_owned(), id.to_owned());
    env.insert("FLY_REGION".to_owned(), launch.region.clone());
    env.insert("FLY_PRIVATE_IP".to_owned(), launch.private_ip.clone());
    for (key, value) in &launch.config.env {
        env.insert(key.clone(), map_value(value, mounts, rootfs));
    }
    for (key, value) in &launch.secrets {
        env.insert(key.clone(), value.clone());
    }
    env.insert(
        ENTRY_ENV.to_owned(),
        install.gateway_entry.display().to_string(),
    );
    env.insert(PORT_ENV.to_owned(), port.to_string());
    env.insert(CLIENT_PORT_ENV.to_owned(), port.to_string());
    env.insert(BIND_ENV.to_owned(), "loopback".to_owned());
    env
}

/// Creates `dir` and its parents.
fn create_dir(dir: &Path) -> Result<(), ProcessError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))
}

/// Writes the config's `files` where the guest would see them: on the volume under a mount,
/// else in the machine's root.
fn write_files(
    launch: &Launch,
    mounts: &[(String, PathBuf)],
    rootfs: &Path,
) -> Result<(), ProcessError> {
    let secrets: HashMap<&str, &str> = launch
        .secrets
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for file in &launch.config.files {
        write_file(file, &secrets, mounts, rootfs)?;
    }
    Ok(())
}

/// Writes one `files` entry: its raw value or the named secret, base64-decoded, with its mode.
fn write_file(
    file: &File,
    secrets: &HashMap<&str, &str>,
    mounts: &[(String, PathBuf)],
    rootfs: &Path,
) -> Result<(), ProcessError> {
    let guest_path = file.guest_path.clone().unwrap_or_default();
    let bad = |reason: &str| ProcessError::BadFile {
        guest_path: guest_path.clone(),
        reason: reason.to_owned(),
    };
    let encoded = match (&file.raw_value, &file.secret_name) {
        (Some(raw), _) => raw.as_str(),
        (None, Some(name)) => secrets
            .get(name.as_str())
            .copied()
            .ok_or_else(|| bad("no such secret"))?,
        (None, None) => return Err(bad("neither raw_value nor secret_name")),
    };
    let content = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad("not base64"))?;
    let target = map_file_path(&guest_path, mounts, rootfs);
    if let Some(parent) = target.parent() {
        create_dir(parent)?;
    }
    std::fs::write(&target, content).map_err(io(format!("writing {}", target.display())))?;
    let mode = file
        .mode
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(0o644);
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", target.display())))
}

/// The command to run (`init.exec`, else `init.entrypoint` then `init.cmd`, else the OpenClaw
/// image's CMD when `openclaw_image`), guest paths mapped.
fn command_line(
    config: &MachineConfig,
    openclaw_image: bool,
    paths: &[(String, PathBuf)],
    rootfs: &Path,
) -> Result<Vec<String>, ProcessError> {
    let init = config.init.clone().unwrap_or_default();
    let mut argv: Vec<String> = if init.exec.is_empty() {
        init.entrypoint.into_iter().chain(init.cmd).collect()
    } else {
        init.exec
    };
    if argv.is_empty() && openclaw_image {
        argv = OPENCLAW_CMD.iter().map(|a| a.to_string()).collect();
    }
    if argv.is_empty() {
        return Err(ProcessError::NoCommand);
    }
    Ok(argv.iter().map(|a| map_value(a, paths, rootfs)).collect())
}

/// Whether `argv` runs the gateway straight from the image (`node openclaw.mjs gateway …` or
/// `node dist/index.js gateway …`, relative or under `/app`), not through a boot step.
fn is_gateway_run(argv: &[String]) -> bool {
    let program = Path::new(&argv[0]).file_name().and_then(|n| n.to_str());
    let script = argv.get(1).map(String::as_str).unwrap_or_default();
    program == Some("node")
        && (script.ends_with("openclaw.mjs") || script.ends_with("dist/index.js"))
        && argv.get(2).map(String::as_str) == Some("gateway")
}

/// The port/bind mapping of a gateway run straight from the image: many machines share one
/// host, so `--port N` becomes the machine's own local port and `--bind lan|auto` becomes
/// `loopback` (each added when absent: in a container the gateway's default bind is `auto`), as
/// the boot step is told through its environment.
fn gateway_args(argv: Vec<String>, port: u16) -> Vec<String> {
    if !is_gateway_run(&argv) {
        return argv;
    }
    let loopback = |bind: &str| match bind {
        "lan" | "auto" => "loopback".to_owned(),
        other => other.to_owned(),
    };
    let mut out = Vec::with_capacity(argv.len() + 4);
    let (mut has_port, mut has_bind) = (false, false);
    let mut args = argv.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--port" || arg.starts_with("--port=") {
            if arg == "--port" {
                args.next();
            }
            out.extend(["--port".to_owned(), port.to_string()]);
            has_port = true;
        } else if let Some(bind) = arg.strip_prefix("--bind=") {
            out.push(format!("--bind={}", loopback(bind)));
            has_bind = true;
        } else if arg == "--bind" {
            out.push(arg);
            out.extend(args.next().map(|b| loopback(&b)));
            has_bind = true;
        } else {
            out.push(arg);
        }
    }
    if !has_port {
        out.extend(["--port".to_owned(), port.to_string()]);
    }
    if !has_bind {
        out.extend(["--bind".to_owned(), "loopback".to_owned()]);
    }
    out
}

/// What a broken image runs: a process that exits at boot with `code`.
fn broken_command(code: i32) -> Vec<String> {
    let script = format!("echo 'fly-sim: this image is registered as broken' >&2; exit {code}");
    vec!["/bin/sh".to_owned(), "-c".to_owned(), script]
}

/// The machine's command, ready to fork: its own environment only, `workdir` as working
/// directory, output appended to `console.log`, a process group of its own, and
/// SIGTERM when the simulator dies.
fn machine_command(
    argv: &[String],
    env: &BTreeMap<String, String>,
    machine_dir: &Path,
    workdir: &Path,
) -> Result<Command, ProcessError> {
    let program = resolve_program(&argv[0], env);
    let console = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(machine_dir.join("console.log"))
        .map_err(io("opening console.log"))?;
    let mut command = Command::new(program);
    command
        .args(&argv[1..])
        .env_clear()
        .envs(env)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(console.try_clone().map_err(io("console.log"))?)
        .stderr(console)
        .process_group(0);
    // SAFETY: only the async-signal-safe prctl call runs between fork and exec. SIGTERM (not
    // SIGKILL) so that the boot step forwards it and its gateway child shuts down too.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
    Ok(command)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A thread that lives as long as the simulator's process and forks every machine process, so
/// the parent-death signal (which follows the forking thread) fires only when the simulator
/// itself is gone.
fn spawn_launcher() -> std::sync::mpsc::Sender<LaunchRequest> {
    let (tx, rx) = std::sync::mpsc::channel::<LaunchRequest>();
    std::thread::Builder::new()
        .name("sim-process-launcher".into())
        .spawn(move || {
            for (mut command, reply) in rx {
                let _ = reply.send(command.spawn());
            }
            loop {
                std::thread::park();
            }
        })
        .expect("spawn the launcher thread");
    tx
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// `argv[0]` looked up on the process's own `PATH` when it has no slash.
fn resolve_program(program: &str, env: &BTreeMap<String, String>) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    env.get("PATH")
        .into_iter()
        .flat_map(|p| p.split(':'))
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}

/// A guest path under a mount → the volume directory; under nothing known → `None`.
fn map_guest(path: &str, mounts: &[(String, PathBuf)]) -> Option<PathBuf> {
    mounts.iter().find_map(|(mount, dir)| {
        let rest = path.strip_prefix(mount.as_str())?;
        if rest.is_empty() {
            Some(dir.clone())
        } else {
            rest.strip_prefix('/').map(|r| dir.join(r))
        }
    })
}

/// Where a `files` entry lands: on the volume under a mount, else in the machine's root.
fn map_file_path(guest: &str, mounts: &[(String, PathBuf)], rootfs: &Path) -> PathBuf {
    map_guest(guest, mounts).unwrap_or_else(|| rootfs.join(guest.trim_start_matches('/')))
}

/// Maps every `:`-separated absolute path in an argument or environment value.
fn map_value(value: &str, mounts: &[(String, PathBuf)], rootfs: &Path) -> String {
    value
        .split(':')
        .map(|part| {
            if !part.starts_with('/') {
                return part.to_owned();
            }
            if let Some(mapped) = map_guest(part, mounts) {
                return mapped.display().to_string();
            }
            let relative = part.trim_start_matches('/');
            let first = relative.split('/').next().unwrap_or_default();
            if !first.is_empty() && rootfs.join(first).exists() {
                rootfs.join(relative).display().to_string()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Signal and timeout a stop uses, from the machine's `stop_config`.
fn stop_policy(config: &MachineConfig) -> (Signal, Duration) {
    let stop = config.stop_config.as_ref();
    let signal = stop
        .and_then(|s| s.signal.as_deref())
        .and_then(|s| Signal::from_str(s).ok())
        .unwrap_or(Signal::SIGTERM);
    let timeout = stop
        .and_then(|s| s.timeout.as_deref())
        .and_then(super::extract::parse_duration)
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    (signal, timeout)
}

/// How one boot runs.
struct Plan {
    /// The OpenClaw install whose Node and gateway the process gets.
    install: OpenclawInstall,
    /// Whether the process runs that install (false for a broken image's exit).
    runs_openclaw: bool,
    /// The command, guest paths mapped.
    argv: Vec<String>,
    /// Its working directory.
    workdir: PathBuf,
    /// Guest paths the command, its environment and execs see mapped: volume mounts, then the
    /// OpenClaw image's `/app`.
    paths: Vec<(String, PathBuf)>,
}

/// What one driver pass found.
#[derive(Default)]
struct Pass {
    /// What each machine should be doing.
    wants: Vec<(String, Want)>,
    /// Volumes in a destroyed state.
    dead_volumes: Vec<String>,
    /// When the next scheduled transition is due.
    next: Option<DateTime<Utc>>,
}

/// One pass of the driver: settles every machine and reports what it found.
fn pass(sim: &Simulator) -> Pass {
    let mut changed = false;
    let result = sim.read(|w, ctx| {
        let mut wants = Vec::new();
        let mut next: Option<DateTime<Utc>> = None;
        let secrets_of: HashMap<String, Vec<(String, String)>> = w
            .apps
            .values()
            .map(|a| {
                (
                    a.id.clone(),
                    a.secrets
                        .iter()
                        .map(|(k, s)| (k.clone(), s.value.clone()))
                        .collect(),
                )
            })
            .collect();
        for m in w.machines.values_mut() {
            changed |= m.settle(ctx);
            if let Some(at) = m.next_step_at() {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            wants.push((m.id.clone(), want_of(m, &secrets_of)));
        }
        let volumes = w
            .volumes
            .values()
            .filter(|v| v.is_destroyed())
            .map(|v| v.id.clone())
            .collect();
        Ok(Pass {
            wants,
            dead_volumes: volumes,
            next,
        })
    });
    if changed {
        sim.notify();
    }
    result.unwrap_or_default()
}

/// What machine `m` should be doing: running its current boot while `started` (with the app's
/// secrets unless it booted with `skip_secrets`), gone once `destroyed`, else nothing.
fn want_of(m: &MachRec, secrets_of: &HashMap<String, Vec<(String, String)>>) -> Want {
    match m.state.as_str() {
        "destroyed" => Want::Destroyed,
        "started" if !m.host_unreachable => Want::Run(Box::new(Launch {
            key: BootKey {
                instance_id: m.instance_id.clone(),
                started_at: m.started_at,
            },
            app: m.app_name.clone(),
            region: m.region.clone(),
            private_ip: m.private_ip.clone(),
            config: m.config.clone(),
            secrets: if m.secrets_version.is_some() {
                secrets_of.get(&m.app_id).cloned().unwrap_or_default()
            } else {
                Vec::new()
            },
        })),
        _ => Want::Idle,
    }
}

/// Follows the simulator's machines until `shutdown`, then stops every process.
pub async fn drive(sim: Simulator, host: Arc<ProcessHost>, shutdown: CancellationToken) {
    let mut changes = sim.subscribe();
    loop {
        let Pass {
            wants,
            dead_volumes,
            next,
        } = pass(&sim);
        for (id, want) in wants {
            let mut supervisors = lock(&host.supervisors);
            match supervisors.get(&id) {
                Some(s) => {
                    s.want.send_if_modified(|current| {
                        let same = match (&*current, &want) {
                            (Want::Idle, Want::Idle) | (Want::Destroyed, Want::Destroyed) => true,
                            (Want::Run(a), Want::Run(b)) => a.key == b.key,
                            _ => false,
                        };
                        if !same {
                            *current = want.clone();
                        }
                        !same
                    });
                }
                None if matches!(want, Want::Destroyed) && !host.machine_dir(&id).exists() => {}
                None => {
                    let (tx, rx) = watch::channel(want);
                    supervisors.insert(id.clone(), Supervisor { want: tx });
                    tokio::spawn(supervise(sim.clone(), host.clone(), id, rx));
                }
            }
        }
        for volume in dead_volumes {
            let dir = host.volume_dir(&volume);
            let in_use = lock(&host.running)
                .values()
                .any(|r| r.volume_dir.as_deref() == Some(dir.as_path()));
            if !in_use && dir.exists() {
                if let Err(err) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(volume = %volume, error = %err, "removing a destroyed volume's directory");
                }
            }
        }
        let wait = next
            .map(|at| sim.clock().real_until(at))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = changes.changed() => {}
            _ = host.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    host.stop_all().await;
}

/// A process a supervisor runs.
struct Running {
    key: BootKey,
    signal: Signal,
    timeout: Duration,
    pid: u32,
    exited: oneshot::Receiver<std::process::ExitStatus>,
}

/// What woke a supervisor.
enum Woken {
    Want { open: bool },
    Exited(Option<std::process::ExitStatus>),
}

/// One machine's supervisor: runs the wanted boot, stops what is no longer wanted, reports
/// exits, and cleans up after a destroy.
async fn supervise(
    sim: Simulator,
    host: Arc<ProcessHost>,
    id: String,
    mut want: watch::Receiver<Want>,
) {
    let mut machine = Supervised {
        sim,
        host,
        id,
        running: None,
        last_boot: None,
    };
    loop {
        let current = want.borrow_and_update().clone();
        if machine.stop_unless(&current).await {
            continue;
        }
        match &current {
            Want::Run(launch) if machine.is_new_boot(launch) => machine.boot(launch).await,
            Want::Destroyed if machine.running.is_none() => {
                machine.clean_up();
                return;
            }
            _ => {}
        }
        let woken = match machine.running.as_mut() {
            Some(r) => tokio::select! {
                changed = want.changed() => Woken::Want { open: changed.is_ok() },
                status = &mut r.exited => Woken::Exited(status.ok()),
            },
            None => Woken::Want {
                open: want.changed().await.is_ok(),
            },
        };
        if !machine.on_woken(woken).await {
            return;
        }
    }
}

/// What a supervisor knows of its machine.
struct Supervised {
    sim: Simulator,
    host: Arc<ProcessHost>,
    id: String,
    /// The process of the current boot, while it runs.
    running: Option<Running>,
    /// The last boot started (each boot runs once, even when its process exits).
    last_boot: Option<BootKey>,
}

impl Supervised {
    /// Stops the running process unless it is the boot `want` asks for; true when it stopped
    /// one.
    async fn stop_unless(&mut self, want: &Want) -> bool {
        let Some(r) = self.running.take() else {
            return false;
        };
        if matches!(want, Want::Run(l) if l.key == r.key) {
            self.running = Some(r);
            return false;
        }
        terminate(r.pid, r.signal, r.timeout, r.exited).await;
        lock(&self.host.running).remove(&self.id);
        true
    }

    /// Whether `launch` is a boot not started yet (nothing runs and it is not the last one).
    fn is_new_boot(&self, launch: &Launch) -> bool {
        self.running.is_none() && self.last_boot.as_ref() != Some(&launch.key)
    }

    /// Starts the process of boot `launch`; a command that cannot start fails the machine.
    async fn boot(&mut self, launch: &Launch) {
        let id = self.id.clone();
        self.last_boot = Some(launch.key.clone());
        let spawned = {
            let host = self.host.clone();
            let id = id.clone();
            let launch = launch.clone();
            tokio::task::spawn_blocking(move || host.spawn(&id, &launch)).await
        };
        match spawned {
            Ok(Ok((info, child))) => {
                let (signal, timeout) = stop_policy(&launch.config);
                let pid = info.pid;
                lock(&self.host.running).insert(id, info);
                self.host.launched.notify_waiters();
                self.running = Some(Running {
                    key: launch.key.clone(),
                    signal,
                    timeout,
                    pid,
                    exited: wait_for_exit(child),
                });
            }
            Ok(Err(err)) => {
                tracing::warn!(machine = %id, error = %err, "a simulated machine's process could not start");
                report_failure(&self.sim, &id, &launch.key);
            }
            Err(err) => tracing::warn!(machine = %id, error = %err, "spawn task failed"),
        }
    }

    /// After a destroy: removes the machine's directory and forgets it.
    fn clean_up(&self) {
        let id = &self.id;
        let dir = self.host.machine_dir(id);
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(machine = %id, error = %err, "removing a destroyed machine's directory");
            }
        }
        lock(&self.host.supervisors).remove(id);
        lock(&self.host.ports).remove(id);
    }

    /// Acts on what woke the supervisor: a closed channel stops the process (false: the
    /// supervisor ends); an exit on its own is reported as a crash.
    async fn on_woken(&mut self, woken: Woken) -> bool {
        match woken {
            Woken::Want { open: true } => {}
            Woken::Want { open: false } => {
                if let Some(r) = self.running.take() {
                    terminate(r.pid, r.signal, r.timeout, r.exited).await;
                    lock(&self.host.running).remove(&self.id);
                }
                return false;
            }
            Woken::Exited(status) => {
                if let Some(r) = self.running.take() {
                    kill_group(r.pid, Signal::SIGKILL);
                    lock(&self.host.running).remove(&self.id);
                    let code = status.map(exit_code).unwrap_or(1);
                    report_exit(&self.sim, &self.id, &r.key, code);
                    self.host.wake.notify_one();
                }
            }
        }
        true
    }
}

fn wait_for_exit(mut child: Child) -> oneshot::Receiver<std::process::ExitStatus> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = tx.send(status);
        }
    });
    rx
}

fn kill_group(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// The stop signal to the command, SIGKILL to its group after `timeout`, and SIGKILL to
/// whatever of the group is left once the command is gone (as a VM's teardown would).
async fn terminate(
    pid: u32,
    signal: Signal,
    timeout: Duration,
    mut exited: oneshot::Receiver<std::process::ExitStatus>,
) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(Pid::from_raw(raw), signal);
    }
    if tokio::time::timeout(timeout, &mut exited).await.is_err() {
        kill_group(pid, Signal::SIGKILL);
        let _ = exited.await;
    }
    kill_group(pid, Signal::SIGKILL);
}

/// A process that exited on its own: the machine's `exit` event and restart policy.
fn report_exit(sim: &Simulator, id: &str, key: &BootKey, code: i32) {
    let _ = sim.write(|w, ctx| {
        if let Some(m) = w.machines.get_mut(id) {
            m.settle(ctx);
            if m.state == "started"
                && m.instance_id == key.instance_id
                && m.started_at == key.started_at
            {
                let _ = m.crash(code, false, ctx);
            }
        }
        Ok(())
    });
}

/// A command that could not be started: the machine fails, as a bad image does on Fly.
fn report_failure(sim: &Simulator, id: &str, key: &BootKey) {
    let _ = sim.write(|w, ctx| {
        if let Some(m) = w.machines.get_mut(id) {
            m.settle(ctx);
            if m.state == "started" && m.instance_id == key.instance_id {
                m.fail(ctx);
            }
        }
        Ok(())
    });
}

/// `GET /_sim/machines/{id}/process`: the machine's running process (404 when none).
async fn process_info(
    State(sim): State<Simulator>,
    AxPath(id): AxPath<String>,
) -> SimResult<Json<RunningInfo>> {
    sim.process_host()
        .and_then(|host| host.running(&id))
        .map(Json)
        .ok_or_else(|| SimError::NotFound("no running process for this machine".into()))
}

/// The process-mode control routes.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/_sim/machines/{id}/process", get(process_info))
        .with_state(sim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_map_to_the_volume_or_the_machine_root() {
        let root = std::env::temp_dir().join(format!("sim-process-map-{}", std::process::id()));
        let rootfs = root.join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        let mounts = vec![("/data".to_owned(), root.join("vol"))];
        assert_eq!(
            map_file_path("/data/bin/x", &mounts, &rootfs),
            root.join("vol/bin/x")
        );
        assert_eq!(
            map_file_path("/etc/openclaws/boot.mjs", &mounts, &rootfs),
            rootfs.join("etc/openclaws/boot.mjs")
        );
        assert_eq!(
            map_value("/data", &mounts, &rootfs),
            root.join("vol").display().to_string()
        );
        assert_eq!(
            map_value("/data/bin:/usr/bin:/etc/openclaws", &mounts, &rootfs),
            format!(
                "{}:/usr/bin:{}",
                root.join("vol/bin").display(),
                rootfs.join("etc/openclaws").display()
            )
        );
        assert_eq!(map_value("/database", &mounts, &rootfs), "/database");
        assert_eq!(map_value("node", &mounts, &rootfs), "node");
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn a_gateway_run_from_the_image_gets_the_machines_port_and_loopback() {
        let legacy = args(&[
            "node",
            "dist/index.js",
            "gateway",
            "--allow-unconfigured",
            "--port",
            "3000",
            "--bind",
            "lan",
        ]);
        assert_eq!(
            gateway_args(legacy, 41234),
            args(&[
                "node",
                "dist/index.js",
                "gateway",
                "--allow-unconfigured",
                "--port",
                "41234",
                "--bind",
                "loopback"
            ])
        );
        assert_eq!(
            gateway_args(args(&["node", "openclaw.mjs", "gateway"]), 5),
            args(&[
                "node",
                "openclaw.mjs",
                "gateway",
                "--port",
                "5",
                "--bind",
                "loopback"
            ])
        );
        let explicit = args(&[
            "/x/bin/node",
            "/pkg/openclaw.mjs",
            "gateway",
            "--port=1",
            "--bind=auto",
        ]);
        assert_eq!(
            gateway_args(explicit, 5),
            args(&[
                "/x/bin/node",
                "/pkg/openclaw.mjs",
                "gateway",
                "--port",
                "5",
                "--bind=loopback"
            ])
        );
        let boot = args(&["node", "/etc/openclaws/boot.mjs", "--port", "3000"]);
        assert_eq!(gateway_args(boot.clone(), 5), boot);
        let custom = args(&["node", "dist/index.js", "gateway", "--bind", "custom"]);
        assert_eq!(
            gateway_args(custom, 5),
            args(&[
                "node",
                "dist/index.js",
                "gateway",
                "--bind",
                "custom",
                "--port",
                "5"
            ])
        );
    }

    #[test]
    fn only_openclaw_images_fall_back_to_the_images_cmd() {
        let rootfs = Path::new("/nonexistent-rootfs");
        let config = MachineConfig::default();
        assert!(matches!(
            command_line(&config, false, &[], rootfs),
            Err(ProcessError::NoCommand)
        ));
        assert_eq!(
            command_line(&config, true, &[], rootfs).unwrap(),
            args(&["node", "openclaw.mjs", "gateway"])
        );
    }

    #[test]
    fn stop_policy_reads_stop_config() {
        let mut config = MachineConfig::default();
        assert_eq!(
            stop_policy(&config),
            (Signal::SIGTERM, DEFAULT_STOP_TIMEOUT)
        );
        config.stop_config = Some(super::super::wire::StopConfig {
            signal: Some("SIGINT".into()),
            timeout: Some("30s".into()),
        });
        assert_eq!(
            stop_policy(&config),
            (Signal::SIGINT, Duration::from_secs(30))
        );
    }
}
